//! Access tokens at a real relay process (issue 13): `moq-relay keygen` and
//! `moq-relay token` make what `--auth-key` accepts; no token, a forged one,
//! an expired one and garbage are refused at SETUP with the draft's codes;
//! requests outside the token's scopes or the call policy get REQUEST_ERROR
//! UNAUTHORIZED while the session goes on.

mod common;
use common::tokens::{expired, keygen, mint, open, request, sub};
use common::Relay;
use moq_wire::control::Response;
use moq_wire::message::{Message, PublishNamespace, SubscribeNamespace};

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

#[tokio::test]
async fn a_session_outliving_its_token_gets_goaway_then_expired_auth_token() {
    let dir = std::env::temp_dir().join(format!("moq-auth-expiry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (issuer, issuer_pub) = keygen(&dir, "issuer");
    // No clock skew allowed, so the token's life ends at its `exp` (else at `exp` + 60 s).
    let relay = Relay::start(&["--auth-key", &issuer_pub, "--token-grace-secs", "1", "--token-skew-secs", "0"]);
    let conn = common::connect(&relay).await;
    let mut ctl = conn.open_uni().await.unwrap();
    ctl.write_all(&common::tokens::setup_with(Some(&mint(&issuer, "alice", "2s")))).await.unwrap();
    let mut theirs = conn.accept_uni().await.unwrap();
    assert_eq!(common::read_frame(&mut theirs).await.expect("relay SETUP").kind, moq_wire::SETUP);
    // At the token's expiry: GOAWAY, so the client can reconnect between calls…
    let goaway = common::read_frame(&mut theirs).await.expect("GOAWAY when the token expires");
    assert_eq!(goaway.kind, moq_wire::control::kind::GOAWAY);
    // …and after the grace period the session is closed EXPIRED_AUTH_TOKEN.
    assert_eq!(common::tokens::code(&conn.closed().await), 0x18);
}
