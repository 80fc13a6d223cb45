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

mod common;

use bytes::Bytes;
use common::{config, impaired_relay, Call};
use pub_sub_audio::phone::media::{AudioFrame, LivePort};
use pub_sub_audio::phone::Phone;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// When the outage starts after the proxy's time zero, and how long it lasts
/// (bench/src/link.rs, profile `outage2s`).
const OUTAGE_AT: Duration = Duration::from_secs(10);
const OUTAGE_LEN: Duration = Duration::from_secs(2);
/// A bound on the whole test, so a broken build fails instead of hanging.
const GIVE_UP: Duration = Duration::from_secs(40);

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
    let link = impaired_relay("outage2s", None);
    let line = &link.proxy_line;
    let epoch_us: u64 = line
        .split("epoch_unix_us ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no epoch in {line:?}"));
    let outage_end_us = epoch_us + (OUTAGE_AT + OUTAGE_LEN).as_micros() as u64;

    // Alice behind the proxy, bob straight at the relay.
    let (alice, _) = Phone::register(config(&link.behind, "alice")).await.expect("alice registers");
    let (bob, rings) = Phone::register(config(&link.direct, "bob")).await.expect("bob registers");
    let (a_live, mut a_heard) = live_port();
    let (b_live, mut b_heard) = live_port();
    let call = Call::connect(alice, bob, rings, a_live, b_live).await;
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
    call.hang_up().await;
}
