//! Shared helpers for the relay's end-to-end tests: a real `moq-relay`
//! process on free loopback ports, and a raw draft-18 QUIC client.
#![allow(dead_code)]

pub mod tokens;

use moq_wire::control::{take_frame, Frame};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

/// A relay process, killed on drop.
pub struct Relay {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub leaf: PathBuf,
    pub key: PathBuf,
    /// stderr lines (logs at RUST_LOG=info), for waiting on events.
    pub log: std::sync::mpsc::Receiver<String>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A port free on both UDP and TCP at the moment of asking.
pub fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Relay {
    /// Starts `moq-relay` with a freshly minted CA + leaf, and waits for its
    /// banner (printed once both sockets are bound).
    pub fn start(extra: &[&str]) -> Relay {
        Self::start_on("127.0.0.1", extra)
    }

    /// As [`Relay::start`], bound to `host` (e.g. `0.0.0.0` to be reached
    /// on a non-loopback address too).
    pub fn start_on(host: &str, extra: &[&str]) -> Relay {
        let dir = std::env::temp_dir().join(format!("moq-relay-test-{}-{}", std::process::id(), rand_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = moq_certs::write_dev_files(&dir, &[] as &[&str], std::time::Duration::from_secs(86_400)).unwrap();
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_moq-relay"))
            .args(["--bind", &format!("{host}:{port}")])
            .arg("--tls-cert")
            .arg(&files.leaf_pem)
            .arg("--tls-key")
            .arg(&files.leaf_key)
            .args(extra)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .env("NO_COLOR", "1")
            // The WebRTC gateway on a port of the kernel's choosing, not the
            // default QUIC port + 1, which another test's relay may have
            // picked (tests that need the gateway pass --webrtc-bind).
            .env("MOQ_RELAY_WEBRTC_BIND", format!("{host}:0"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn moq-relay");
        let out = child.stdout.take().unwrap();
        let mut lines = BufReader::new(out).lines();
        let first = lines.next().expect("relay printed nothing").unwrap();
        assert!(first.starts_with("moq-relay"), "unexpected banner: {first}");
        std::thread::spawn(move || for _ in lines {});
        let (tx, log) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("relay: {line}");
                let _ = tx.send(line);
            }
        });
        Relay { child, port, dir, ca: files.ca_pem, leaf: files.leaf_pem, key: files.leaf_key, log }
    }

    /// Blocks until a log line contains `needle`; panics if the relay exits first.
    pub fn wait_log(&self, needle: &str) -> String {
        loop {
            let line = self.log.recv().unwrap_or_else(|_| panic!("relay exited before logging {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([&format!("-{sig}"), &self.pid().to_string()]).status().unwrap().success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the process to exit and returns its status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    pub fn quic_url(&self) -> String {
        format!("moqt://127.0.0.1:{}", self.port)
    }
    pub fn wt_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// GET on the relay's TCP side.
    pub fn http_get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    }

    /// POST on the relay's TCP side: (status, body).
    pub fn http_post(&self, path: &str, body: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        let status = reply.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = reply.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }

    /// A gauge or counter from /metrics.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let text = self.http_get("/metrics");
        text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
    }

    /// Waits until the relay's /metrics shows at least `n` objects received,
    /// failing after 10 s. Polled: the relay announces no per-object event
    /// (no log line, no push), and the counter is the state that says it has
    /// taken the objects in.
    pub async fn wait_objects_in(&self, n: u64) -> f64 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let v = self.metric("moq_relay_objects_in_total").unwrap_or(0.0);
            if v >= n as f64 {
                return v;
            }
            assert!(std::time::Instant::now() < deadline, "the relay counted {v} objects in, not {n}, within 10 s");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    h.finish()
}

/// Raw QUIC connection with ALPN moqt-18, trusting the relay's test CA.
pub async fn connect(relay: &Relay) -> quinn::Connection {
    try_connect(relay).await.expect("QUIC connection to the relay")
}

/// As [`connect`], returning the relay's refusal instead of failing.
pub async fn try_connect(relay: &Relay) -> Result<quinn::Connection, quinn::ConnectionError> {
    try_connect_via(relay, "127.0.0.1".parse().unwrap()).await
}

/// As [`try_connect`], to the relay's port on `ip` (one of this machine's
/// addresses) and from it, so the relay sees `ip` as the source.
pub async fn try_connect_via(relay: &Relay, ip: std::net::IpAddr) -> Result<quinn::Connection, quinn::ConnectionError> {
    try_connect_with(relay, ip, None).await
}

/// As [`try_connect_via`], sending QUIC keep-alives every `keep_alive`.
pub async fn try_connect_with(
    relay: &Relay,
    ip: std::net::IpAddr,
    keep_alive: Option<std::time::Duration>,
) -> Result<quinn::Connection, quinn::ConnectionError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let roots = moq_certs::load_ca_roots(&relay.ca).unwrap();
    let tls = moq_certs::client_config(roots, &[b"moqt-18"]);
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let mut endpoint = quinn::Endpoint::client(std::net::SocketAddr::new(ip, 0)).unwrap();
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(keep_alive);
    client.transport_config(Arc::new(transport));
    endpoint.set_default_client_config(client);
    endpoint.connect(std::net::SocketAddr::new(ip, relay.port), "localhost").unwrap().await
}

/// As [`connect`], with the client's own QUIC transport settings (a small
/// receive window, say), then the SETUP exchange as [`session`] does it.
pub async fn session_with(relay: &Relay, transport: quinn::TransportConfig) -> (quinn::Connection, quinn::SendStream, quinn::RecvStream) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let roots = moq_certs::load_ca_roots(&relay.ca).unwrap();
    let tls = moq_certs::client_config(roots, &[b"moqt-18"]);
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let mut endpoint = quinn::Endpoint::client(std::net::SocketAddr::new(ip, 0)).unwrap();
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(Arc::new(transport));
    endpoint.set_default_client_config(client);
    let conn = endpoint.connect(std::net::SocketAddr::new(ip, relay.port), "localhost").unwrap().await.expect("QUIC connection");
    let mut ctl = conn.open_uni().await.unwrap();
    ctl.write_all(&setup_bytes()).await.unwrap();
    let mut theirs = conn.accept_uni().await.unwrap();
    let f = read_frame(&mut theirs).await.expect("relay SETUP");
    assert_eq!(f.kind, moq_wire::SETUP);
    (conn, ctl, theirs)
}

/// Encodes a SETUP with no options (§10.3).
pub fn setup_bytes() -> Vec<u8> {
    let mut b = bytes::BytesMut::new();
    moq_wire::setup::Setup { params: Default::default() }.encode_full(&mut b).unwrap();
    b.to_vec()
}

/// Connects and completes the SETUP exchange; returns the connection, our
/// control stream and the relay's.
pub async fn session(relay: &Relay) -> (quinn::Connection, quinn::SendStream, quinn::RecvStream) {
    let conn = connect(relay).await;
    let mut ctl = conn.open_uni().await.unwrap();
    ctl.write_all(&setup_bytes()).await.unwrap();
    let mut theirs = conn.accept_uni().await.unwrap();
    let f = read_frame(&mut theirs).await.expect("relay SETUP");
    assert_eq!(f.kind, moq_wire::SETUP);
    (conn, ctl, theirs)
}

/// Reads one control frame (§10) from a stream.
pub async fn read_frame(recv: &mut quinn::RecvStream) -> Option<Frame> {
    let mut buf = bytes::BytesMut::new();
    loop {
        if let Some(f) = take_frame(&mut buf).unwrap() {
            return Some(f);
        }
        let chunk = recv.read_chunk(65536, true).await.ok()??;
        buf.extend_from_slice(&chunk.bytes);
    }
}

/// Sends a SUBSCRIBE for a track nobody publishes and returns the response:
/// proves the session is alive and served.
pub async fn probe(conn: &quinn::Connection, request_id: u64) -> moq_wire::control::Response {
    use moq_wire::message::{Message, Subscribe};
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let msg = Message::Subscribe(Subscribe {
        id: request_id,
        track_namespace: moq_wire::coding::TrackNamespace::from_utf8_path("probe/none"),
        track_name: "t".into(),
        params: Default::default(),
    });
    send.write_all(&moq_wire::control::encode_request(&msg).unwrap()).await.unwrap();
    read_frame(&mut recv).await.expect("probe response").response().unwrap()
}

/// Path of aiomoqt's virtualenv `bin/`: MOQ_AIOMOQT_BIN, else where
/// `./scripts/test` installs it (target/peers/aiomoqt/bin). There is no skip:
/// a missing aiomoqt fails the test with what to install.
pub fn aiomoqt_bin() -> PathBuf {
    let dir = std::env::var_os("MOQ_AIOMOQT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/peers/aiomoqt/bin"));
    assert!(
        dir.join("moq-interop-client").exists(),
        "aiomoqt is not installed at {}: run ./scripts/test (it installs the test peers), or install it by hand with \
         `python3.12 -m venv target/peers/aiomoqt && target/peers/aiomoqt/bin/pip install aiomoqt==0.13.3` \
         and set MOQ_AIOMOQT_BIN=target/peers/aiomoqt/bin",
        dir.display()
    );
    dir
}
