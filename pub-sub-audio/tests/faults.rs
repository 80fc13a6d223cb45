//! Faults during calls (issue 20), with real processes: moq-phones
//! registered on our moq-relay lose the relay mid-call and must end the
//! call with a reason, re-register by themselves and call again
//! (docs/CALLS.md §3 "Re-registration").
//!
//! No sleeps and no timing thresholds: every step waits for a line a phone
//! prints or for audio seen at the relay; the deadlines only turn a hang
//! into a failure with the phones' output. (How fast phones come back is
//! the bench's to measure, not a test's.)

use pub_sub_audio::audio::wav::{self, dominant_frequency};
use pub_sub_audio::call::Namespaces;
use std::time::Duration;

mod common;
use common::{start_relay, start_relay_logging, start_relay_on, Partition, PhoneProc};

/// A hang guard for one step: a relay restart takes the phones' 5 s idle
/// timeout plus a backoff and a handshake.
const STEP: Duration = Duration::from_secs(60);

fn tone_file(dir: &std::path::Path, name: &str, freq: f32) -> String {
    let pcm: Vec<i16> =
        (0..48_000 * 30).map(|i| ((i as f32 * freq * 2.0 * std::f32::consts::PI / 48_000.0).sin() * 12_000.0) as i16).collect();
    let p = dir.join(name);
    wav::write(&p, &pcm).unwrap();
    p.display().to_string()
}

/// Returns once the relay has carried frame `frame` (group = frame / 50,
/// object = frame % 50, CALLS.md §6) of the audio in `namespace`.
async fn audio_passes(observer: &moq_client::Session, namespace: Vec<String>, frame: u64) {
    let ns = pub_sub_audio::phone::ns(namespace);
    let mut sub = observer.subscribe(&ns, "audio", moq_client::SubscribeParams::new()).await.expect("subscribe to a party's audio");
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let o = sub.next_object(left).await.unwrap_or_else(|e| panic!("audio frame {frame} of {ns:?} not seen: {e}"));
        if o.group_id * 50 + o.object_id >= frame {
            return;
        }
    }
}

/// alice calls bob through their stdin; returns the call's sid once both
/// are established.
fn place_call(alice: &mut PhoneProc, bob: &mut PhoneProc) -> String {
    alice.send("call bob");
    let sid = alice.wait_for("session ", STEP).trim_start_matches("session ").to_string();
    alice.wait_for("established", STEP);
    bob.wait_for("established", STEP);
    sid
}

/// From a session of its own on `url`, sees frame `frame` or later of both
/// sides' audio in call `sid` (alice → bob, bob's device b1) cross the relay.
fn both_sides_audio_pass(url: &url::Url, sid: &str, frame: u64) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let observer = moq_client::Client::connect(url, &moq_client::Tls::DisableVerify).await.expect("an observer session connects");
        tokio::join!(
            audio_passes(&observer, Namespaces::caller("bob", sid, "alice"), frame),
            audio_passes(&observer, Namespaces::callee(sid, "bob", "b1"), frame),
        );
    });
}

/// Places a call alice → bob through their stdin, waits until both are
/// established and 3 s of each side's audio crossed the relay, then alice
/// hangs up; returns once both printed their audio statistics (the
/// recordings are written by then).
fn call_with_audio(url: &url::Url, alice: &mut PhoneProc, bob: &mut PhoneProc) {
    let sid = place_call(alice, bob);
    both_sides_audio_pass(url, &sid, 150);
    alice.send("hangup");
    assert_eq!(alice.wait_for("ended: ", STEP), "ended: hangup");
    assert_eq!(bob.wait_for("ended: ", STEP), "ended: hangup by peer");
    alice.wait_for("audio: ", STEP);
    bob.wait_for("audio: ", STEP);
}

/// alice (caller, `register`) and bob (`register --auto-answer`), each
/// sending a tone (440 / 880 Hz) and recording what it hears, on `url`;
/// returned once both are registered.
fn two_phones(url: &url::Url, dir: &std::path::Path) -> (PhoneProc, PhoneProc) {
    let (a_play, b_play) = (tone_file(dir, "a.wav", 440.0), tone_file(dir, "b.wav", 880.0));
    let (a_rec, b_rec) = (dir.join("a-rec.wav"), dir.join("b-rec.wav"));
    let a_args = ["--as", "alice", "--device", "a1", "register", "--play", &a_play, "--record", a_rec.to_str().unwrap()];
    let b_args = ["--as", "bob", "--device", "b1", "register", "--auto-answer", "--play", &b_play, "--record", b_rec.to_str().unwrap()];
    let mut alice = PhoneProc::start("alice", url, &a_args);
    let mut bob = PhoneProc::start("bob", url, &b_args);
    alice.wait_for("registered alice", STEP);
    bob.wait_for("registered bob", STEP);
    (alice, bob)
}

/// Both recordings of the last call hold the other side's tone.
fn each_heard_the_other(dir: &std::path::Path) {
    let heard = |name: &str| dominant_frequency(&wav::read(&dir.join(name)).unwrap()[24_000..], 48_000);
    assert_eq!(heard("a-rec.wav"), 880.0, "alice hears bob");
    assert_eq!(heard("b-rec.wav"), 440.0, "bob hears alice");
}

/// A call up between the two, and the sessions under it then lost: both
/// sides end the call as a lost peer and say the relay session ended.
fn call_then(alice: &mut PhoneProc, bob: &mut PhoneProc, fault: impl FnOnce()) {
    place_call(alice, bob);
    fault();
    for p in [alice, bob] {
        // The call's end and the registration's news come from different
        // tasks: either may be first.
        let lines = p.wait_for_each(&["ended: ", "relay session ended: "], STEP);
        assert_eq!(lines[0], "ended: lost peer", "{}: the call ends with the reason", p.name);
        assert!(lines[1].contains("; reconnecting in "), "{}: {}", p.name, lines[1]);
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("psa-faults-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The relay is `kill -9`ed during a call between two moq-phone processes:
/// the call ends on both sides with a reason; when a relay is back on the
/// same port, both phones register again without being restarted, and a
/// second call between them connects with audio both ways.
#[test]
fn relay_killed_mid_call_phones_reregister_and_call_again() {
    let mut relay = start_relay(&[], true);
    let dir = temp_dir("kill");
    let (mut alice, mut bob) = two_phones(&relay.url, &dir);
    call_then(&mut alice, &mut bob, || relay.kill9());
    // The relay comes back where it was; nobody restarts the phones.
    let relay = start_relay_on(relay.port(), &[], true);
    alice.wait_for("registered again alice", STEP);
    bob.wait_for("registered again bob", STEP);
    assert!(alice.running() && bob.running());
    call_with_audio(&relay.url, &mut alice, &mut bob);
    each_heard_the_other(&dir);
    alice.send("quit");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A network partition between the phones and a relay that stays up, long
/// enough for both to give the call and the session up (the 5 s idle
/// timeout, CALLS.md §3; a 10 s partition does the same, only later): the
/// call ends with a reason on both sides instead of hanging, and when the
/// network heals both register again by themselves and call again.
#[test]
fn partition_mid_call_ends_it_and_phones_come_back_when_it_heals() {
    let relay = start_relay(&[], true);
    let net = Partition::start(&relay.url);
    let dir = temp_dir("partition");
    let (mut alice, mut bob) = two_phones(&net.url, &dir);
    call_then(&mut alice, &mut bob, || net.cut());
    net.heal();
    alice.wait_for("registered again alice", STEP);
    bob.wait_for("registered again bob", STEP);
    call_with_audio(&relay.url, &mut alice, &mut bob);
    each_heard_the_other(&dir);
    alice.send("quit");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A relay shut down with SIGTERM (GOAWAY, draft-18 §3.6, §10.4) while a
/// call is up: the call is not dropped — it goes on through the draining
/// relay (a DTMF digit still crosses it) until it is hung up; then each
/// phone leaves the relay, saying it was told to go, and registers on the
/// relay that replaces it.
#[test]
fn relay_goaway_lets_the_call_finish_then_phones_move() {
    // A drain longer than any step: the phones must leave on GOAWAY, not
    // because the relay closes them at the end of it.
    let mut relay = start_relay(&["--drain-secs", "120"], true);
    let dir = temp_dir("goaway");
    let (mut alice, mut bob) = two_phones(&relay.url, &dir);
    place_call(&mut alice, &mut bob);
    relay.terminate();
    alice.send("dtmf 5");
    assert_eq!(bob.wait_for("dtmf ", STEP), "dtmf 5", "the call still carries events after GOAWAY");
    alice.send("hangup");
    assert_eq!(alice.wait_for("ended: ", STEP), "ended: hangup");
    assert_eq!(bob.wait_for("ended: ", STEP), "ended: hangup by peer");
    for p in [&mut alice, &mut bob] {
        let line = p.wait_for("relay session ended: ", STEP);
        assert!(line.contains("GOAWAY"), "{}: {line}", p.name);
    }
    // With every session gone the relay exits (long before its drain time).
    assert!(relay.wait_exit().success());
    let relay = start_relay_on(relay.port(), &[], true);
    alice.wait_for("registered again alice", STEP);
    bob.wait_for("registered again bob", STEP);
    call_with_audio(&relay.url, &mut alice, &mut bob);
    each_heard_the_other(&dir);
    alice.send("quit");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The relay's certificate is rotated while a call is up (new files, then
/// SIGHUP, as a certificate manager does): the call is not dropped — an
/// event still crosses the relay, and audio still flows to a client that
/// connects after the rotation — the relay serves the new certificate, and
/// the call ends as a hangup, with neither phone losing its session.
#[test]
fn certificate_rotated_mid_call_the_call_goes_on() {
    let dir = temp_dir("rotate");
    let (cert, key) = common::write_certs(&dir.join("live"));
    let mut relay = start_relay(&["--tls-cert", &cert, "--tls-key", &key], true);
    let before = relay.http_get("/certificate.sha256");
    let (mut alice, mut bob) = two_phones(&relay.url, &dir);
    let sid = place_call(&mut alice, &mut bob);
    // The certificate manager writes the new pair over the old and signals.
    let next = moq_certs::write_dev_files(dir.join("next"), &[] as &[&str], Duration::from_secs(86_400)).unwrap();
    assert_ne!(next.fingerprint, before);
    std::fs::copy(&next.leaf_pem, &cert).unwrap();
    std::fs::copy(&next.leaf_key, &key).unwrap();
    relay.hangup();
    let deadline = std::time::Instant::now() + STEP;
    while relay.http_get("/certificate.sha256") != next.fingerprint {
        assert!(std::time::Instant::now() < deadline, "the relay did not take the new certificate (still {before})");
        std::thread::sleep(Duration::from_millis(20)); // polling interval, not a wait for the outcome
    }
    alice.send("dtmf 7");
    assert_eq!(bob.wait_for("dtmf ", STEP), "dtmf 7", "the call still carries events after the rotation");
    // A session opened after the rotation (on the new certificate) sees both sides' audio still flowing.
    both_sides_audio_pass(&relay.url, &sid, 0);
    alice.send("hangup");
    assert_eq!(alice.wait_for("ended: ", STEP), "ended: hangup");
    assert_eq!(bob.wait_for("ended: ", STEP), "ended: hangup by peer");
    for p in [&alice, &bob] {
        assert!(!p.seen.iter().any(|l| l.starts_with("relay session ended")), "{} lost its session: {:?}", p.name, p.seen);
    }
    alice.send("quit");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The disk is full where a phone records (`--record /dev/full`, whose
/// writes fail with ENOSPC): the call itself is unaffected and ends as
/// planned, the phone says the recording was not saved — and why — and
/// stays registered: the next call connects.
#[test]
fn a_full_disk_for_the_recording_is_reported_and_the_phone_stays_up() {
    let relay = start_relay(&[], true);
    let dir = temp_dir("fulldisk");
    let b_play = tone_file(&dir, "b.wav", 880.0);
    let mut alice = PhoneProc::start("alice", &relay.url, &["--as", "alice", "--device", "a1", "register", "--record", "/dev/full"]);
    let mut bob = PhoneProc::start("bob", &relay.url, &["--as", "bob", "--device", "b1", "register", "--auto-answer", "--play", &b_play]);
    alice.wait_for("registered alice", STEP);
    bob.wait_for("registered bob", STEP);
    for _ in 0..2 {
        place_call(&mut alice, &mut bob);
        alice.send("hangup");
        let lines = alice.wait_for_each(&["ended: ", "audio: ", "error: "], STEP);
        assert_eq!(lines[0], "ended: hangup");
        assert_eq!(bob.wait_for("ended: ", STEP), "ended: hangup by peer");
        let err = &lines[2];
        assert!(err.contains("recording not saved") && err.contains("/dev/full") && err.contains("No space left"), "{err}");
        assert!(alice.running(), "a recording that failed does not take the phone down");
    }
    alice.send("quit");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The relay's log goes to a full disk (stderr on /dev/full, at debug
/// level so it writes on every request): it keeps serving — two phones
/// register, call each other and hear each other through it.
#[test]
fn a_full_disk_under_the_relays_log_does_not_stop_it() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let relay = start_relay_logging(&[], "debug", full);
    let dir = temp_dir("fulllog");
    let (mut alice, mut bob) = two_phones(&relay.url, &dir);
    call_with_audio(&relay.url, &mut alice, &mut bob);
    each_heard_the_other(&dir);
    alice.send("quit");
    let _ = std::fs::remove_dir_all(&dir);
}
