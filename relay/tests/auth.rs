//! Access tokens at a real relay process (issue 13): `moq-relay keygen` and
//! `moq-relay token` make what `--auth-key` accepts; no token, a forged one,
//! an expired one and garbage are refused at SETUP with the draft's codes;
//! requests outside the token's scopes or the call policy get REQUEST_ERROR
//! UNAUTHORIZED while the session goes on.

mod common;
use common::{read_frame, Relay};
use moq_wire::control::{encode_request, Response};
use moq_wire::message::{Message, PublishNamespace, Subscribe, SubscribeNamespace};
use std::path::Path;
use std::process::Command;

fn relay_cmd(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_moq-relay")).args(args).output().unwrap();
    assert!(out.status.success(), "moq-relay {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A key pair in `dir`: (private, public).
fn keygen(dir: &Path, name: &str) -> (String, String) {
    let key = dir.join(format!("{name}.key.pem"));
    let _ = std::fs::remove_file(&key);
    relay_cmd(&["keygen", "--out", key.to_str().unwrap()]);
    (key.to_str().unwrap().to_string(), dir.join(format!("{name}.key.pub.pem")).to_str().unwrap().to_string())
}

fn mint(key: &str, user: &str, ttl: &str) -> Vec<u8> {
    let t = relay_cmd(&["token", "--key", key, "--user", user, "--ttl", ttl]);
    moq_auth::token::from_url(t.trim()).unwrap()
}

/// A token that expired two minutes ago (beyond the relay's 60 s skew).
fn expired(key: &str, user: &str) -> Vec<u8> {
    let rng = ring::rand::SystemRandom::new();
    let key = moq_auth::SigningKey::from_pem(&std::fs::read_to_string(key).unwrap(), &rng).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = moq_auth::Claims::new(user, now - 3720, 3600, vec![9; 16], moq_auth::scope::call_scopes(&["moq-phone", "v1"], user));
    claims.mint(&key, &rng).unwrap()
}

/// SETUP carrying `token` in an AUTHORIZATION TOKEN option (USE_VALUE, CAT).
fn setup_with(token: Option<&[u8]>) -> Vec<u8> {
    let mut params = moq_wire::coding::KeyValuePairs::new();
    if let Some(t) = token {
        let v = moq_wire::auth_token::Token::UseValue { kind: moq_wire::auth_token::CAT, value: t.to_vec() };
        params.set_bytesvalue(moq_wire::auth_token::PARAMETER, v.encode());
    }
    let mut b = bytes::BytesMut::new();
    moq_wire::setup::Setup { params }.encode_full(&mut b).unwrap();
    b.to_vec()
}

/// Opens a session with `token`; returns the connection once the relay
/// answered SETUP, or the close code it refused the session with.
async fn open(relay: &Relay, token: Option<&[u8]>) -> Result<(quinn::Connection, quinn::SendStream), u64> {
    let conn = common::connect(relay).await;
    let mut ctl = conn.open_uni().await.unwrap();
    ctl.write_all(&setup_with(token)).await.unwrap();
    // The relay's SETUP goes out before ours is judged; a refusal then closes.
    let mut theirs = conn.accept_uni().await.map_err(|e| code(&e))?;
    read_frame(&mut theirs).await.expect("relay SETUP");
    // A request proves the session was admitted (it waits for the verdict).
    match request(&conn, &Message::Subscribe(sub(0, "moq-phone/v1/users/x/y", "profile"))).await {
        // Our control stream stays open for the session's life (§3.3).
        Some(_) => Ok((conn, ctl)),
        None => Err(code(&conn.closed().await)),
    }
}

fn code(e: &quinn::ConnectionError) -> u64 {
    match e {
        quinn::ConnectionError::ApplicationClosed(c) => c.error_code.into_inner(),
        other => panic!("expected an application close, got {other}"),
    }
}

fn sub(id: u64, ns: &str, track: &str) -> Subscribe {
    Subscribe {
        id,
        track_namespace: moq_wire::coding::TrackNamespace::from_utf8_path(ns),
        track_name: track.into(),
        params: Default::default(),
    }
}

/// Sends one request and returns the first answer (None if the session closed).
async fn request(conn: &quinn::Connection, msg: &Message) -> Option<Response> {
    let (mut send, mut recv) = conn.open_bi().await.ok()?;
    send.write_all(&encode_request(msg).unwrap()).await.ok()?;
    read_frame(&mut recv).await.and_then(|f| f.response().ok())
}

fn refused_with(r: Option<Response>) -> u64 {
    match r {
        Some(Response::RequestError { code, .. }) => code,
        other => panic!("expected REQUEST_ERROR, got {other:?}"),
    }
}

#[tokio::test]
async fn sessions_need_a_token_signed_by_a_configured_key() {
    let dir = std::env::temp_dir().join(format!("moq-auth-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (issuer, issuer_pub) = keygen(&dir, "issuer");
    let (forger, _) = keygen(&dir, "forger");
    let relay = Relay::start(&["--auth-key", &issuer_pub]);

    let refused = |r: Result<_, u64>| r.err();
    assert_eq!(refused(open(&relay, None).await), Some(0x2), "no token: UNAUTHORIZED");
    assert_eq!(refused(open(&relay, Some(&mint(&forger, "alice", "1h"))).await), Some(0x2), "forged: UNAUTHORIZED");
    assert_eq!(refused(open(&relay, Some(b"\x01\x02garbage")).await), Some(0x16), "MALFORMED_AUTH_TOKEN");
    assert_eq!(refused(open(&relay, Some(&expired(&issuer, "alice"))).await), Some(0x18), "EXPIRED_AUTH_TOKEN");
    let ok = open(&relay, Some(&mint(&issuer, "alice", "1h"))).await;
    assert!(ok.is_ok(), "a valid token is admitted");
    let metrics = relay.http_get("/metrics");
    assert!(metrics.contains("moq_relay_auth_sessions_total{result=\"granted\"}"), "{metrics}");
    assert!(metrics.contains("moq_relay_auth_sessions_total{result=\"signature\"} 1"), "{metrics}");
}

#[tokio::test]
async fn alice_cannot_act_as_bob_or_join_other_peoples_calls() {
    let dir = std::env::temp_dir().join(format!("moq-auth-scope-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (issuer, issuer_pub) = keygen(&dir, "issuer");
    let relay = Relay::start(&["--auth-key", &issuer_pub]);
    let (alice, _ctl) = open(&relay, Some(&mint(&issuer, "alice", "1h"))).await.expect("alice admitted");
    let ns = moq_wire::coding::TrackNamespace::from_utf8_path;
    let announce = |id, p: &str| Message::PublishNamespace(PublishNamespace { id, track_namespace: ns(p), params: Default::default() });
    let watch = |id, p: &str| {
        Message::SubscribeNamespace(SubscribeNamespace {
            id,
            track_namespace_prefix: moq_wire::coding::TrackNamespacePrefix::from_utf8_path(p),
            params: Default::default(),
        })
    };
    // Her own registration works; bob's is refused; she stays connected.
    let own = request(&alice, &announce(2, "moq-phone/v1/users/alice/laptop")).await;
    assert!(matches!(own, Some(Response::RequestOk(_))), "{own:?}");
    assert_eq!(refused_with(request(&alice, &announce(4, "moq-phone/v1/users/bob/laptop")).await), 0x1);
    // She cannot watch bob's ringing, nor answer a call to bob.
    assert_eq!(refused_with(request(&alice, &watch(6, "moq-phone/v1/ring/bob")).await), 0x1);
    assert_eq!(refused_with(request(&alice, &announce(8, "moq-phone/v1/call/5e1d/bob/phone")).await), 0x1);
    // Nor subscribe to a call between bob and carol, nor list every call.
    assert_eq!(refused_with(request(&alice, &Message::Subscribe(sub(10, "moq-phone/v1/ring/bob/5e1d/carol", "audio"))).await), 0x1);
    assert_eq!(refused_with(request(&alice, &watch(12, "moq-phone/v1/call")).await), 0x1);
    // Still served: her own ringing.
    assert!(matches!(request(&alice, &watch(14, "moq-phone/v1/ring/alice")).await, Some(Response::RequestOk(_))));
    let metrics = relay.http_get("/metrics");
    assert!(metrics.contains("moq_relay_auth_requests_denied_total{reason=\"scope\"}"), "{metrics}");
    assert!(metrics.contains("moq_relay_auth_requests_denied_total{reason=\"call_policy\"} 2"), "{metrics}");
}
