//! Our conformance client (`moq-interop-client`, TAP 14) against a real relay
//! process: ours, and Cloudflare's moq-relay-ietf, whose binary MOQ_RELAY_IETF
//! names (`./scripts/test` installs it and sets the variable). A missing
//! moq-relay-ietf fails the test; `MOQ_TEST_IETF=0` skips it deliberately.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn target_bin(name: &str) -> std::path::PathBuf {
    std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join(name)
}

/// Mints a CA + leaf (ca.pem, leaf.pem, leaf.key) in a fresh directory.
fn certs() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("interop-certs-{}-{}", std::process::id(), free_port()));
    moq_certs::write_dev_files(&dir, &[] as &[&str], std::time::Duration::from_secs(86_400)).unwrap();
    dir
}

/// moq-relay-ietf's binary, or `None` when `MOQ_TEST_IETF=0` skips it; a
/// missing binary otherwise fails with what to install.
fn ietf_relay() -> Option<std::path::PathBuf> {
    if std::env::var("MOQ_TEST_IETF").is_ok_and(|v| v == "0") {
        eprintln!("MOQ_TEST_IETF=0: skipping Cloudflare's moq-relay-ietf");
        return None;
    }
    const INSTALL: &str = "install it with `cargo install --locked moq-relay-ietf@0.8.0 --root target/peers` and set \
                           MOQ_RELAY_IETF=target/peers/bin/moq-relay-ietf (./scripts/test does both), or skip it with MOQ_TEST_IETF=0";
    let bin = std::env::var_os("MOQ_RELAY_IETF").unwrap_or_else(|| panic!("MOQ_RELAY_IETF is not set: {INSTALL}"));
    let bin = std::path::PathBuf::from(bin);
    assert!(bin.is_file(), "MOQ_RELAY_IETF={} does not exist: {INSTALL}", bin.display());
    Some(bin)
}

/// Starts a relay and returns once it said it is listening: a line containing
/// `ready` on its stdout (ours prints a banner once both sockets are bound) or
/// on its stderr (moq-relay-ietf logs "listening on" once its socket is).
/// The rest of its output is drained so it never blocks on a full pipe.
fn start_relay(mut cmd: Command, ready: &str, on_stderr: bool) -> Kill {
    let mut child = Kill(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the relay"));
    let (tx, rx) = mpsc::channel();
    let out: Box<dyn Read + Send> = Box::new(child.0.stdout.take().unwrap());
    let err: Box<dyn Read + Send> = Box::new(child.0.stderr.take().unwrap());
    let (watched, other) = if on_stderr { (err, out) } else { (out, err) };
    std::thread::spawn(move || std::io::copy(&mut BufReader::new(other), &mut std::io::sink()));
    let ready = ready.to_string();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut lines = BufReader::new(watched).lines().map_while(Result::ok);
        for line in lines.by_ref() {
            if line.contains(&ready) {
                let _ = tx.send(Ok(()));
                lines.for_each(drop);
                return;
            }
            seen.push(line);
        }
        // Ended before the line: the relay exited; say what it printed.
        let _ = tx.send(Err(seen.join("\n")));
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(())) => child,
        Ok(Err(out)) => panic!("the relay exited before it was listening:\n{out}"),
        Err(_) => panic!("the relay did not say it was listening within 30 s"),
    }
}

fn run_client(url: &str, ca: &std::path::Path, draft: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_moq-interop-client")).args(["-r", url, "--draft", draft, "--ca"]).arg(ca).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs the client; every case must pass except those in `known_peer_bugs`,
/// which must fail (so the list is revisited when the peer is fixed).
fn check(url: &str, ca: &std::path::Path, known_peer_bugs: &[&str]) {
    check_at(url, ca, "18", known_peer_bugs)
}

fn check_at(url: &str, ca: &std::path::Path, draft: &str, known_peer_bugs: &[&str]) {
    let (_, tap) = run_client(url, ca, draft);
    assert!(tap.starts_with("TAP version 14"), "{tap}");
    let plan: usize = tap.lines().find_map(|l| l.strip_prefix("1..")).unwrap().parse().unwrap();
    let failed: Vec<&str> = tap.lines().filter_map(|l| l.strip_prefix("not ok ")).map(|l| l.split(" - ").nth(1).unwrap_or(l)).collect();
    assert_eq!(failed, known_peer_bugs, "{url}: unexpected failures among {plan}\n{tap}");
}

#[test]
fn every_case_against_our_relay_quic_and_webtransport() {
    let dir = certs();
    let port = free_port();
    let mut cmd = Command::new(target_bin("moq-relay"));
    cmd.args(["--bind", &format!("127.0.0.1:{port}"), "--tls-cert"]).arg(dir.join("leaf.pem")).arg("--tls-key").arg(dir.join("leaf.key"));
    let _relay = start_relay(cmd, "moq-relay", false);
    check(&format!("moqt://127.0.0.1:{port}"), &dir.join("ca.pem"), &[]);
    check(&format!("https://127.0.0.1:{port}"), &dir.join("ca.pem"), &[]);
}

/// The same cases at draft-22 (docs/DRAFT22.md): the joining case asks for
/// its backfill with FILL_PARAMETERS, the withdrawal case resets instead of
/// FIN.
#[test]
fn every_case_against_our_relay_at_draft22() {
    let dir = certs();
    let port = free_port();
    let mut cmd = Command::new(target_bin("moq-relay"));
    cmd.args(["--bind", &format!("127.0.0.1:{port}"), "--tls-cert"]).arg(dir.join("leaf.pem")).arg("--tls-key").arg(dir.join("leaf.key"));
    let _relay = start_relay(cmd, "moq-relay", false);
    check_at(&format!("moqt://127.0.0.1:{port}"), &dir.join("ca.pem"), "22", &[]);
    check_at(&format!("https://127.0.0.1:{port}"), &dir.join("ca.pem"), "22", &[]);
}

#[test]
fn every_case_against_moq_relay_ietf() {
    let Some(bin) = ietf_relay() else { return };
    let dir = certs();
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["--bind", &format!("127.0.0.1:{port}"), "--tls-cert"]).arg(dir.join("leaf.pem")).arg("--tls-key").arg(dir.join("leaf.key"));
    cmd.arg("--coordinator-file").arg(dir.join("coord.json"));
    // Its "listening on" line is logged at INFO, in colour unless NO_COLOR.
    cmd.env("RUST_LOG", "info").env("NO_COLOR", "1");
    let _relay = start_relay(cmd, "listening on", true);
    // moq-relay-ietf 0.8.0 reads raw-QUIC RESET_STREAM codes in the HTTP/3
    // error space (web-transport-quinn 0.11), so a request stream cancelled
    // with CANCELLED (0x1, draft-18 §3.3.3) makes it close the whole session
    // ("invalid RESET_STREAM: 1" in its log). Over WebTransport the codes are
    // mapped and every case passes.
    check(&format!("moqt://127.0.0.1:{port}"), &dir.join("ca.pem"), &["publish-namespace-done", "subscribe-namespace"]);
    check(&format!("https://127.0.0.1:{port}"), &dir.join("ca.pem"), &[]);
}

/// moq-relay-ietf built with `--features auth-cat` (MOQ_RELAY_IETF_CAT), or
/// `None` when `MOQ_TEST_IETF=0` skips it.
fn ietf_cat_relay() -> Option<std::path::PathBuf> {
    if std::env::var("MOQ_TEST_IETF").is_ok_and(|v| v == "0") {
        eprintln!("MOQ_TEST_IETF=0: skipping Cloudflare's moq-relay-ietf with auth-cat");
        return None;
    }
    const INSTALL: &str = "install it with `cargo install --locked moq-relay-ietf@0.8.0 --features auth-cat --root target/peers/ietf-cat` \
                           and set MOQ_RELAY_IETF_CAT=target/peers/ietf-cat/bin/moq-relay-ietf (./scripts/test does both), or skip it \
                           with MOQ_TEST_IETF=0";
    let bin = std::env::var_os("MOQ_RELAY_IETF_CAT").unwrap_or_else(|| panic!("MOQ_RELAY_IETF_CAT is not set: {INSTALL}"));
    let bin = std::path::PathBuf::from(bin);
    assert!(bin.is_file(), "MOQ_RELAY_IETF_CAT={} does not exist: {INSTALL}", bin.display());
    Some(bin)
}

/// Our tokens are the standard's (issue 13): Cloudflare's relay, checking
/// Common Access Tokens with the cat-token crate, admits a session with a
/// token moq-auth minted for alice and lets her register, and refuses a
/// token signed by another key and a session without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_tokens_on_moq_relay_ietf_auth_cat() {
    let Some(bin) = ietf_cat_relay() else { return };
    let dir = certs();
    let rng = ring::rand::SystemRandom::new();
    let issuer = moq_auth::SigningKey::generate(&rng).unwrap();
    let forger = moq_auth::SigningKey::generate(&rng).unwrap();
    std::fs::write(dir.join("issuer.pub.pem"), issuer.public().to_pem()).unwrap();
    let policy = r#"{"default": {"auth": {"keys": [{"kid": "k1", "alg": "ES256", "pem_file": "issuer.pub.pem"}],
                     "issuers": ["moq-phone"], "audiences": ["moq-phone"]}}}"#;
    std::fs::write(dir.join("scope.json"), policy).unwrap();
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["--bind", &format!("127.0.0.1:{port}"), "--tls-cert"]).arg(dir.join("leaf.pem")).arg("--tls-key").arg(dir.join("leaf.key"));
    cmd.arg("--coordinator-file").arg(dir.join("coord.json")).arg("--scope-config").arg(dir.join("scope.json"));
    cmd.env("RUST_LOG", "info").env("NO_COLOR", "1");
    let _relay = start_relay(cmd, "listening on", true);

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mint = |key: &moq_auth::SigningKey| {
        let claims = moq_auth::Claims::new("alice", now, 600, vec![3; 16], moq_auth::scope::call_scopes(&["moq-phone", "v1"], "alice"));
        claims.mint(key, &rng).unwrap()
    };
    let url: url::Url = format!("moqt://127.0.0.1:{port}").parse().unwrap();
    let tls = moq_client::Tls::Ca(dir.join("ca.pem"));
    // Registers alice's device: connect with the token, then PUBLISH_NAMESPACE.
    let register = |token: Option<Vec<u8>>| {
        let (url, tls) = (url.clone(), tls.clone());
        async move {
            let opts = moq_client::Options { token, ..Default::default() };
            let session = moq_client::Client::connect_with(&url, &tls, &opts).await?;
            let ns = moq_wire::coding::TrackNamespace::from_utf8_path("moq-phone/v1/users/alice/d1");
            session.publish_namespace(&ns).await.map(|_| ())
        }
    };
    register(Some(mint(&issuer))).await.expect("moq-relay-ietf admits our token");
    assert!(register(Some(mint(&forger))).await.is_err(), "a token signed by another key is refused");
    assert!(register(None).await.is_err(), "no token is refused");
}

/// Draft-22 requests our relay's draft-18 routing cannot serve as asked are
/// refused with a REQUEST_ERROR, and the session goes on (docs/DRAFT22.md
/// §0.2): a Range Filter, which needs MAX_FILTER_RANGES the relay does not
/// advertise, gets INVALID_FILTER (0x36). A draft-18 session to the same
/// relay cannot even send one: its codec has no such parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft22_requests_the_relay_cannot_serve_are_refused_not_fatal() {
    let dir = certs();
    let port = free_port();
    let mut cmd = Command::new(target_bin("moq-relay"));
    cmd.args(["--bind", &format!("127.0.0.1:{port}"), "--tls-cert"]).arg(dir.join("leaf.pem")).arg("--tls-key").arg(dir.join("leaf.key"));
    let _relay = start_relay(cmd, "moq-relay", false);
    let tls = moq_client::Tls::Ca(dir.join("ca.pem"));
    for url in [format!("moqt://127.0.0.1:{port}"), format!("https://127.0.0.1:{port}")] {
        let url: url::Url = url.parse().unwrap();
        let opts = moq_client::Options { versions: vec![moq_wire::Version::Draft22], ..Default::default() };
        let session = moq_client::Client::connect_with(&url, &tls, &opts).await.expect("a draft-22 session");
        assert_eq!(session.version(), moq_wire::Version::Draft22);
        let ns = moq_wire::coding::TrackNamespace::from_utf8_path("interop/draft22");
        // SUBGROUP_FILTER: set 0, one range starting at subgroup 0.
        let mut params = moq_client::SubscribeParams::new();
        params.0.set_bytesvalue(moq_wire::draft22::params::param::SUBGROUP_FILTER, vec![0x00, 0x00]);
        match session.subscribe(&ns, "t", params).await {
            Err(moq_client::Error::Rejected(e)) => assert_eq!(e.code, moq_wire::draft22::request_error::INVALID_FILTER, "{e}"),
            other => panic!("{url}: expected INVALID_FILTER, got {:?}", other.map(|s| s.request_id)),
        }
        // The session is alive: an ordinary request is answered as usual.
        match session.subscribe(&ns, "t", moq_client::SubscribeParams::new()).await {
            Err(moq_client::Error::Rejected(e)) => assert_eq!(e.code, 0x10, "{e}"),
            other => panic!("{url}: expected DOES_NOT_EXIST, got {:?}", other.map(|s| s.request_id)),
        }
        session.check_alive().expect("the session survives both refusals");
    }
}
