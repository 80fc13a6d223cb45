//! Listener feedback and sender adaptation end to end (docs/design/quality.md
//! §4, issue 19): two phones (pub-sub-audio's Phone API, real Opus, real QUIC)
//! call through our moq-relay; everything alice sends and receives crosses
//! `moq-bench impair` with the `bursty5` profile both ways (Gilbert–Elliott,
//! 5 % loss in bursts of 3 on average). Bob measures the loss of alice's
//! audio and reports it on his keepalives; alice's encoder must raise its
//! expected loss above the fixed 5 % it starts with and turn REDUNDANT_FRAME
//! on, and bob's playout must play lost frames from those copies.
//!
//! The test asserts order and counts, not time: it runs until bob has played
//! 20 s of alice's audio (counted in frames), then alice hangs up and both
//! calls' counters are checked. A second test does the same with two
//! `moq-phone` processes (`--hangup-after 20`) and reads their `audio:`
//! lines. Needs `cargo build -p moq-relay -p pub-sub-audio --bin moq-phone`.

use pub_sub_audio::call::{Address, EndReason, Timers, UserAction};
use pub_sub_audio::phone::media::{AudioFrame, LivePort, MediaConfig};
use pub_sub_audio::phone::{Phone, PhoneConfig, Progress};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::sync::mpsc;

/// Frames bob plays before alice hangs up (20 s: the policy needs 2 s of
/// loss to turn redundancy on, the meter a 2 s window; bursts are ~1 s apart).
const FRAMES: usize = 1_000;
/// A bound on the whole test, so a broken build fails instead of hanging.
const GIVE_UP: Duration = Duration::from_secs(90);

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_udp_port() -> u16 {
    loop {
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Starts `cmd` and waits for a line containing `ready` on stdout or stderr
/// (`on_stderr`); the rest is drained.
fn start(mut cmd: Command, ready: &'static str, on_stderr: bool) -> Proc {
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
        if lines.by_ref().any(|l| l.contains(ready)) {
            let _ = tx.send(());
            lines.for_each(drop);
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("{cmd:?} did not print {ready:?}"));
    Proc(child)
}

/// A live PCM port: a voiced 20 ms frame (a 150 Hz buzz with harmonics, so
/// Opus codes it as speech) every 20 ms until the call ends; each frame the
/// phone plays is counted on the returned receiver.
fn live_port() -> (LivePort, mpsc::UnboundedReceiver<()>) {
    let (from_tx, from_rx) = mpsc::channel(16);
    let (to_tx, mut to_rx) = mpsc::channel::<AudioFrame>(64);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut t = 0u64;
        loop {
            tick.tick().await;
            if from_tx.is_closed() {
                return;
            }
            let pcm = (0..960)
                .map(|i| {
                    let x = (t + i) as f64 * 150.0 * std::f64::consts::TAU / 48_000.0;
                    ((x.sin() + 0.5 * (2.0 * x).sin() + 0.25 * (3.0 * x).sin()) * 6_000.0) as i16
                })
                .collect();
            t += 960;
            let _ = from_tx.try_send(AudioFrame::Pcm(pcm));
        }
    });
    let (heard_tx, heard_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while to_rx.recv().await.is_some() {
            let _ = heard_tx.send(());
        }
    });
    (LivePort { from_user: from_rx, to_user: to_tx, opus: false }, heard_rx)
}

fn config(url: &str, user: &str) -> PhoneConfig {
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
async fn progress(rx: &mut mpsc::UnboundedReceiver<Progress>, who: &str, want: fn(&Progress) -> bool) {
    loop {
        match rx.recv().await {
            Some(p) if want(&p) => return,
            Some(Progress::Ended(r)) => panic!("{who}'s call ended ({r:?}) while waiting"),
            Some(_) => {}
            None => panic!("{who}'s call went away while waiting"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursty_loss_raises_the_senders_fec_and_redundant_copies_are_played() {
    tokio::time::timeout(GIVE_UP, adapt_call()).await.expect("the test did not finish within its bound");
}

async fn adapt_call() {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().unwrap().parent().unwrap();
    let rport = free_udp_port();
    let mut relay = Command::new(target.join("moq-relay"));
    relay.args(["--bind", &format!("127.0.0.1:{rport}")]).env("MOQ_RELAY_WEBRTC_BIND", "127.0.0.1:0");
    let _relay = start(relay, "moq-relay", false);
    let pport = free_udp_port();
    let mut proxy = Command::new(env!("CARGO_BIN_EXE_moq-bench"));
    proxy.args(["impair", "--listen", &format!("127.0.0.1:{pport}"), "--to", &format!("127.0.0.1:{rport}")]);
    proxy.args(["--up", "bursty5", "--down", "bursty5", "--seed", "19"]);
    let _proxy = start(proxy, "epoch_unix_us", true);

    // Alice behind the proxy, bob straight at the relay.
    let (alice, _) = Phone::register(config(&format!("moqt://127.0.0.1:{pport}"), "alice")).await.expect("alice registers");
    let (bob, mut rings) = Phone::register(config(&format!("moqt://127.0.0.1:{rport}"), "bob")).await.expect("bob registers");

    let (b_act, b_act_rx) = mpsc::unbounded_channel();
    let (b_rep, mut b_prog) = mpsc::unbounded_channel();
    let (b_live, mut b_heard) = live_port();
    let callee = tokio::spawn(async move {
        let inc = rings.recv().await.expect("bob's phone rings");
        bob.take(&inc, MediaConfig { live: Some(b_live), ..Default::default() }, b_act_rx, b_rep).await
    });
    let (a_act, a_act_rx) = mpsc::unbounded_channel();
    let (a_rep, mut a_prog) = mpsc::unbounded_channel();
    let (a_live, _a_heard) = live_port();
    let caller = tokio::spawn(async move {
        let to = Address::parse("bob").unwrap();
        alice.call(&to, MediaConfig { live: Some(a_live), ..Default::default() }, a_act_rx, a_rep).await
    });

    progress(&mut b_prog, "bob", |p| *p == Progress::Ringing { on: true }).await;
    b_act.send(UserAction::Answer).unwrap();
    progress(&mut a_prog, "alice", |p| matches!(p, Progress::Established { .. })).await;
    for _ in 0..FRAMES {
        b_heard.recv().await.expect("bob's call ended before he heard 20 s of alice");
    }
    a_act.send(UserAction::Hangup).unwrap();
    let a = caller.await.unwrap();
    let b = callee.await.unwrap();
    assert_eq!(a.reason, EndReason::Hangup { by_peer: false }, "alice");
    assert_eq!(b.reason, EndReason::Hangup { by_peer: true }, "bob");
    drop(b_act);

    let (sent, heard) = (a.recording.sender, b.recording.stats);
    eprintln!("alice sends: {sent:?}");
    eprintln!("bob hears:   {heard:?}");
    eprintln!("bob sends:   {:?}", b.recording.sender);
    eprintln!("alice hears: {:?}", a.recording.stats);
    // Bob's reports reached alice and moved her encoder off its fixed 5 %.
    assert!(sent.reports > 0, "no report from bob reached alice");
    assert!(sent.max_loss_perc > 5, "alice's expected loss never rose above the default 5 %: {sent:?}");
    // Redundancy went on and bob played lost frames from the copies.
    assert!(sent.max_k >= 1 && sent.redundant_sent > 0, "alice never sent a REDUNDANT_FRAME: {sent:?}");
    assert!(heard.redundant > 0, "bob played no frame from a REDUNDANT_FRAME copy: {heard:?}");
}

/// The `key value` pairs of moq-phone's final `audio: …` line.
fn audio_line(lines: &[String], who: &str) -> std::collections::HashMap<String, u64> {
    let l = lines.iter().find_map(|l| l.strip_prefix("audio: ")).unwrap_or_else(|| panic!("{who} printed no audio line: {lines:?}"));
    let words: Vec<&str> = l.split_whitespace().collect();
    words.chunks(2).filter_map(|kv| Some((kv[0].to_string(), kv.get(1)?.parse().ok()?))).collect()
}

/// Starts moq-phone with `args`; its stdout lines arrive on the receiver.
fn phone(target: &std::path::Path, args: &[&str]) -> (Proc, std::sync::mpsc::Receiver<String>) {
    let mut cmd = Command::new(target.join("moq-phone"));
    cmd.args(args).env("RUST_LOG", "warn").stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start moq-phone: {e} (cargo build -p pub-sub-audio --bin moq-phone)"));
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    (Proc(child), rx)
}

/// Lines until the process closes its stdout (it exited), bounded by `GIVE_UP`.
fn all_lines(rx: &std::sync::mpsc::Receiver<String>, who: &str) -> Vec<String> {
    let end = std::time::Instant::now() + GIVE_UP;
    let mut lines = Vec::new();
    loop {
        match rx.recv_timeout(end.saturating_duration_since(std::time::Instant::now())) {
            Ok(l) => lines.push(l),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return lines,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("{who} did not finish: {lines:?}"),
        }
    }
}

#[test]
fn moq_phone_processes_print_the_senders_adaptation_and_the_copies_played() {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().unwrap().parent().unwrap();
    let dir = std::env::temp_dir().join(format!("call-adapt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // 25 s of a voiced buzz (150 Hz and harmonics), so Opus codes it as speech.
    let buzz: Vec<i16> = (0..25 * 48_000)
        .map(|i| {
            let x = i as f64 * 150.0 * std::f64::consts::TAU / 48_000.0;
            ((x.sin() + 0.5 * (2.0 * x).sin() + 0.25 * (3.0 * x).sin()) * 6_000.0) as i16
        })
        .collect();
    let wav = dir.join("buzz.wav");
    pub_sub_audio::audio::wav::write(&wav, &buzz).unwrap();
    let wav = wav.to_str().unwrap();

    let rport = free_udp_port();
    let mut relay = Command::new(target.join("moq-relay"));
    relay.args(["--bind", &format!("127.0.0.1:{rport}")]).env("MOQ_RELAY_WEBRTC_BIND", "127.0.0.1:0");
    let _relay = start(relay, "moq-relay", false);
    let pport = free_udp_port();
    let mut proxy = Command::new(env!("CARGO_BIN_EXE_moq-bench"));
    proxy.args(["impair", "--listen", &format!("127.0.0.1:{pport}"), "--to", &format!("127.0.0.1:{rport}")]);
    proxy.args(["--up", "bursty5", "--down", "bursty5", "--seed", "23"]);
    let _proxy = start(proxy, "epoch_unix_us", true);

    let (direct, behind) = (format!("moqt://127.0.0.1:{rport}"), format!("moqt://127.0.0.1:{pport}"));
    let (_bob, bob_out) = phone(target, &["--relay", &direct, "--insecure", "--as", "bob", "answer", "--play", wav, "--wait-secs", "60"]);
    let mut bob_lines = Vec::new();
    while !bob_lines.last().is_some_and(|l: &String| l.starts_with("registered ")) {
        bob_lines.push(bob_out.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("bob did not register: {bob_lines:?}")));
    }
    let (_alice, alice_out) =
        phone(target, &["--relay", &behind, "--insecure", "--as", "alice", "call", "bob", "--play", wav, "--hangup-after", "20"]);
    let alice_lines = all_lines(&alice_out, "alice");
    bob_lines.extend(all_lines(&bob_out, "bob"));
    let _ = std::fs::remove_dir_all(&dir);
    let (a, b) = (audio_line(&alice_lines, "alice"), audio_line(&bob_lines, "bob"));
    eprintln!("alice: {a:?}\nbob: {b:?}");
    assert!(a["reports"] > 0, "no report from bob reached alice: {a:?}");
    assert!(a["sent_max_loss_perc"] > 5, "alice's expected loss never rose above 5 %: {a:?}");
    assert!(a["sent_k"] >= 1 && a["sent_red"] > 0, "alice sent no REDUNDANT_FRAME: {a:?}");
    assert!(b["red"] > 0, "bob played no frame from a copy: {b:?}");
}
