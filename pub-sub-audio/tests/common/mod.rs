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
    start_relay_on(free_port(), extra, ours)
}

/// [`start_relay`] on a given port: a relay restarted where its phones
/// expect it.
pub fn start_relay_on(port: u16, extra: &[&str], ours: bool) -> Relay {
    start_relay_full(port, extra, ours, None)
}

/// Our relay logging at `rust_log` into `stderr` (e.g. a file on a full disk).
pub fn start_relay_logging(extra: &[&str], rust_log: &str, stderr: std::fs::File) -> Relay {
    start_relay_full(free_port(), extra, true, Some((rust_log, stderr)))
}

fn start_relay_full(port: u16, extra: &[&str], ours: bool, log: Option<(&str, std::fs::File)>) -> Relay {
    let dir = std::env::temp_dir().join(format!("psa-calls-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
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
        if let Some((level, file)) = log {
            c.env("RUST_LOG", level).stderr(file);
        }
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

impl Relay {
    /// The UDP port it listens on.
    pub fn port(&self) -> u16 {
        self.url.port().expect("a relay URL has a port")
    }

    /// SIGTERM: our relay sends GOAWAY to every session and exits once
    /// they are gone (or its drain time is over).
    pub fn terminate(&mut self) {
        let st = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("run kill");
        assert!(st.success(), "kill -TERM the relay");
    }

    /// SIGHUP: our relay reloads its certificate files (--tls-cert / --tls-key).
    pub fn hangup(&mut self) {
        let st = Command::new("kill").args(["-HUP", &self.child.id().to_string()]).status().expect("run kill");
        assert!(st.success(), "kill -HUP the relay");
    }

    /// The body of `GET path` on the relay's HTTP side (the same port, TCP).
    pub fn http_get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port())).expect("connect to the relay's HTTP side");
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        reply.split("\r\n\r\n").nth(1).unwrap_or("").trim().to_string()
    }

    /// Waits for the relay process to exit (after [`Relay::terminate`]).
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("reap the relay")
    }

    /// `kill -9`: the relay vanishes without closing a session (no GOAWAY,
    /// no CONNECTION_CLOSE); its phones find out from their idle timers.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL the relay");
        self.child.wait().expect("reap the relay");
    }
}

/// A `moq-phone` process whose stdout lines a test waits for, and whose
/// stdin takes `register`'s commands (`call bob`, `hangup`, …).
pub struct PhoneProc {
    pub name: String,
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every line seen so far, for the message of a failed wait.
    pub seen: Vec<String>,
}

impl Drop for PhoneProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PhoneProc {
    /// Starts `moq-phone -r URL -k ARGS…` (the binary next to this test's).
    pub fn start(name: &str, url: &url::Url, args: &[&str]) -> PhoneProc {
        let bin = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("moq-phone");
        let mut child = Command::new(bin)
            .args(["-r", url.as_str(), "-k"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moq-phone (cargo build -p pub-sub-audio --bins)");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        PhoneProc { name: name.into(), child, stdin, lines, seen: Vec::new() }
    }

    /// Writes one command line to its stdin.
    pub fn send(&mut self, command: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{command}").and_then(|_| stdin.flush()).unwrap_or_else(|e| panic!("{}: write {command:?}: {e}", self.name));
    }

    /// Waits for the next line starting with `prefix` and returns it;
    /// panics (with every line so far) if the process ends first or after
    /// `within` — a guard against a hang, not a timing requirement.
    pub fn wait_for(&mut self, prefix: &str, within: Duration) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.starts_with(prefix) {
                        return l;
                    }
                }
                Err(e) => {
                    let why = match e {
                        std::sync::mpsc::RecvTimeoutError::Timeout => format!("not within {within:?}"),
                        std::sync::mpsc::RecvTimeoutError::Disconnected => "the process ended".into(),
                    };
                    panic!("{}: no line starting {prefix:?} ({why}); its lines:\n{}", self.name, self.seen.join("\n"))
                }
            }
        }
    }

    /// Waits until a line starting with each of `prefixes` has come, in
    /// any order (lines printed by different tasks of the phone), and
    /// returns them in the order of `prefixes`.
    pub fn wait_for_each(&mut self, prefixes: &[&str], within: Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + within;
        let mut found: Vec<Option<String>> = vec![None; prefixes.len()];
        while found.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if let Some(i) = (0..prefixes.len()).find(|&i| found[i].is_none() && l.starts_with(prefixes[i])) {
                        found[i] = Some(l);
                    }
                }
                Err(e) => {
                    let missing: Vec<&str> = prefixes.iter().zip(&found).filter(|(_, f)| f.is_none()).map(|(p, _)| *p).collect();
                    panic!("{}: no line starting with each of {missing:?} ({e:?}); its lines:\n{}", self.name, self.seen.join("\n"))
                }
            }
        }
        found.into_iter().flatten().collect()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
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

/// A UDP forwarder between phones and a relay that a test can cut and heal:
/// a network partition. Each client address gets its own upstream socket,
/// so the relay sees one peer per phone (as through bench/src/impair.rs,
/// whose outages are timed; this one is cut on an event).
pub struct Partition {
    /// Where phones connect instead of the relay.
    pub url: url::Url,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Partition {
    pub fn start(relay: &url::Url) -> Partition {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let server: std::net::SocketAddr = format!("127.0.0.1:{}", relay.port().unwrap()).parse().unwrap();
        let front = Arc::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
        front.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let port = front.local_addr().unwrap().port();
        let (cut, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (c, s) = (cut.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut ups: std::collections::HashMap<std::net::SocketAddr, Arc<std::net::UdpSocket>> = Default::default();
            let mut buf = [0u8; 65_536];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = front.recv_from(&mut buf) else { continue };
                if c.load(Ordering::Relaxed) {
                    continue;
                }
                let up = ups.entry(from).or_insert_with(|| {
                    let up = Arc::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
                    up.connect(server).unwrap();
                    up.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                    let (up2, front2, c2, s2) = (up.clone(), front.clone(), c.clone(), s.clone());
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 65_536];
                        while !s2.load(Ordering::Relaxed) {
                            // A refused send (the relay is down) shows up as
                            // an error here; the phone keeps trying.
                            let Ok(n) = up2.recv(&mut buf) else { continue };
                            if !c2.load(Ordering::Relaxed) {
                                let _ = front2.send_to(&buf[..n], from);
                            }
                        }
                    });
                    up
                });
                let _ = up.send(&buf[..n]);
            }
        });
        Partition { url: format!("moqt://127.0.0.1:{port}").parse().unwrap(), cut, stop }
    }

    /// Drops every packet both ways from now on.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Forwards again.
    pub fn heal(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}
