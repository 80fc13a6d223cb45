//! Process lifecycle: GOAWAY and drain on SIGTERM, certificate reload on
//! SIGHUP, the published fingerprint, WebTransport subprotocol negotiation.

mod common;
use common::{read_frame, session, Relay};

#[tokio::test]
async fn sigterm_sends_goaway_then_exits_when_sessions_leave() {
    // Idle timeout 5 s: a CONNECTION_CLOSE lost on a loaded machine still ends
    // the session long before the 30 s drain, so the exit below is the
    // relay leaving with its last session either way.
    let mut relay = Relay::start(&["--drain-secs", "30", "--idle-timeout-secs", "5"]);
    let (conn, _ctl, mut theirs) = session(&relay).await;
    // One request processed before the GOAWAY.
    assert!(matches!(common::probe(&conn, 0).await, moq_wire::control::Response::RequestError { .. }));
    relay.signal("TERM");
    let f = read_frame(&mut theirs).await.expect("GOAWAY on the control stream");
    assert_eq!(f.kind, 0x10, "expected GOAWAY (§10.4)");
    // On the control stream it names the smallest Request ID not processed.
    assert_eq!(f.goaway().unwrap().request_id, Some(2), "GOAWAY Request ID (§10.4)");
    // New requests are refused with GOING_AWAY while draining.
    match common::probe(&conn, 2).await {
        moq_wire::control::Response::RequestError { code, .. } => assert_eq!(code, 0x6),
        other => panic!("{other:?}"),
    }
    // Registration too: a device must not end up half registered.
    let (mut s, mut r) = conn.open_bi().await.unwrap();
    let m = moq_wire::message::Message::PublishNamespace(moq_wire::message::PublishNamespace {
        id: 4,
        track_namespace: moq_wire::coding::TrackNamespace::from_utf8_path("late/device"),
        params: moq_wire::coding::KeyValuePairs::new(),
    });
    s.write_all(&moq_wire::control::encode_request(&m).unwrap()).await.unwrap();
    match read_frame(&mut r).await.unwrap().response().unwrap() {
        moq_wire::control::Response::RequestError { code, .. } => assert_eq!(code, 0x6),
        other => panic!("PUBLISH_NAMESPACE while draining: {other:?}"),
    }
    conn.close(0u32.into(), b"bye");
    // Well before the 30 s drain: the relay leaves once its last session has.
    let status = tokio::task::spawn_blocking(move || relay.wait_exit()).await.unwrap();
    assert!(status.success(), "relay exit status {status}");
}

#[test]
fn fingerprint_matches_served_certificate_and_sighup_reloads() {
    let relay = Relay::start(&[]);
    let served = |r: &Relay| r.http_get("/certificate.sha256").rsplit("\r\n\r\n").next().unwrap().trim().to_string();
    let before = served(&relay);
    let pem = std::fs::read_to_string(&relay.leaf).unwrap();
    let leaf = moq_certs::load_pem(&relay.leaf, &relay.key).unwrap();
    assert_eq!(before, leaf.fingerprint(), "fingerprint of the certificate in use");
    assert!(pem.contains("BEGIN CERTIFICATE"));
    // Replace the files with a new certificate and ask for a reload.
    let next = moq_certs::write_dev_files(relay.dir.join("next"), &[] as &[&str], std::time::Duration::from_secs(86_400)).unwrap();
    std::fs::copy(&next.leaf_pem, &relay.leaf).unwrap();
    std::fs::copy(&next.leaf_key, &relay.key).unwrap();
    relay.signal("HUP");
    relay.wait_log("certificate reloaded");
    assert_eq!(served(&relay), next.fingerprint);
}

#[test]
fn generated_certificate_is_browser_hashable() {
    // Without --tls-cert the relay generates a ≤14-day P-256 certificate
    // whose hash it publishes; check the published value is a SHA-256.
    let port = common::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_moq-relay"))
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let banner: Vec<String> = std::io::BufReader::new(child.stdout.take().unwrap()).lines().take(5).map(Result::unwrap).collect();
    let line = banner.iter().find(|l| l.contains("sha256")).expect("banner shows the fingerprint");
    let hex = line.split("sha256 ").nth(1).unwrap().split_whitespace().next().unwrap();
    assert_eq!(hex.len(), 64);
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    let _ = child.kill();
    let _ = child.wait();
}
