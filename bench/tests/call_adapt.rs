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

mod common;

use common::{buzz, config, impaired_relay, target_dir, Call, Proc};
use pub_sub_audio::phone::media::{AudioFrame, LivePort};
use pub_sub_audio::phone::Phone;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::sync::mpsc;

/// Frames bob plays before alice hangs up (20 s: the policy needs 2 s of
/// loss to turn redundancy on, the meter a 2 s window; bursts are ~1 s apart).
const FRAMES: usize = 1_000;
/// A bound on the whole test, so a broken build fails instead of hanging.
const GIVE_UP: Duration = Duration::from_secs(90);

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
            let pcm = (0..960).map(|i| buzz(t + i)).collect();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursty_loss_raises_the_senders_fec_and_redundant_copies_are_played() {
    tokio::time::timeout(GIVE_UP, adapt_call()).await.expect("the test did not finish within its bound");
}

async fn adapt_call() {
    let link = impaired_relay("bursty5", Some(19));
    // Alice behind the proxy, bob straight at the relay.
    let (alice, _) = Phone::register(config(&link.behind, "alice")).await.expect("alice registers");
    let (bob, rings) = Phone::register(config(&link.direct, "bob")).await.expect("bob registers");
    let (a_live, _a_heard) = live_port();
    let (b_live, mut b_heard) = live_port();
    let call = Call::connect(alice, bob, rings, a_live, b_live).await;
    for _ in 0..FRAMES {
        b_heard.recv().await.expect("bob's call ended before he heard 20 s of alice");
    }
    let (a, b) = call.hang_up().await;

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
    let target = &target_dir();
    let dir = std::env::temp_dir().join(format!("call-adapt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // 25 s of a voiced buzz (150 Hz and harmonics), so Opus codes it as speech.
    let samples: Vec<i16> = (0..25 * 48_000).map(buzz).collect();
    let wav = dir.join("buzz.wav");
    pub_sub_audio::audio::wav::write(&wav, &samples).unwrap();
    let wav = wav.to_str().unwrap();

    let link = impaired_relay("bursty5", Some(23));
    let (direct, behind) = (&link.direct, &link.behind);
    let (_bob, bob_out) = phone(target, &["--relay", direct, "--insecure", "--as", "bob", "answer", "--play", wav, "--wait-secs", "60"]);
    let mut bob_lines = Vec::new();
    while !bob_lines.last().is_some_and(|l: &String| l.starts_with("registered ")) {
        bob_lines.push(bob_out.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("bob did not register: {bob_lines:?}")));
    }
    let (_alice, alice_out) =
        phone(target, &["--relay", behind, "--insecure", "--as", "alice", "call", "bob", "--play", wav, "--hangup-after", "20"]);
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
