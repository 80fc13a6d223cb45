//! A call survives a 2 s outage (docs/design/quality.md §3.6, issue 19): two
//! phones (pub-sub-audio's Phone API) call through our moq-relay over real
//! QUIC; everything alice sends and receives crosses `moq-bench impair`
//! with the `outage2s` profile both ways (all packets lost for 2 s, starting
//! `link::OUTAGE_AT` = 10 s after the proxy starts). The test asserts order,
//! not time: the call is established before the outage, each side then plays
//! a frame its peer sent after the outage ended, and only after that does
//! alice hang up — both end with a hangup, not a lost peer. How long audio
//! took to come back is printed, not asserted.
//!
//! Audio rides live Opus ports (passthrough, no codec): each packet carries
//! its send time, so a receiver knows which side of the outage it was sent.
//! Needs `cargo build -p moq-relay` (the relay binary next to this test's).

use bytes::Bytes;
use pub_sub_audio::call::{Address, EndReason, Timers, UserAction};
use pub_sub_audio::phone::media::{AudioFrame, LivePort, MediaConfig};
use pub_sub_audio::phone::{Phone, PhoneConfig, Progress};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// When the outage starts after the proxy's time zero, and how long it lasts
/// (bench/src/link.rs, profile `outage2s`).
const OUTAGE_AT: Duration = Duration::from_secs(10);
const OUTAGE_LEN: Duration = Duration::from_secs(2);
/// A bound on the whole test, so a broken build fails instead of hanging.
const GIVE_UP: Duration = Duration::from_secs(40);

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

/// Starts `cmd`, waits for a line containing `ready` on stdout or stderr
/// (`on_stderr`), returns the process and that line; the rest is drained.
fn start(mut cmd: Command, ready: &'static str, on_stderr: bool) -> (Proc, String) {
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

fn unix_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// An Opus-sized packet carrying its send time (µs since the Unix epoch) in
/// bytes 8..16; the first byte a plausible TOC, as storm.rs sends.
fn stamped() -> Bytes {
    let mut p = vec![0x78u8; 80];
    p[8..16].copy_from_slice(&unix_us().to_be_bytes());
    Bytes::from(p)
}

fn sent_at(p: &[u8]) -> Option<u64> {
    p.get(8..16).map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
}

/// A live port that sends a stamped packet every 20 ms until the call ends;
/// the send times of what the peer's packets the phone plays arrive on the
/// returned receiver.
fn live_port() -> (LivePort, mpsc::UnboundedReceiver<u64>) {
    let (from_tx, from_rx) = mpsc::channel(16);
    let (to_tx, mut to_rx) = mpsc::channel::<AudioFrame>(64);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            if from_tx.is_closed() {
                return;
            }
            let _ = from_tx.try_send(AudioFrame::Opus(stamped()));
        }
    });
    let (heard_tx, heard_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(f) = to_rx.recv().await {
            if let AudioFrame::Opus(p) = f {
                if let Some(t) = sent_at(&p) {
                    let _ = heard_tx.send(t);
                }
            }
        }
    });
    (LivePort { from_user: from_rx, to_user: to_tx, opus: true }, heard_rx)
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

/// Waits until a frame sent at or after `after_us` is played; returns its
/// send time and when it was played (µs since the epoch). Frames of the
/// outage may never come; nothing is assumed about them.
async fn heard_after(rx: &mut mpsc::UnboundedReceiver<u64>, who: &str, after_us: u64) -> (u64, u64) {
    loop {
        let t = rx.recv().await.unwrap_or_else(|| panic!("{who}'s call ended before it heard audio sent after the outage"));
        if t >= after_us {
            return (t, unix_us());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_survives_a_2_s_outage_and_audio_flows_again() {
    tokio::time::timeout(GIVE_UP, outage_call()).await.expect("the test did not finish within its bound");
}

async fn outage_call() {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().unwrap().parent().unwrap();
    let rport = free_udp_port();
    let mut relay = Command::new(target.join("moq-relay"));
    relay.args(["--bind", &format!("127.0.0.1:{rport}")]).env("MOQ_RELAY_WEBRTC_BIND", "127.0.0.1:0");
    let (_relay, _) = start(relay, "moq-relay", false);
    let pport = free_udp_port();
    let mut proxy = Command::new(env!("CARGO_BIN_EXE_moq-bench"));
    proxy.args(["impair", "--listen", &format!("127.0.0.1:{pport}"), "--to", &format!("127.0.0.1:{rport}")]);
    proxy.args(["--up", "outage2s", "--down", "outage2s"]);
    let (_proxy, line) = start(proxy, "epoch_unix_us", true);
    let epoch_us: u64 = line
        .split("epoch_unix_us ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no epoch in {line:?}"));
    let outage_end_us = epoch_us + (OUTAGE_AT + OUTAGE_LEN).as_micros() as u64;

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
    let (a_live, mut a_heard) = live_port();
    let caller = tokio::spawn(async move {
        let to = Address::parse("bob").unwrap();
        alice.call(&to, MediaConfig { live: Some(a_live), ..Default::default() }, a_act_rx, a_rep).await
    });

    progress(&mut b_prog, "bob", |p| *p == Progress::Ringing { on: true }).await;
    b_act.send(UserAction::Answer).unwrap();
    progress(&mut a_prog, "alice", |p| matches!(p, Progress::Established { .. })).await;
    assert!(unix_us() < epoch_us + OUTAGE_AT.as_micros() as u64, "the call took until the outage to set up; nothing tested");
    // Audio flows both ways before the outage.
    heard_after(&mut a_heard, "alice", epoch_us).await;
    heard_after(&mut b_heard, "bob", epoch_us).await;

    // Each side plays audio its peer sent after the outage ended.
    let (a_sent, a_played) = heard_after(&mut a_heard, "alice", outage_end_us).await;
    let (b_sent, b_played) = heard_after(&mut b_heard, "bob", outage_end_us).await;
    eprintln!(
        "after the 2 s outage: alice played bob's audio {:.0} ms after the link returned (sent +{:.0} ms), bob played alice's {:.0} ms after (sent +{:.0} ms)",
        (a_played - outage_end_us) as f64 / 1e3,
        (a_sent - outage_end_us) as f64 / 1e3,
        (b_played - outage_end_us) as f64 / 1e3,
        (b_sent - outage_end_us) as f64 / 1e3,
    );

    // The call is still up: alice hangs up and both see a hangup.
    a_act.send(UserAction::Hangup).unwrap();
    let a = caller.await.unwrap();
    let b = callee.await.unwrap();
    assert_eq!(a.reason, EndReason::Hangup { by_peer: false }, "alice");
    assert_eq!(b.reason, EndReason::Hangup { by_peer: true }, "bob");
    drop(b_act);
}
