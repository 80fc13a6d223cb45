//! Call-setup storm through pub-sub-audio's Phone API: M new calls per
//! second between registered phones, the full call model of docs/CALLS.md
//! (INVITE, ringing, answer, connect, audio both ways), each call held a
//! few seconds then hung up. Measures setup time at the caller: INVITE
//! (`Phone::call`) → ringback, → established, → first audio frame played,
//! and answer → first audio: the caller's established → its first played
//! frame (docs/design/quality.md §5: the goal is ≤ 40 ms p50 on loopback).
//!
//! Audio goes through live Opus ports: 80-byte packets every 20 ms pass
//! through untouched, so the generator spends no CPU on codecs.

use crate::phones::{await_connect, config, live_port};
use crate::relays::Relay;
use pub_sub_audio::call::{Address, UserAction};
use pub_sub_audio::phone::media::{AudioMapping, MediaConfig};
use pub_sub_audio::phone::{Phone, Progress};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Default)]
pub struct StormResult {
    pub rate: f64,
    /// The phones' audio mapping: "datagram" (their default) or "stream".
    pub mapping: &'static str,
    pub attempted: usize,
    /// Calls whose caller heard the callee.
    pub ok: usize,
    /// Setup times of the calls that worked, in ms.
    pub ring_ms: Vec<f64>,
    pub established_ms: Vec<f64>,
    pub first_audio_ms: Vec<f64>,
    /// Answer → first audio: the caller's established → first frame it
    /// played, in ms, per call that worked.
    pub answer_audio_ms: Vec<f64>,
    /// Per call that worked: share of the callee's frames the caller played
    /// during the hold (1.0 = all).
    pub heard: Vec<f64>,
    /// How failed calls failed (first few distinct reasons).
    pub failures: Vec<String>,
    pub relay_cpu_s: f64,
    pub gen_cpu_s: f64,
    /// CPU seconds used by the rest of the machine meanwhile.
    pub other_cpu_s: f64,
    pub secs: f64,
    pub register_error: Option<String>,
}

/// A callee: answers every call as soon as it rings, talks until hung up.
fn answer_all(phone: Phone, mut rings: mpsc::UnboundedReceiver<pub_sub_audio::phone::Incoming>, mapping: AudioMapping) {
    phone.set_multi_line(true);
    tokio::spawn(async move {
        while let Some(inc) = rings.recv().await {
            let phone = phone.clone();
            tokio::spawn(async move {
                let (act_tx, act_rx) = mpsc::unbounded_channel();
                let (rep_tx, mut rep_rx) = mpsc::unbounded_channel::<Progress>();
                let (live, mut heard) = live_port();
                tokio::spawn(async move { while heard.recv().await.is_some() {} });
                tokio::spawn(async move {
                    while let Some(p) = rep_rx.recv().await {
                        if p == (Progress::Ringing { on: true }) {
                            let _ = act_tx.send(UserAction::Answer);
                        }
                    }
                    drop(act_tx);
                });
                phone.take(&inc, MediaConfig { live: Some(live), mapping, ..Default::default() }, act_rx, rep_tx).await;
            });
        }
    });
}

struct Setup {
    heard: f64,
    ring: Option<f64>,
    established: Option<f64>,
    first_audio: Option<f64>,
}

/// One call from `caller` to `to`, held `hold` after first audio.
async fn one_call(caller: Phone, to: Address, hold: Duration, mapping: AudioMapping) -> Result<Setup, String> {
    let (act_tx, act_rx) = mpsc::unbounded_channel();
    let (rep_tx, mut rep_rx) = mpsc::unbounded_channel::<Progress>();
    let (live, mut heard) = live_port();
    let t0 = Instant::now();
    let call =
        tokio::spawn(
            async move { caller.call(&to, MediaConfig { live: Some(live), mapping, ..Default::default() }, act_rx, rep_tx).await },
        );
    let within = Duration::from_secs(10);
    let c = await_connect(&mut rep_rx, &mut heard, t0, within).await;
    let mut s = Setup { heard: 0.0, ring: c.ring, established: c.established, first_audio: c.first_audio };
    if s.first_audio.is_some() {
        // Count what the caller plays while the call is held.
        let end = tokio::time::Instant::now() + hold;
        let mut frames = 0u64;
        while let Ok(Some(_)) = tokio::time::timeout_at(end, heard.recv()).await {
            frames += 1;
        }
        s.heard = frames as f64 / (hold.as_millis() as f64 / 20.0);
    }
    let _ = act_tx.send(UserAction::Hangup);
    // Let the call end (bounded) so the next one on this phone starts clean.
    tokio::spawn(async move { while heard.recv().await.is_some() {} });
    let _ = tokio::time::timeout(Duration::from_secs(5), call).await;
    match c.failure(within) {
        None => Ok(s),
        Some(e) => Err(e),
    }
}

/// `rate` new calls per second for `secs` s, each held `hold` after first
/// audio; audio mapped to datagrams (the phones' default) or, with
/// `streams`, one stream per frame.
pub async fn run(relay: &Relay, rate: f64, secs: u64, hold: Duration, streams: bool) -> StormResult {
    let mapping = if streams { AudioMapping::Streams(1) } else { AudioMapping::Datagram };
    let mut out = StormResult { rate, mapping: if streams { "stream" } else { "datagram" }, ..Default::default() };
    let total = (rate * secs as f64).round() as usize;
    // Phones are busy for setup + hold + the end of the call: size the pools so
    // no caller is reused while still in a call.
    let pool = ((rate * (hold.as_secs_f64() + 8.0)).ceil() as usize).clamp(1, total.max(1));
    let tag = format!("s{}r{}{}", std::process::id(), rate as u64, &out.mapping[..1]);
    let mut callers = Vec::new();
    let mut callees = Vec::new();
    let cfgs = (0..pool).flat_map(|i| ["a", "b"].map(|side| ((side, i), config(relay, format!("{tag}{side}{i}"))))).collect();
    let mut reg = Vec::new();
    for r in crate::phones::register_all(cfgs, 8).await {
        match r {
            Ok(((side, i), (phone, rings))) => reg.push((side, i, phone, rings)),
            Err(e) => {
                out.register_error.get_or_insert(e);
            }
        }
    }
    if out.register_error.is_some() {
        return out;
    }
    reg.sort_by_key(|(side, i, _, _)| (*side, *i));
    for (side, i, phone, rings) in reg {
        if side == "a" {
            callers.push(phone);
        } else {
            answer_all(phone, rings, mapping);
            callees.push(format!("{tag}b{i}"));
        }
    }
    let results: Arc<Mutex<Vec<Result<Setup, String>>>> = Arc::default();
    let (c0, g0, m0, t0) =
        (relay.cpu_secs(), crate::procstat::cpu_secs(std::process::id()), crate::procstat::machine_busy_secs(), Instant::now());
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut calls = tokio::task::JoinSet::new();
    for k in 0..total {
        tick.tick().await;
        let caller = callers[k % pool].clone();
        let Ok(to) = Address::parse(&callees[k % pool]) else { continue };
        let results = results.clone();
        calls.spawn(async move {
            let r = one_call(caller, to, hold, mapping).await;
            results.lock().unwrap().push(r);
        });
    }
    while calls.join_next().await.is_some() {}
    out.relay_cpu_s = relay.cpu_secs() - c0;
    out.gen_cpu_s = crate::procstat::cpu_secs(std::process::id()) - g0;
    out.other_cpu_s = (crate::procstat::machine_busy_secs() - m0 - out.relay_cpu_s - out.gen_cpu_s).max(0.0);
    out.secs = t0.elapsed().as_secs_f64();
    out.attempted = total;
    for r in results.lock().unwrap().drain(..) {
        match r {
            Ok(s) => {
                out.ok += 1;
                out.ring_ms.extend(s.ring);
                out.established_ms.extend(s.established);
                out.first_audio_ms.extend(s.first_audio);
                if let (Some(e), Some(a)) = (s.established, s.first_audio) {
                    out.answer_audio_ms.push(a - e);
                }
                out.heard.push(s.heard);
            }
            Err(e) => {
                if out.failures.len() < 3 && !out.failures.contains(&e) {
                    out.failures.push(e);
                }
            }
        }
    }
    out
}
