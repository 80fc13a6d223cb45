//! What the bench's call tests share: processes that die with the test, a
//! relay behind `moq-bench impair`, phones on pub-sub-audio's Phone API and
//! a call between them set up through ring and answer.
#![allow(dead_code)]

use pub_sub_audio::call::{Address, EndReason, Timers, UserAction};
use pub_sub_audio::phone::driver::Outcome;
use pub_sub_audio::phone::media::{LivePort, MediaConfig};
use pub_sub_audio::phone::{Incoming, Phone, PhoneConfig, Progress};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::sync::mpsc;

/// A child process, killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_udp_port() -> u16 {
    loop {
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Starts `cmd`, waits for a line containing `ready` on stdout or stderr
/// (`on_stderr`), returns the process and that line; the rest is drained.
pub fn start(mut cmd: Command, ready: &'static str, on_stderr: bool) -> (Proc, String) {
    if on_stderr {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e} (cargo build -p moq-relay -p moq-bench)"));
    let out: Box<dyn std::io::Read + Send> =
        if on_stderr { Box::new(child.stderr.take().unwrap()) } else { Box::new(child.stdout.take().unwrap()) };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(out).lines().map_while(Result::ok);
        if let Some(l) = lines.by_ref().find(|l| l.contains(ready)) {
            let _ = tx.send(l);
            lines.for_each(drop);
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("{cmd:?} did not print {ready:?}"));
    (Proc(child), line)
}

/// The directory of the workspace's binaries (next to this test's).
pub fn target_dir() -> std::path::PathBuf {
    std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf()
}

/// Our relay, and `moq-bench impair` in front of it with `profile` both ways.
pub struct Link {
    _relay: Proc,
    _proxy: Proc,
    /// `moqt://` URL of the relay itself, and of the impaired way to it.
    pub direct: String,
    pub behind: String,
    /// The proxy's first line (it names its time zero, `epoch_unix_us`).
    pub proxy_line: String,
}

pub fn impaired_relay(profile: &str, seed: Option<u64>) -> Link {
    let rport = free_udp_port();
    let mut relay = Command::new(target_dir().join("moq-relay"));
    relay.args(["--bind", &format!("127.0.0.1:{rport}")]).env("MOQ_RELAY_WEBRTC_BIND", "127.0.0.1:0");
    let (_relay, _) = start(relay, "moq-relay", false);
    let pport = free_udp_port();
    let mut proxy = Command::new(env!("CARGO_BIN_EXE_moq-bench"));
    proxy.args(["impair", "--listen", &format!("127.0.0.1:{pport}"), "--to", &format!("127.0.0.1:{rport}")]);
    proxy.args(["--up", profile, "--down", profile]);
    if let Some(s) = seed {
        proxy.args(["--seed", &s.to_string()]);
    }
    let (_proxy, proxy_line) = start(proxy, "epoch_unix_us", true);
    Link { _relay, _proxy, direct: format!("moqt://127.0.0.1:{rport}"), behind: format!("moqt://127.0.0.1:{pport}"), proxy_line }
}

pub fn config(url: &str, user: &str) -> PhoneConfig {
    PhoneConfig {
        url: url.parse().unwrap(),
        tls: moq_client::Tls::DisableVerify,
        user: user.into(),
        device: format!("{user}1"),
        display: user.into(),
        timers: Timers::default(),
        token: None,
    }
}

/// Waits for `want` on a party's progress, failing if the call ends first.
pub async fn progress(rx: &mut mpsc::UnboundedReceiver<Progress>, who: &str, want: fn(&Progress) -> bool) {
    loop {
        match rx.recv().await {
            Some(p) if want(&p) => return,
            Some(Progress::Ended(r)) => panic!("{who}'s call ended ({r:?}) while waiting"),
            Some(_) => {}
            None => panic!("{who}'s call went away while waiting"),
        }
    }
}

/// Sample `i` of a voiced buzz (150 Hz with two harmonics), so Opus codes it as speech.
pub fn buzz(i: u64) -> i16 {
    let x = i as f64 * 150.0 * std::f64::consts::TAU / 48_000.0;
    ((x.sin() + 0.5 * (2.0 * x).sin() + 0.25 * (3.0 * x).sin()) * 6_000.0) as i16
}

/// A call alice → bob on their live ports, up (bob answered, alice established).
pub struct Call {
    alice_actions: mpsc::UnboundedSender<UserAction>,
    bob_actions: mpsc::UnboundedSender<UserAction>,
    caller: tokio::task::JoinHandle<Outcome>,
    callee: tokio::task::JoinHandle<Outcome>,
    /// Kept for the call's life, as its reports go there.
    _progress: [mpsc::UnboundedReceiver<Progress>; 2],
}

impl Call {
    pub async fn connect(
        alice: Phone,
        bob: Phone,
        mut rings: mpsc::UnboundedReceiver<Incoming>,
        a_live: LivePort,
        b_live: LivePort,
    ) -> Call {
        let (bob_actions, b_act_rx) = mpsc::unbounded_channel();
        let (b_rep, mut b_prog) = mpsc::unbounded_channel();
        let callee = tokio::spawn(async move {
            let inc = rings.recv().await.expect("bob's phone rings");
            bob.take(&inc, MediaConfig { live: Some(b_live), ..Default::default() }, b_act_rx, b_rep).await
        });
        let (alice_actions, a_act_rx) = mpsc::unbounded_channel();
        let (a_rep, mut a_prog) = mpsc::unbounded_channel();
        let caller = tokio::spawn(async move {
            let to = Address::parse("bob").unwrap();
            alice.call(&to, MediaConfig { live: Some(a_live), ..Default::default() }, a_act_rx, a_rep).await
        });
        progress(&mut b_prog, "bob", |p| *p == Progress::Ringing { on: true }).await;
        bob_actions.send(UserAction::Answer).unwrap();
        progress(&mut a_prog, "alice", |p| matches!(p, Progress::Established { .. })).await;
        Call { alice_actions, bob_actions, caller, callee, _progress: [a_prog, b_prog] }
    }

    /// Alice hangs up; both must end with a hangup. Returns (alice's, bob's) outcomes.
    pub async fn hang_up(self) -> (Outcome, Outcome) {
        self.alice_actions.send(UserAction::Hangup).unwrap();
        let a = self.caller.await.unwrap();
        let b = self.callee.await.unwrap();
        assert_eq!(a.reason, EndReason::Hangup { by_peer: false }, "alice");
        assert_eq!(b.reason, EndReason::Hangup { by_peer: true }, "bob");
        drop(self.bob_actions);
        (a, b)
    }
}
