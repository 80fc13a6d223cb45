//! `moq-bench hostile-caller` (issue 20): a caller that speaks raw MoQ to
//! the relay and misbehaves towards the callee — for chan_moq's test in a
//! real Asterisk (chan_moq/tests/calls.rs), run inside its network
//! namespace. docs/CALLS.md §3–§5 is what a well-behaved caller does; each
//! kind breaks it one way:
//!
//! - `flood`: `--count` INVITEs at once on one session (each its own ring
//!   namespace and events track), no `connect` ever, then the session goes
//!   without a word (the process exits; no QUIC CONNECTION_CLOSE).
//! - `garbage`: one call whose events track carries an unknown event, a
//!   10 kB event and bytes that are no JSON, whose audio starts with a
//!   non-Opus payload and junk LOC properties; then real audio and a proper
//!   `hangup`.
//! - `vanish`: one proper call (connect, audio), then the process exits in
//!   the middle of it — the callee must find out by itself (CALLS.md §7,
//!   lost peer).
//!
//! Prints one line per step; exits 0 once its part is done, 1 if the callee
//! never got far enough to be tested.

use bytes::Bytes;
use moq_client::{DatagramSpec, SubscribeParams};
use moq_wire::coding::{TrackNamespace, TrackNamespacePrefix};
use pub_sub_audio::call::Namespaces;
use pub_sub_audio::phone::ns;
use std::time::{Duration, Instant};

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Flood,
    Garbage,
    Vanish,
}

#[derive(clap::Args, Debug)]
pub struct HostileCallerArgs {
    /// The relay, e.g. moqt://127.0.0.1:4443 (its certificate is not checked).
    #[arg(long)]
    pub relay: url::Url,
    /// Whom to call, e.g. pbx/100.
    #[arg(long)]
    pub to: String,
    #[arg(long, value_enum)]
    pub kind: Kind,
    /// INVITEs for `flood`.
    #[arg(long, default_value_t = 20)]
    pub count: usize,
    /// Seconds of real audio in a `garbage` or `vanish` call.
    #[arg(long, default_value_t = 4)]
    pub secs: u64,
    /// The caller's user name.
    #[arg(long, default_value = "mallory")]
    pub from: String,
}

const T: Duration = Duration::from_secs(10);

fn sid(i: usize) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    format!("{:016x}{:016x}", t ^ 0x5bd1_e995, i as u64)
}

fn invite(sid: &str, from: &str, to: &str) -> Bytes {
    Bytes::from(format!(r#"{{"t":"invite","sid":"{sid}","from":"{from}","to":"{to}"}}"#))
}

pub async fn main(a: HostileCallerArgs) -> anyhow::Result<bool> {
    let user = a.to.split('/').next().unwrap_or_default().to_string();
    let client = moq_client::Client::connect(&a.relay, &moq_client::Tls::DisableVerify).await?;
    match a.kind {
        Kind::Flood => flood(&client, &a, &user).await,
        Kind::Garbage | Kind::Vanish => one_call(&client, &a, &user).await,
    }
}

/// `count` INVITEs, each served to whoever subscribes to its events track;
/// then gone.
async fn flood(client: &moq_client::Session, a: &HostileCallerArgs, user: &str) -> anyhow::Result<bool> {
    let sids: Vec<String> = (0..a.count).map(sid).collect();
    let mut held = Vec::new();
    for s in &sids {
        held.push(client.publish_namespace(&ns(Namespaces::caller(user, s, &a.from))).await?);
    }
    println!("flood: {} invites published", sids.len());
    let mut served = 0;
    let mut publishers = Vec::new();
    let until = Instant::now() + T;
    while served < sids.len() && Instant::now() < until {
        let Ok(req) = client.accept_subscribe(until.saturating_duration_since(Instant::now())).await else { break };
        let Some(s) = sids.iter().find(|s| req.namespace().fields.iter().any(|f| f.value == s.as_bytes())).cloned() else {
            let _ = req.reject(0x4, "no such track").await;
            continue;
        };
        if req.track_name() != "events" {
            let _ = req.reject(0x4, "no such track").await;
            continue;
        }
        let p = req.accept(served as u64 + 1).await?;
        p.send_group(0, &[invite(&s, &a.from, &a.to)]).await?;
        publishers.push(p);
        served += 1;
    }
    println!("flood: {served} invites delivered; leaving without a word");
    // A little time for the callee to take them all to ringing/answer.
    tokio::time::sleep(Duration::from_secs(2)).await;
    vanish_now(served > 0)
}

/// Exits without closing anything: no CONNECTION_CLOSE reaches the relay,
/// the session just stops answering.
fn vanish_now(ok: bool) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(if ok { 0 } else { 1 })
}

/// A string member of a flat JSON event (`{"t":"answer","device":"d1"}`).
fn field(json: &str, name: &str) -> String {
    let key = format!("\"{name}\":\"");
    json.split_once(&key).and_then(|(_, rest)| rest.split_once('"')).map(|(v, _)| v.to_string()).unwrap_or_default()
}

/// One call as a caller would place it, with the kind's misbehaviour.
async fn one_call(client: &moq_client::Session, a: &HostileCallerArgs, user: &str) -> anyhow::Result<bool> {
    let s = sid(0);
    let own = ns(Namespaces::caller(user, &s, &a.from));
    let _announce = client.publish_namespace(&own).await?;
    let events_req = client.accept_subscribe(T).await?;
    anyhow::ensure!(events_req.track_name() == "events", "the callee asked for {:?} first", events_req.track_name());
    let events = events_req.accept(1).await?;
    events.send_group(0, &[invite(&s, &a.from, &a.to)]).await?;
    let mut group = 1;
    if a.kind == Kind::Garbage {
        for junk in [
            Bytes::from_static(br#"{"t":"teleport","where":"mars"}"#),
            Bytes::from(vec![b' '; 10_000]),
            Bytes::from_static(b"\xff\xfe not json"),
        ] {
            events.send_group(group, &[junk]).await?;
            group += 1;
        }
        println!("garbage: junk events sent");
    }
    // The callee's device appears under …/call/<sid>/<user>/<device>; wait for its answer.
    let prefix = ns(Namespaces::call_prefix(&s).into_iter().chain([user.to_string()]).collect());
    let mut devices = client.subscribe_namespace(&TrackNamespacePrefix { fields: prefix.fields.clone() }).await?;
    let device: TrackNamespace = loop {
        // The event carries the suffix under the prefix: the device.
        if let moq_client::NamespaceEvent::Namespace(n) = devices.next(T).await? {
            break TrackNamespace { fields: prefix.fields.iter().chain(&n.fields).cloned().collect() };
        }
    };
    let mut theirs = client.subscribe(&device, "events", SubscribeParams::new().rendezvous(Duration::from_secs(5))).await?;
    let device_id = loop {
        let o = theirs.next_object(T).await?;
        let text = String::from_utf8_lossy(&o.payload).to_string();
        if text.contains("\"answer\"") {
            break field(&text, "device");
        }
    };
    println!("{:?}: answered by device {device_id:?}", a.kind);
    events.send_group(group, &[Bytes::from(format!(r#"{{"t":"connect","device":"{device_id}"}}"#))]).await?;
    group += 1;
    let audio_req = client.accept_subscribe(T).await?;
    anyhow::ensure!(audio_req.track_name() == "audio", "the callee asked for {:?}, not audio", audio_req.track_name());
    let audio = audio_req.accept(2).await?;
    let mut n = 0u64;
    if a.kind == Kind::Garbage {
        audio.send_datagram(&DatagramSpec::new(0, 0, Bytes::from_static(b"x")))?;
        let mut bad = DatagramSpec::new(0, 1, Bytes::from_static(b"\xf8\xff\xfe"));
        let mut props = Vec::new();
        moq_wire::properties::encode(
            &[(0x10, moq_wire::properties::Value::Int(1)), (0x79, moq_wire::properties::Value::Bytes(vec![0xff, 0xfe, 0x00, 0x11, 0x40]))],
            &mut props,
        );
        bad.properties = Bytes::from(props);
        audio.send_datagram(&bad)?;
        n = 2;
        println!("garbage: junk audio sent");
    }
    // Real audio at the media's pace for --secs, keepalives every 500 ms.
    let mut enc = pub_sub_audio::audio::codec::OpusEncoder::new(0)?;
    let frame: Vec<i16> = (0..960).map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin() * 8000.0) as i16).collect();
    let mut clock = tokio::time::interval(Duration::from_millis(20));
    for i in 0..a.secs * 50 {
        clock.tick().await;
        let mut d = DatagramSpec::new(n / 50, n % 50, Bytes::from(enc.encode(&frame)?));
        d.properties = Bytes::from(pub_sub_audio::audio::loc::properties(0));
        audio.send_datagram(&d)?;
        n += 1;
        if i % 25 == 0 {
            events.send_group(group, &[Bytes::from_static(br#"{"t":"keepalive"}"#)]).await?;
            group += 1;
        }
    }
    if a.kind == Kind::Vanish {
        println!("vanish: leaving mid-call without a word");
        vanish_now(true);
    }
    events.send_group(group, &[Bytes::from_static(br#"{"t":"hangup","reason":"normal"}"#)]).await?;
    println!("garbage: hung up");
    // Let the hangup reach the relay before the session closes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(true)
}
