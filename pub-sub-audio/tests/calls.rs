//! End-to-end calls through a real relay process (our moq-relay, or with
//! MOQ_CALLS_RELAY=ietf Cloudflare's moq-relay-ietf, whose binary
//! MOQ_RELAY_IETF names; scripts/test runs both):
//! the whole call model of docs/CALLS.md, audio verified by frequency.
//! No sleeps: each step waits for an event (a relay's "listening" line, a
//! phone's progress, objects seen at the relay) with a deadline.

use pub_sub_audio::audio::wav::dominant_frequency;
use pub_sub_audio::call::{Address, EndReason, Namespaces, Timers, UserAction};
use pub_sub_audio::phone::driver::Outcome;
use pub_sub_audio::phone::media::MediaConfig;
use pub_sub_audio::phone::Progress;
use pub_sub_audio::phone::{Incoming, Phone, PhoneConfig};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::sync::mpsc;

mod common;
use common::{relay, relay_cli, start_relay, Relay};

fn timers() -> Timers {
    Timers { no_answer: 4_000, ..Timers::default() }
}

/// Registers a phone with the (listening) relay.
async fn phone(r: &Relay, user: &str, device: &str, timers: Timers) -> (Phone, mpsc::UnboundedReceiver<Incoming>) {
    Phone::register(config(r, user, device, timers, None))
        .await
        .unwrap_or_else(|e| panic!("{user}/{device} could not register at {}: {e}", r.url))
}

fn config(r: &Relay, user: &str, device: &str, timers: Timers, token: Option<Vec<u8>>) -> PhoneConfig {
    PhoneConfig {
        url: r.url.clone(),
        tls: moq_client::Tls::DisableVerify,
        user: user.into(),
        device: device.into(),
        display: user.into(),
        timers,
        token,
    }
}

fn tone(freq: f32, secs: f32) -> Vec<i16> {
    (0..(48_000.0 * secs) as usize).map(|i| ((i as f32 * freq * 2.0 * std::f32::consts::PI / 48_000.0).sin() * 12_000.0) as i16).collect()
}

/// A party: runs a call with scripted user actions fired on report lines.
struct Script {
    /// (line prefix to wait for, action to take).
    on: Vec<(&'static str, UserAction)>,
}

fn run_party(
    script: Script,
) -> (mpsc::UnboundedReceiver<UserAction>, mpsc::UnboundedSender<Progress>, tokio::task::JoinHandle<Vec<String>>) {
    let (act_tx, act_rx) = mpsc::unbounded_channel();
    let (rep_tx, mut rep_rx) = mpsc::unbounded_channel::<Progress>();
    let h = tokio::spawn(async move {
        let mut lines = Vec::new();
        let mut pending = script.on;
        while let Some(p) = rep_rx.recv().await {
            let l = p.to_string();
            if let Some(i) = pending.iter().position(|(p, _)| l.starts_with(p)) {
                let (_, a) = pending.remove(i);
                let _ = act_tx.send(a);
            }
            lines.push(l);
        }
        lines
    });
    (act_rx, rep_tx, h)
}

/// Passes a party's progress on to `report` and signals each line that
/// starts with `prefix` ("ringing", "established"): an event to wait for.
fn tap(report: mpsc::UnboundedSender<Progress>, prefix: &'static str) -> (mpsc::UnboundedSender<Progress>, mpsc::UnboundedReceiver<()>) {
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let (tx, mut rx) = mpsc::unbounded_channel::<Progress>();
    tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            if p.to_string().starts_with(prefix) {
                let _ = seen_tx.send(());
            }
            let _ = report.send(p);
        }
    });
    (tx, seen)
}

/// Waits (at most `within`) for a signal from [`tap`].
async fn seen(rx: &mut mpsc::UnboundedReceiver<()>, what: &str, within: Duration) {
    tokio::time::timeout(within, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no {what} within {within:?}"))
        .unwrap_or_else(|| panic!("the call ended before {what}"));
}

/// Subscribes to a party's audio track at the relay and returns once it has
/// carried frame `frame` (group = frame / 50, object = frame % 50, CALLS.md
/// §6): that much of the party's audio went through the relay.
async fn audio_passes(observer: &moq_client::Session, namespace: Vec<String>, frame: u64) {
    let ns = pub_sub_audio::phone::ns(namespace);
    let mut sub = observer.subscribe(&ns, "audio", moq_client::SubscribeParams::new()).await.expect("subscribe to a party's audio");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let o = sub.next_object(left).await.unwrap_or_else(|e| panic!("audio frame {frame} of {ns:?} not seen within 20 s: {e}"));
        if o.group_id * 50 + o.object_id >= frame {
            return;
        }
    }
}

async fn incoming(rx: &mut mpsc::UnboundedReceiver<Incoming>) -> Incoming {
    tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("no ring within 10 s").expect("ring channel closed")
}

fn media(freq: f32) -> MediaConfig {
    MediaConfig { play: tone(freq, 6.0), record: true, ..Default::default() }
}

/// The moq-phone CLI as a separate process (so it can be killed outright).
fn cli(r: &Relay, args: &[&str]) -> Child {
    let bin = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("moq-phone");
    Command::new(bin).args(["-r", r.url.as_str(), "-k"]).args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap()
}

/// `moq-phone answer` as `user`/`device`, returned once it is registered
/// (its first line); the rest of its output is drained so it never blocks.
fn cli_answerer(r: &Relay, user: &str, device: &str) -> Child {
    let mut child = cli(r, &["--as", user, "--device", device, "answer"]);
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    assert!(lines.next().unwrap().unwrap().starts_with("registered"));
    std::thread::spawn(move || lines.for_each(drop));
    child
}

/// Longest run of exact-zero samples after the first 100 ms: a gap.
fn longest_gap(s: &[i16]) -> usize {
    let (mut run, mut best) = (0, 0);
    for x in s.iter().skip(4_800) {
        run = if *x == 0 { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

async fn answered_call(hangup_by_caller: bool) -> (Outcome, Outcome) {
    let r = relay();
    let (alice, _) = phone(&r, "alice", "a1", timers()).await;
    let (bob, mut bob_rings) = phone(&r, "bob", "b1", timers()).await;
    let (a_act, a_rep, _) = run_party(Script { on: vec![] });
    let (b_act, b_rep, _) = run_party(Script { on: vec![("ringing", UserAction::Answer)] });
    let (a_rep, mut a_est) = tap(a_rep, "established");
    let (b_rep, mut b_est) = tap(b_rep, "established");
    let (a_hang, a_hang_rx) = mpsc::unbounded_channel();
    let (b_hang, b_hang_rx) = mpsc::unbounded_channel();
    let (a_act, _) = merge(a_act, a_hang_rx);
    let (b_act, _) = merge(b_act, b_hang_rx);
    let caller = tokio::spawn({
        let alice = alice.clone();
        async move { alice.call(&Address::parse("bob").unwrap(), media(440.0), a_act, a_rep).await }
    });
    let inc = incoming(&mut bob_rings).await;
    assert_eq!(inc.from, "alice");
    let sid = inc.sid.clone();
    let callee = tokio::spawn({
        let bob = bob.clone();
        async move { bob.take(&inc, media(880.0), b_act, b_rep).await }
    });
    seen(&mut a_est, "alice established", Duration::from_secs(10)).await;
    seen(&mut b_est, "bob established", Duration::from_secs(10)).await;
    // About 5 s of conversation (of each 6 s tone), then one side hangs up:
    // once the relay has carried frame 250 of each side's audio, watched by
    // a third session subscribed to both audio tracks.
    let observer = moq_client::Client::connect(&r.url, &moq_client::Tls::DisableVerify).await.unwrap();
    tokio::join!(
        audio_passes(&observer, Namespaces::caller("bob", &sid, "alice"), 250),
        audio_passes(&observer, Namespaces::callee(&sid, "bob", "b1"), 250),
    );
    if hangup_by_caller { a_hang.send(UserAction::Hangup) } else { b_hang.send(UserAction::Hangup) }.unwrap();
    let b = callee.await.unwrap();
    let a = caller.await.unwrap();
    (a, b)
}

/// Joins a scripted action stream with a manual one.
fn merge(
    mut a: mpsc::UnboundedReceiver<UserAction>,
    mut b: mpsc::UnboundedReceiver<UserAction>,
) -> (mpsc::UnboundedReceiver<UserAction>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let h = tokio::spawn(async move {
        loop {
            let x = tokio::select! { x = a.recv() => x, x = b.recv() => x };
            match x {
                Some(v) => {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
                None => return,
            }
        }
    });
    (rx, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_with_audio_both_ways_and_hangup_by_callee() {
    let (a, b) = answered_call(false).await;
    assert_eq!(b.reason, EndReason::Hangup { by_peer: false });
    assert_eq!(a.reason, EndReason::Hangup { by_peer: true });
    assert!(a.established && b.established);
    // Each side hears the other's tone.
    assert_eq!(dominant_frequency(&a.recording.samples[48_000..], 48_000), 880.0);
    assert_eq!(dominant_frequency(&b.recording.samples[48_000..], 48_000), 440.0);
    // Clean loopback: no gap longer than one frame.
    assert!(longest_gap(&a.recording.samples) <= 960, "gap of {} samples at alice", longest_gap(&a.recording.samples));
    assert!(longest_gap(&b.recording.samples) <= 960);
    assert_eq!(a.recording.stats.underruns + b.recording.stats.underruns, 0, "{:?} {:?}", a.recording.stats, b.recording.stats);
}

async fn outcome_pair(alice_script: Script, bob_script: Script, bob_busy: bool) -> (Outcome, Outcome) {
    let r = relay();
    let (alice, _) = phone(&r, "alice", "a1", timers()).await;
    let bob = phone(&r, "bob", "b1", timers()).await;
    outcome_pair_on(alice, bob, alice_script, bob_script, bob_busy).await
}

async fn outcome_pair_on(
    alice: Phone,
    (bob, mut bob_rings): (Phone, mpsc::UnboundedReceiver<Incoming>),
    alice_script: Script,
    bob_script: Script,
    bob_busy: bool,
) -> (Outcome, Outcome) {
    bob.set_busy(bob_busy);
    let (a_act, a_rep, _) = run_party(alice_script);
    let (b_act, b_rep, _) = run_party(bob_script);
    let caller = tokio::spawn({
        let alice = alice.clone();
        async move { alice.call(&Address::parse("bob").unwrap(), media(440.0), a_act, a_rep).await }
    });
    let inc = incoming(&mut bob_rings).await;
    let callee = tokio::spawn({
        let bob = bob.clone();
        async move { bob.take(&inc, media(880.0), b_act, b_rep).await }
    });
    (caller.await.unwrap(), callee.await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hangup_by_caller_ends_both() {
    let (a, b) = answered_call(true).await;
    assert_eq!(a.reason, EndReason::Hangup { by_peer: false });
    assert_eq!(b.reason, EndReason::Hangup { by_peer: true });
}

/// A callee process killed mid-call: the caller ends with "lost peer".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn party_killed_mid_call() {
    let r = relay();
    let (alice, _) = phone(&r, "alice", "a1", timers()).await;
    let mut bob = cli_answerer(&r, "bob", "b1");
    let (a_act, a_rep, _) = run_party(Script { on: vec![] });
    let (a_rep, mut established) = tap(a_rep, "established");
    let caller = tokio::spawn({
        let alice = alice.clone();
        async move { alice.call(&Address::parse("bob").unwrap(), media(440.0), a_act, a_rep).await }
    });
    seen(&mut established, "call established", Duration::from_secs(10)).await;
    bob.kill().unwrap();
    bob.wait().unwrap();
    let a = caller.await.unwrap();
    assert_eq!(a.reason, EndReason::LostPeer);
}

/// A device process killed outright (no clean close) goes offline once the
/// relay's QUIC idle timer drops its session: devices ask for 5 s
/// (docs/CALLS.md §3, §7), not the generic 30 s: the test waits for the
/// NAMESPACE_DONE event, with a 10 s deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_device_goes_offline() {
    let r = relay();
    // Registering a phone first waits until the relay is up.
    let _carol = phone(&r, "carol", "c1", timers()).await;
    let session = moq_client::Client::connect(&r.url, &moq_client::Tls::DisableVerify).await.unwrap();
    let fields = pub_sub_audio::call::Namespaces::presence();
    let prefix =
        moq_wire::coding::TrackNamespacePrefix { fields: fields.iter().map(|f| moq_wire::coding::TupleField::from_utf8(f)).collect() };
    let mut presence = session.subscribe_namespace(&prefix).await.unwrap();
    let mut bob = cli_answerer(&r, "bob", "b1");
    let bob_path = |e: &moq_client::NamespaceEvent| match e {
        moq_client::NamespaceEvent::Namespace(p) => {
            ("online", p.fields.iter().map(|f| String::from_utf8_lossy(&f.value).into_owned()).collect::<Vec<_>>())
        }
        moq_client::NamespaceEvent::Done(p) => {
            ("offline", p.fields.iter().map(|f| String::from_utf8_lossy(&f.value).into_owned()).collect())
        }
    };
    loop {
        let e = presence.next(Duration::from_secs(10)).await.expect("bob online");
        if bob_path(&e) == ("online", vec!["bob".to_string(), "b1".to_string()]) {
            break;
        }
    }
    bob.kill().unwrap();
    bob.wait().unwrap();
    loop {
        let e = presence.next(Duration::from_secs(10)).await.expect("bob goes offline within 10 s");
        if bob_path(&e) == ("offline", vec!["bob".to_string(), "b1".to_string()]) {
            break;
        }
    }
}

/// A caller process killed while the callee rings: the relay ends the
/// caller's tracks (PUBLISH_DONE) once its session is gone, and the callee
/// stops ringing with "cancelled" (CALLS.md §4) instead of ringing on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_killed_while_ringing() {
    let r = relay();
    let (bob, mut bob_rings) = phone(&r, "bob", "b1", timers()).await;
    let mut alice = cli(&r, &["--as", "alice", "--device", "a1", "call", "bob"]);
    let inc = incoming(&mut bob_rings).await;
    assert_eq!(inc.from, "alice");
    let (b_act, b_rep, _) = run_party(Script { on: vec![] });
    let (b_rep, mut ringing) = tap(b_rep, "ringing");
    let callee = tokio::spawn({
        let bob = bob.clone();
        async move { bob.take(&inc, media(880.0), b_act, b_rep).await }
    });
    seen(&mut ringing, "bob ringing", Duration::from_secs(10)).await;
    alice.kill().unwrap();
    alice.wait().unwrap();
    let b = tokio::time::timeout(Duration::from_secs(30), callee).await.expect("bob stops ringing").unwrap();
    assert_eq!(b.reason, EndReason::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_callee() {
    let (a, b) = outcome_pair(Script { on: vec![] }, Script { on: vec![] }, true).await;
    assert_eq!((a.reason, b.reason), (EndReason::Busy, EndReason::Busy));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined() {
    let (a, b) = outcome_pair(Script { on: vec![] }, Script { on: vec![("ringing", UserAction::Decline)] }, false).await;
    assert_eq!((a.reason, b.reason), (EndReason::Declined, EndReason::Declined));
}

/// The caller hangs up once it hears ringback (bob's device rings), before
/// anyone answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_cancels_before_answer() {
    let (a, b) = outcome_pair(Script { on: vec![("ringing", UserAction::Hangup)] }, Script { on: vec![] }, false).await;
    assert_eq!((a.reason, b.reason), (EndReason::Cancelled, EndReason::Cancelled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_times_out() {
    let (a, b) = outcome_pair(Script { on: vec![] }, Script { on: vec![] }, false).await;
    assert_eq!(a.reason, EndReason::NoAnswer);
    assert_eq!(b.reason, EndReason::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callee_offline() {
    let r = relay();
    let (alice, _) = phone(&r, "alice", "a1", timers()).await;
    let (a_act, a_rep, _) = run_party(Script { on: vec![] });
    let out = alice.call(&Address::parse("dave").unwrap(), media(440.0), a_act, a_rep).await;
    assert_eq!(out.reason, EndReason::Offline);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_first_answer_wins() {
    let r = relay();
    let (alice, _) = phone(&r, "alice", "a1", timers()).await;
    let (bob1, mut rings1) = phone(&r, "bob", "b1", timers()).await;
    let (bob2, mut rings2) = phone(&r, "bob", "b2", timers()).await;
    let (a_act, a_rep, a_lines) = run_party(Script { on: vec![] });
    let caller = tokio::spawn({
        let alice = alice.clone();
        async move { alice.call(&Address::parse("bob").unwrap(), media(440.0), a_act, a_rep).await }
    });
    let (i1, i2) = (incoming(&mut rings1).await, incoming(&mut rings2).await);
    assert_eq!(i1.sid, i2.sid);
    // b2 answers; b1 only rings.
    let (b1_act, b1_rep, _) = run_party(Script { on: vec![] });
    let (b2_act, b2_rep, _) = run_party(Script { on: vec![("ringing", UserAction::Answer), ("established", UserAction::Hangup)] });
    let d1 = tokio::spawn(async move { bob1.take(&i1, media(880.0), b1_act, b1_rep).await });
    let d2 = tokio::spawn(async move { bob2.take(&i2, media(660.0), b2_act, b2_rep).await });
    let (o1, o2, oa) = (d1.await.unwrap(), d2.await.unwrap(), caller.await.unwrap());
    assert_eq!(o1.reason, EndReason::AnsweredElsewhere);
    assert!(o2.established);
    assert!(oa.established);
    assert_eq!(oa.reason, EndReason::Hangup { by_peer: true });
    drop(a_lines);
}

/// A hostile caller speaking raw MoQ sends an unknown event type, an
/// oversize event, malformed LOC audio and audio with garbage properties:
/// the phone logs and drops them, and the call still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_dropped_and_the_call_goes_on() {
    use bytes::Bytes;
    use moq_client::{DatagramSpec, SubscribeParams};
    use moq_wire::coding::TrackNamespacePrefix;
    use pub_sub_audio::phone::ns;
    let r = relay();
    let (bob, mut rings) = phone(&r, "bob", "b1", timers()).await;
    let mallory = moq_client::Client::connect(&r.url, &moq_client::Tls::DisableVerify).await.unwrap();
    let sid = "00112233445566778899aabbccddeeff";
    let own = ns(Namespaces::caller("bob", sid, "mallory"));
    let _announce = mallory.publish_namespace(&own).await.unwrap();
    let callee = tokio::spawn({
        let bob = bob.clone();
        async move {
            let inc = incoming(&mut rings).await;
            let (act, rep, lines) = run_party(Script { on: vec![("ringing", UserAction::Answer)] });
            let out = bob.take(&inc, media(880.0), act, rep).await;
            (out, lines)
        }
    });
    // Serve bob's SUBSCRIBEs: events first, then audio once connected.
    let events_req = mallory.accept_subscribe(Duration::from_secs(10)).await.unwrap();
    assert_eq!(events_req.track_name(), "events");
    let events = events_req.accept(1).await.unwrap();
    let invite = br#"{"t":"invite","sid":"00112233445566778899aabbccddeeff","from":"mallory","to":"bob"}"#;
    events.send_group(0, &[Bytes::from_static(invite)]).await.unwrap();
    events.send_group(1, &[Bytes::from_static(br#"{"t":"teleport","where":"mars"}"#)]).await.unwrap();
    events.send_group(2, &[Bytes::from(vec![b' '; 10_000])]).await.unwrap();
    events.send_group(3, &[Bytes::from_static(b"\xff\xfe not json")]).await.unwrap();
    // Wait for bob's answer on his events track, then connect him.
    let bob_ns = ns(Namespaces::callee(sid, "bob", "b1"));
    // Relays without rendezvous support refuse a SUBSCRIBE before the
    // namespace exists: wait until the relay reports bob's device under the
    // call (…/call/<sid>/bob), as the caller's phone does.
    let prefix = TrackNamespacePrefix { fields: bob_ns.fields[..bob_ns.fields.len() - 1].to_vec() };
    let mut devices = mallory.subscribe_namespace(&prefix).await.unwrap();
    loop {
        if let moq_client::NamespaceEvent::Namespace(n) = devices.next(Duration::from_secs(10)).await.expect("bob's namespace within 10 s")
        {
            if n.fields.last().is_some_and(|f| f.value == b"b1") {
                break;
            }
        }
    }
    let mut bob_events = mallory.subscribe(&bob_ns, "events", SubscribeParams::new().rendezvous(Duration::from_secs(5))).await.unwrap();
    loop {
        let o = bob_events.next_object(Duration::from_secs(10)).await.unwrap();
        if String::from_utf8_lossy(&o.payload).contains("\"answer\"") {
            break;
        }
    }
    events.send_group(4, &[Bytes::from_static(br#"{"t":"connect","device":"b1"}"#)]).await.unwrap();
    let audio_req = mallory.accept_subscribe(Duration::from_secs(10)).await.unwrap();
    assert_eq!(audio_req.track_name(), "audio");
    let audio = audio_req.accept(2).await.unwrap();
    // Garbage: a one-byte non-Opus payload without properties, a junk Opus
    // packet with garbage properties, then real audio. The properties are
    // garbage to LOC (a nonsense TIMESTAMP, an unknown property with junk
    // bytes) but well-formed Key-Value-Pairs: Object Properties that do not
    // parse make the track malformed (draft-18 §12.7: "A Key-Value-Pair
    // cannot be parsed"), and a relay that detects it "MUST immediately
    // terminate downstream subscriptions" (§2.4.2; moq-relay-ietf closes
    // the publisher's session), so they cannot reach a phone through a
    // compliant relay and no call could go on after them.
    audio.send_datagram(&DatagramSpec::new(0, 0, Bytes::from_static(b"x"))).unwrap();
    let mut bad_props = DatagramSpec::new(0, 1, Bytes::from_static(b"\xf8\xff\xfe"));
    let mut props = Vec::new();
    let junk = moq_wire::properties::Value::Bytes(vec![0xff, 0xfe, 0x00, 0x11, 0x40]);
    moq_wire::properties::encode(&[(0x10, moq_wire::properties::Value::Int(1)), (0x79, junk)], &mut props);
    bad_props.properties = Bytes::from(props);
    audio.send_datagram(&bad_props).unwrap();
    let mut enc = pub_sub_audio::audio::codec::OpusEncoder::new(0).unwrap();
    let pcm = tone(440.0, 2.0);
    // Real-time audio: one 20 ms frame per tick of a 20 ms clock, as a phone
    // sends it (the pace is the media's, not a wait for anything).
    let mut clock = tokio::time::interval(Duration::from_millis(20));
    for (i, frame) in pcm.chunks(960).enumerate() {
        clock.tick().await;
        let n = i as u64 + 2;
        let mut d = DatagramSpec::new(n / 50, n % 50, Bytes::from(enc.encode(frame).unwrap()));
        d.properties = Bytes::from(pub_sub_audio::audio::loc::properties(0));
        audio.send_datagram(&d).unwrap();
        if i % 25 == 0 {
            events.send_group(5 + i as u64 / 25, &[Bytes::from_static(br#"{"t":"keepalive"}"#)]).await.unwrap();
        }
    }
    events.send_group(100, &[Bytes::from_static(br#"{"t":"hangup","reason":"normal"}"#)]).await.unwrap();
    let (out, _) = callee.await.unwrap();
    assert!(out.established, "the call was established despite the garbage");
    assert_eq!(out.reason, EndReason::Hangup { by_peer: true });
    assert_eq!(dominant_frequency(&out.recording.samples[24_000..], 48_000), 440.0, "the real audio was heard");
}

/// A token issuer for a test: a key from `moq-relay keygen` in a temp dir
/// (removed when dropped), tokens from `moq-relay token`.
struct Issuer {
    dir: std::path::PathBuf,
}

impl Issuer {
    fn new(name: &str) -> Issuer {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("issuer.key.pem");
        let _ = std::fs::remove_file(&key);
        relay_cli(&["keygen", "--out", key.to_str().unwrap()]);
        Issuer { dir }
    }

    /// The public key, for the relay's --auth-key.
    fn public_key(&self) -> String {
        self.dir.join("issuer.key.pub.pem").display().to_string()
    }

    fn token(&self, user: &str, ttl: &str) -> Vec<u8> {
        let key = self.dir.join("issuer.key.pem");
        let t = relay_cli(&["token", "--key", key.to_str().unwrap(), "--user", user, "--ttl", ttl]);
        pub_sub_audio::phone::parse_token(&t).expect("a token")
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A registration whose token expires (issue 20): at expiry the relay sends
/// GOAWAY, the idle phone leaves and comes back, the relay refuses the
/// expired token at SETUP (EXPIRED_AUTH_TOKEN, draft-18 §3.5), and the
/// registration gives up with that reason — its last event — instead of
/// retrying with the same token for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_ends_the_registration_instead_of_retrying_forever() {
    use pub_sub_audio::phone::{reconnect::BackoffPolicy, RegistrationEvent};
    let issuer = Issuer::new("psa-expiry");
    let token = issuer.token("alice", "5s");
    // No grace after expiry (GOAWAY, then the relay closes at once) and no clock skew allowed.
    let r = start_relay(&["--auth-key", &issuer.public_key(), "--token-grace-secs", "0", "--token-skew-secs", "0"], true);
    let mut reg = Phone::stay_registered(config(&r, "alice", "a1", timers(), Some(token)), BackoffPolicy::default())
        .await
        .expect("registers while the token is valid");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut before = Vec::new();
    let error = loop {
        let ev = tokio::time::timeout_at(deadline, reg.next()).await.unwrap_or_else(|_| panic!("no GaveUp; events: {before:?}"));
        match ev.expect("the registration reports until it gives up") {
            RegistrationEvent::GaveUp { error } => break error,
            other => before.push(format!("{other:?}")),
        }
    };
    assert!(error.contains("0x18"), "refused as EXPIRED_AUTH_TOKEN: {error}");
    assert!(before.iter().any(|e| e.starts_with("SessionEnded")), "the session ended first: {before:?}");
    assert!(!before.iter().any(|e| e.starts_with("Registered")), "an expired token never registers again: {before:?}");
    assert!(reg.next().await.is_none(), "GaveUp is the last event");
    assert!(reg.phone().is_none(), "no phone left registered");
}

/// Our relay with `--auth-key` (issue 13): phones holding tokens from
/// `moq-relay token` ring each other and exchange events; a phone without a
/// token, or with someone else's, cannot even register.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_let_their_users_call_and_keep_strangers_out() {
    let issuer = Issuer::new("psa-tokens");
    let token = |user: &str| issuer.token(user, "10m");
    let r = start_relay(&["--auth-key", &issuer.public_key()], true);
    let register = |user: &str, dev: &str, t: Option<Vec<u8>>| Phone::register(config(&r, user, dev, timers(), t));
    let (alice, _) = register("alice", "a1", Some(token("alice"))).await.expect("alice with her token");
    let bob = register("bob", "b1", Some(token("bob"))).await.expect("bob with his token");
    let (a, b) = outcome_pair_on(alice, bob, Script { on: vec![] }, Script { on: vec![("ringing", UserAction::Decline)] }, false).await;
    assert_eq!((a.reason, b.reason), (EndReason::Declined, EndReason::Declined));
    assert!(register("eve", "e1", None).await.is_err(), "no token: refused");
    assert!(register("bob", "b2", Some(token("alice"))).await.is_err(), "alice's token does not register bob");
}
