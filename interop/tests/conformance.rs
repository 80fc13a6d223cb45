//! Our conformance client (`moq-interop-client`, TAP 14) against a real relay
//! process: ours always; Cloudflare's moq-relay-ietf when MOQ_RELAY_IETF names
//! its binary (`MOQ_TEST_IETF=1 ./scripts/test` builds and sets it).

use std::process::{Command, Stdio};

fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

struct Kill(std::process::Child);
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

fn run_client(url: &str, ca: &std::path::Path) -> (bool, String) {
    // The relay may still be binding: the client bails out (exit 1, "Bail out!")
    // when unreachable, so retry that case only.
    for _ in 0..50 {
        let out = Command::new(env!("CARGO_BIN_EXE_moq-interop-client")).args(["-r", url, "--ca"]).arg(ca).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("Bail out!") {
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        }
        return (out.status.success(), text);
    }
    panic!("relay at {url} never became reachable");
}

/// Runs the client; every case must pass except those in `known_peer_bugs`,
/// which must fail (so the list is revisited when the peer is fixed).
fn check(url: &str, ca: &std::path::Path, known_peer_bugs: &[&str]) {
    let (_, tap) = run_client(url, ca);
    assert!(tap.starts_with("TAP version 14"), "{tap}");
    let plan: usize = tap.lines().find_map(|l| l.strip_prefix("1..")).unwrap().parse().unwrap();
    let failed: Vec<&str> = tap.lines().filter_map(|l| l.strip_prefix("not ok ")).map(|l| l.split(" - ").nth(1).unwrap_or(l)).collect();
    assert_eq!(failed, known_peer_bugs, "{url}: unexpected failures among {plan}\n{tap}");
}

#[test]
fn every_case_against_our_relay_quic_and_webtransport() {
    let dir = certs();
    let port = free_port();
    let _relay = Kill(
        Command::new(target_bin("moq-relay"))
            .args(["--bind", &format!("127.0.0.1:{port}"), "--tls-cert"])
            .arg(dir.join("leaf.pem"))
            .arg("--tls-key")
            .arg(dir.join("leaf.key"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    check(&format!("moqt://127.0.0.1:{port}"), &dir.join("ca.pem"), &[]);
    check(&format!("https://127.0.0.1:{port}"), &dir.join("ca.pem"), &[]);
}

#[test]
fn every_case_against_moq_relay_ietf_when_available() {
    let Ok(bin) = std::env::var("MOQ_RELAY_IETF") else {
        eprintln!("MOQ_RELAY_IETF not set: run MOQ_TEST_IETF=1 ./scripts/test to include Cloudflare's relay");
        return;
    };
    let dir = certs();
    let port = free_port();
    let _relay = Kill(
        Command::new(bin)
            .args(["--bind", &format!("127.0.0.1:{port}"), "--tls-cert"])
            .arg(dir.join("leaf.pem"))
            .arg("--tls-key")
            .arg(dir.join("leaf.key"))
            .arg("--coordinator-file")
            .arg(dir.join("coord.json"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // moq-relay-ietf 0.8.0 reads raw-QUIC RESET_STREAM codes in the HTTP/3
    // error space (web-transport-quinn 0.11), so a request stream cancelled
    // with CANCELLED (0x1, draft-18 §3.3.3) makes it close the whole session
    // ("invalid RESET_STREAM: 1" in its log). Over WebTransport the codes are
    // mapped and every case passes.
    check(&format!("moqt://127.0.0.1:{port}"), &dir.join("ca.pem"), &["publish-namespace-done", "subscribe-namespace"]);
    check(&format!("https://127.0.0.1:{port}"), &dir.join("ca.pem"), &[]);
}
