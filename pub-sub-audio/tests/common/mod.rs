//! A relay process for the call tests: ours (optionally with extra
//! arguments) or, with MOQ_CALLS_RELAY=ietf, Cloudflare's moq-relay-ietf;
//! and `moq-relay`'s key and token commands.
#![allow(dead_code)]

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Relay {
    child: Child,
    pub url: url::Url,
    _dir: std::path::PathBuf,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self._dir);
        }
    }
}

pub fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// moq-relay-ietf's binary for MOQ_CALLS_RELAY=ietf: MOQ_RELAY_IETF, which
/// must name it (no fallback to our relay, no skip).
pub fn ietf_bin() -> String {
    const INSTALL: &str = "install it with `cargo install --locked moq-relay-ietf@0.8.0 --root target/peers` and set \
                           MOQ_RELAY_IETF=target/peers/bin/moq-relay-ietf (./scripts/test does both)";
    let bin = std::env::var("MOQ_RELAY_IETF").unwrap_or_else(|_| panic!("MOQ_CALLS_RELAY=ietf needs MOQ_RELAY_IETF: {INSTALL}"));
    assert!(std::path::Path::new(&bin).is_file(), "MOQ_RELAY_IETF={bin} does not exist: {INSTALL}");
    bin
}

/// Our relay from this workspace's target dir, or moq-relay-ietf when asked;
/// returned once it says it is listening.
pub fn relay() -> Relay {
    start_relay(&[], false)
}

/// Our moq-relay binary, next to this test's.
pub fn our_bin() -> std::path::PathBuf {
    std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("moq-relay")
}

/// `extra` arguments go to our relay; `ours` picks it whatever MOQ_CALLS_RELAY says.
pub fn start_relay(extra: &[&str], ours: bool) -> Relay {
    let dir = std::env::temp_dir().join(format!("psa-calls-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let via_ietf = !ours && std::env::var("MOQ_CALLS_RELAY").is_ok_and(|v| v == "ietf");
    let mut cmd = if via_ietf {
        let files = write_certs(&dir);
        let mut c = Command::new(ietf_bin());
        c.args(["--bind", &format!("127.0.0.1:{port}"), "--tls-cert", &files.0, "--tls-key", &files.1]);
        c.arg("--coordinator-file").arg(dir.join("coord.json"));
        // It logs "listening on" at INFO once its socket is bound.
        c.env("RUST_LOG", "info").env("NO_COLOR", "1");
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        c
    } else {
        // Ours prints its banner on stdout once both sockets are bound.
        let mut c = Command::new(our_bin());
        c.args(["--bind", &format!("127.0.0.1:{port}")]).args(extra);
        // Its WebRTC gateway on a kernel-chosen port: the default, the QUIC
        // port + 1, may be another test relay's port when many run at once.
        c.env("MOQ_RELAY_WEBRTC_BIND", "127.0.0.1:0");
        c.stdout(Stdio::piped()).stderr(Stdio::null());
        c
    };
    let mut child = cmd.spawn().expect("start the relay (cargo build -p moq-relay)");
    let (out, ready): (Box<dyn std::io::Read + Send>, &str) = match via_ietf {
        true => (Box::new(child.stderr.take().unwrap()), "listening on"),
        false => (Box::new(child.stdout.take().unwrap()), "moq-relay"),
    };
    let relay = Relay { child, url: format!("moqt://127.0.0.1:{port}").parse().unwrap(), _dir: dir };
    // Wait for that line; drain the rest so the relay never blocks on a full pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(out).lines().map_while(Result::ok);
        if lines.by_ref().any(|l| l.contains(ready)) {
            let _ = tx.send(());
            lines.for_each(drop);
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(()) => relay,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the relay exited before it was listening"),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("the relay did not say it was listening within 30 s"),
    }
}

pub fn write_certs(dir: &std::path::Path) -> (String, String) {
    let f = moq_certs::write_dev_files(dir, &[] as &[&str], Duration::from_secs(86_400)).unwrap();
    (f.leaf_pem.display().to_string(), f.leaf_key.display().to_string())
}

/// Runs `moq-relay` (not a relay process): keygen and token.
pub fn relay_cli(args: &[&str]) -> String {
    let out = Command::new(our_bin()).args(args).output().expect("run moq-relay (cargo build -p moq-relay)");
    assert!(out.status.success(), "moq-relay {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}
