//! Access tokens for the end-to-end tests: keys and tokens from the relay's
//! own `keygen` / `token` commands, and sessions that present them.

use super::{read_frame, Relay};
use moq_wire::control::{encode_request, Response};
use moq_wire::message::{Message, Subscribe};
use std::path::Path;
use std::process::Command;

pub fn relay_cmd(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_moq-relay")).args(args).output().unwrap();
    assert!(out.status.success(), "moq-relay {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A key pair in `dir`: (private, public).
pub fn keygen(dir: &Path, name: &str) -> (String, String) {
    let key = dir.join(format!("{name}.key.pem"));
    let _ = std::fs::remove_file(&key);
    relay_cmd(&["keygen", "--out", key.to_str().unwrap()]);
    (key.to_str().unwrap().to_string(), dir.join(format!("{name}.key.pub.pem")).to_str().unwrap().to_string())
}

pub fn mint(key: &str, user: &str, ttl: &str) -> Vec<u8> {
    let t = relay_cmd(&["token", "--key", key, "--user", user, "--ttl", ttl]);
    moq_auth::token::from_url(t.trim()).unwrap()
}

/// A token that expired two minutes ago (beyond the relay's 60 s skew).
pub fn expired(key: &str, user: &str) -> Vec<u8> {
    let rng = ring::rand::SystemRandom::new();
    let key = moq_auth::SigningKey::from_pem(&std::fs::read_to_string(key).unwrap(), &rng).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = moq_auth::Claims::new(user, now - 3720, 3600, vec![9; 16], moq_auth::scope::call_scopes(&["moq-phone", "v1"], user));
    claims.mint(&key, &rng).unwrap()
}

/// SETUP carrying `token` in an AUTHORIZATION TOKEN option (USE_VALUE, CAT).
pub fn setup_with(token: Option<&[u8]>) -> Vec<u8> {
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
pub async fn open(relay: &Relay, token: Option<&[u8]>) -> Result<(quinn::Connection, quinn::SendStream), u64> {
    open_via(relay, "127.0.0.1".parse().unwrap(), token).await
}

/// As [`open`], from and to `ip`, one of this machine's addresses.
pub async fn open_via(relay: &Relay, ip: std::net::IpAddr, token: Option<&[u8]>) -> Result<(quinn::Connection, quinn::SendStream), u64> {
    let conn = super::try_connect_via(relay, ip).await.expect("QUIC connection to the relay");
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

pub fn code(e: &quinn::ConnectionError) -> u64 {
    match e {
        quinn::ConnectionError::ApplicationClosed(c) => c.error_code.into_inner(),
        other => panic!("expected an application close, got {other}"),
    }
}

pub fn sub(id: u64, ns: &str, track: &str) -> Subscribe {
    Subscribe {
        id,
        track_namespace: moq_wire::coding::TrackNamespace::from_utf8_path(ns),
        track_name: track.into(),
        params: Default::default(),
    }
}

/// Sends one request and returns the first answer (None if the session closed).
pub async fn request(conn: &quinn::Connection, msg: &Message) -> Option<Response> {
    let (mut send, mut recv) = conn.open_bi().await.ok()?;
    send.write_all(&encode_request(msg).unwrap()).await.ok()?;
    read_frame(&mut recv).await.and_then(|f| f.response().ok())
}
