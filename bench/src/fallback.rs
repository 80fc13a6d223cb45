//! `moq-bench fallback` (issue 14, done-when 4): N concurrent calls whose
//! both parties are WebRTC fallback peers ([`crate::rtc_peer`]) beside N
//! calls of the same shape over raw QUIC ([`crate::load::calls`], the load
//! of RESULTS.md's call rows), on our relay binary, in one bench run.
//!
//! A fallback call: two peers, each publishing its `audio` track and
//! subscribed to the other's; each sends one 60–120-byte Opus-shaped RTP
//! packet every 20 ms, which the gateway turns into LOC OBJECT_DATAGRAMs
//! (Group n/50, Object n%50) on the subscription's alias, the routing core
//! forwards like any datagram, and the other peer's gateway turns back into
//! RTP. So the relay does twice the gateway work per object (RTP in at one
//! session, RTP out at the other) on top of what a QUIC call costs; the
//! QUIC side uses the same datagram mapping (`Mapping::Datagram`). Mixed
//! calls (one fallback party, one QUIC party: the likely case, a Safari user
//! calling a Chromium one) cross the gateway once each way and split the
//! latency into RTP in and RTP out.
//!
//! Latency is send → RTP event at the receiving str0m, both in this
//! process: through the relay and both peers' SRTP/str0m, without the
//! browser's encoder, jitter buffer and playout (bench/browser-latency.mjs
//! measures those). Each step starts a fresh relay process (as `compare`
//! does), so RSS growth per call is that step's alone.

use crate::load::{self, LoadResult, Mapping};
use crate::procstat::{cpu_secs, machine_busy_secs};
use crate::relays::{Kind, Relay, RelayBin};
use crate::rtc_peer::RtcPeer;
use moq_wire::coding::TrackNamespace;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch, Semaphore};

#[derive(clap::Args, Clone, Debug)]
pub struct FallbackArgs {
    /// Concurrent calls per step (two parties each), e.g. 10,25,50.
    #[arg(long, value_delimiter = ',', default_value = "10,25,50")]
    pub calls: Vec<usize>,
    /// Measured seconds per step (after 1 s of warm-up).
    #[arg(long, default_value_t = 10)]
    pub secs: u64,
    /// Pin each relay to this CPU (taskset, when present).
    #[arg(long, default_value_t = 0)]
    pub relay_cpu: usize,
    /// What the machine was doing (bench/run passes its line); else a short
    /// description is made here.
    #[arg(long)]
    pub machine: Option<String>,
    #[arg(long, default_value = "bench/results/fallback.md")]
    pub out: PathBuf,
}

/// Process-wide time base for the send stamps in the RTP payloads.
fn base() -> Instant {
    static B: OnceLock<Instant> = OnceLock::new();
    *B.get_or_init(Instant::now)
}

/// One Opus-shaped packet: a TOC byte (CELT FB 20 ms, mono), send stamp,
/// frame number, padding to 60–120 bytes (load.rs's sizes).
fn payload(frame: u64, party: usize, out: &mut Vec<u8>) {
    out.clear();
    out.push(0xf8);
    out.extend_from_slice(&(base().elapsed().as_nanos() as u64).to_le_bytes());
    out.extend_from_slice(&frame.to_le_bytes());
    out.resize(60 + (frame as usize * 7 + party * 13) % 61, 0x5a);
}

/// (send stamp ns, frame) of a received payload.
fn parse(p: &[u8]) -> Option<(u64, u64)> {
    let stamp = u64::from_le_bytes(p.get(1..9)?.try_into().ok()?);
    let frame = u64::from_le_bytes(p.get(9..17)?.try_into().ok()?);
    Some((stamp, frame))
}

/// What one peer sent and heard in the measured window.
#[derive(Default)]
struct PeerOut {
    sent: u64,
    received: u64,
    latency_ms: Vec<f64>,
}

/// Frames `[warm, warm + rounds)` are measured; all peers start at `t0` plus
/// their stagger (phones are not in step).
#[derive(Clone, Copy)]
struct Plan {
    warm: u64,
    rounds: u64,
    peers: usize,
}

const FRAME: Duration = Duration::from_millis(20);
/// Send slots per frame (load.rs's `pump` sends from 16 staggered tasks).
const SLOTS: usize = 16;

/// Where a party sits: its call, its side (0 or 1), the call's count of
/// published namespaces, how it reports being set up, when media starts.
struct Seat {
    tag: String,
    idx: usize,
    side: usize,
    published: Arc<AtomicUsize>,
    ready: oneshot::Sender<anyhow::Result<()>>,
    start: watch::Receiver<Option<tokio::time::Instant>>,
    plan: Plan,
}

impl Seat {
    fn ns(&self, side: usize) -> TrackNamespace {
        TrackNamespace::from_utf8_path(&format!("bench/{}/{}/{side}", self.tag, self.idx))
    }

    /// When this party sends frame 0: the common start plus its stagger,
    /// one of 16 slots in the 20 ms as load.rs's 16 sender tasks have, so
    /// the relay sees the same bursts as in the QUIC rows.
    fn first(&self, t0: tokio::time::Instant) -> tokio::time::Instant {
        let slots = SLOTS.min(self.plan.peers.max(1));
        t0 + FRAME * ((self.idx * 2 + self.side) % slots) as u32 / slots as u32
    }

    /// Reports how setup went; passes the party on if it is up.
    fn report<T>(&mut self, r: anyhow::Result<T>) -> anyhow::Result<T> {
        let (tx, _) = oneshot::channel();
        let ready = std::mem::replace(&mut self.ready, tx);
        let _ = ready.send(r.as_ref().map(|_| ()).map_err(|e| anyhow::anyhow!("{e:#}")));
        r
    }
}

/// Counts a received payload of the measured window.
fn heard(plan: Plan, out: &mut PeerOut, data: &[u8]) {
    if let Some((stamp, frame)) = parse(data) {
        if (plan.warm..plan.warm + plan.rounds).contains(&frame) {
            let ns = (base().elapsed().as_nanos() as u64).saturating_sub(stamp);
            out.latency_ms.push(ns as f64 / 1e6);
            out.received += 1;
        }
    }
}

/// A fallback party: set up, report ready, keep the connection driven until
/// the start, then send and receive.
async fn party(http: SocketAddr, mut seat: Seat) -> anyhow::Result<PeerOut> {
    let setup = async {
        let mut p = RtcPeer::connect(http).await?;
        p.publish_namespace(&seat.ns(seat.side)).await?;
        seat.published.fetch_add(1, Ordering::SeqCst);
        // The other party's namespace must exist before we subscribe to it.
        if !p.wait_for(Duration::from_secs(20), |_| seat.published.load(Ordering::SeqCst) == 2).await? {
            anyhow::bail!("the other party never published");
        }
        p.subscribe_audio(&seat.ns(1 - seat.side), "audio").await?;
        if !p.wait_for(Duration::from_secs(15), |p| p.audio_out.is_some()).await? {
            anyhow::bail!("nobody subscribed to our audio");
        }
        anyhow::Ok(p)
    }
    .await;
    let mut p = seat.report(setup)?;
    let t0 = loop {
        if let Some(t) = *seat.start.borrow_and_update() {
            break t;
        }
        p.run_until(tokio::time::Instant::now() + Duration::from_millis(20), &mut |_| {}).await?;
    };
    let (first, plan, me) = (seat.first(t0), seat.plan, seat.idx * 2 + seat.side);
    let mut out = PeerOut { latency_ms: Vec::with_capacity(plan.rounds as usize), ..Default::default() };
    let mut buf = Vec::with_capacity(128);
    let mut sent = 0;
    for frame in 0..plan.warm + plan.rounds {
        p.run_until(first + FRAME * frame as u32, &mut |d| heard(plan, &mut out, d)).await?;
        payload(frame, me, &mut buf);
        if p.send_audio(frame * 960, &buf).is_ok() && frame >= plan.warm {
            sent += 1;
        }
    }
    // Packets still in flight count if they arrive within 300 ms.
    p.run_until(tokio::time::Instant::now() + Duration::from_millis(300), &mut |d| heard(plan, &mut out, d)).await?;
    out.sent = sent;
    Ok(out)
}

/// A QUIC party facing a fallback one (mixed calls): moq-client as in
/// load.rs — publish, answer the relay's SUBSCRIBE, subscribe to the other
/// side — sending the same payloads as OBJECT_DATAGRAMs (Group n/50,
/// Object n%50, the gateway's mapping).
async fn quic_party(dial: crate::relays::Dial, mut seat: Seat) -> anyhow::Result<PeerOut> {
    let setup = async {
        let sess = dial.connect().await?;
        let handle = sess.publish_namespace(&seat.ns(seat.side)).await?;
        seat.published.fetch_add(1, Ordering::SeqCst);
        let t = Instant::now();
        while seat.published.load(Ordering::SeqCst) < 2 {
            anyhow::ensure!(t.elapsed() < Duration::from_secs(20), "the other party never published");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let theirs = seat.ns(1 - seat.side);
        let (sub, track) = tokio::join!(sess.subscribe(&theirs, "audio", moq_client::SubscribeParams::new()), async {
            sess.accept_subscribe(Duration::from_secs(15)).await?.accept(1).await
        });
        anyhow::Ok((sess, handle, sub?, track?))
    }
    .await;
    let (_sess, _handle, mut sub, track) = seat.report(setup)?;
    let plan = seat.plan;
    let out = Arc::new(std::sync::Mutex::new(PeerOut { latency_ms: Vec::with_capacity(plan.rounds as usize), ..Default::default() }));
    let drain = tokio::spawn({
        let out = out.clone();
        async move {
            while let Ok(o) = sub.next_object(Duration::from_secs(3600)).await {
                heard(plan, &mut out.lock().unwrap(), &o.payload);
            }
        }
    });
    let t0 = seat.start.wait_for(Option::is_some).await?.unwrap_or_else(tokio::time::Instant::now);
    let (first, me) = (seat.first(t0), seat.idx * 2 + seat.side);
    let mut buf = Vec::with_capacity(128);
    let mut sent = 0;
    for frame in 0..plan.warm + plan.rounds {
        tokio::time::sleep_until(first + FRAME * frame as u32).await;
        payload(frame, me, &mut buf);
        let spec = moq_client::DatagramSpec::new(frame / 50, frame % 50, bytes::Bytes::copy_from_slice(&buf));
        if track.send_datagram(&spec).is_ok() && frame >= plan.warm {
            sent += 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    drain.abort();
    let mut out = std::mem::take(&mut *out.lock().unwrap());
    out.sent = sent;
    Ok(out)
}

/// The two parties of a call and whether both came up.
type CallOut = (Vec<tokio::task::JoinHandle<anyhow::Result<PeerOut>>>, anyhow::Result<()>);

/// Both sides of a mixed call, one-way: (fallback → QUIC, QUIC → fallback),
/// each as (p50, p99) in ms.
pub type Split = [(f64, f64); 2];

/// N calls on `relay` for `secs` s (after 1 s of warm-up): both parties
/// fallback peers, or (`mixed`) party 0 a fallback peer and party 1 a QUIC
/// one. The same figures as [`load::calls`] gives for QUIC, and the latency
/// of each direction.
pub async fn calls(relay: &Relay, n: usize, secs: u64, mixed: bool) -> (LoadResult, Split) {
    let http: SocketAddr = ([127, 0, 0, 1], relay.url.port().unwrap_or(0)).into();
    let plan = Plan { warm: 50, rounds: secs * 50, peers: 2 * n };
    let tag = format!("{}-fallback-{n}-{mixed}", std::process::id());
    let (start_tx, start_rx) = watch::channel(None);
    // Calls set up 8 at a time, both parties of a call together (a party
    // waits for its partner, so the permit is per call).
    let sem = Arc::new(Semaphore::new(8));
    let mut set = tokio::task::JoinSet::new();
    for idx in 0..n {
        let (sem, tag, start, dial) = (sem.clone(), tag.clone(), start_rx.clone(), relay.dial());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let published = Arc::new(AtomicUsize::new(0));
            let mut handles = Vec::new();
            let mut readies = Vec::new();
            for side in 0..2 {
                let (ready, rx) = oneshot::channel();
                readies.push(rx);
                let seat = Seat { tag: tag.clone(), idx, side, published: published.clone(), ready, start: start.clone(), plan };
                handles.push(if mixed && side == 1 {
                    tokio::spawn(quic_party(dial.clone(), seat))
                } else {
                    tokio::spawn(party(http, seat))
                });
            }
            let mut res = Ok(());
            for r in readies {
                let r = r.await.unwrap_or_else(|_| Err(anyhow::anyhow!("party task ended")));
                if res.is_ok() {
                    res = r;
                }
            }
            (handles, res) as CallOut
        });
    }
    let mut r = LoadResult { wanted: n, ..Default::default() };
    let mut live = Vec::new();
    while let Some(c) = set.join_next().await {
        match c {
            Ok((h, Ok(()))) => {
                r.ready += 1;
                live.push(h);
            }
            Ok((h, Err(e))) => {
                r.setup_error.get_or_insert(format!("{e:#}"));
                h.iter().for_each(|h| h.abort());
            }
            Err(e) => {
                r.setup_error.get_or_insert(e.to_string());
            }
        }
    }
    eprintln!("   {}/{n} calls set up{}", r.ready, r.setup_error.as_ref().map_or(String::new(), |e| format!(" (first error: {e})")));
    // Media starts together; the CPU window is the measured frames.
    let t0 = tokio::time::Instant::now() + Duration::from_millis(200);
    let _ = start_tx.send(Some(t0));
    let (pid, me) = (relay.pid, std::process::id());
    tokio::time::sleep_until(t0 + FRAME * plan.warm as u32).await;
    let (c0, g0, m0, i0) = (cpu_secs(pid), cpu_secs(me), machine_busy_secs(), Instant::now());
    tokio::time::sleep_until(t0 + FRAME * (plan.warm + plan.rounds + 1) as u32).await;
    let (c1, g1, m1, i1) = (cpu_secs(pid), cpu_secs(me), machine_busy_secs(), Instant::now());
    r.rss_growth = relay.rss().saturating_sub(relay.rss0);
    // Latencies by the receiving side: side 1 hears side 0 and vice versa.
    let mut lat: [Vec<f64>; 2] = Default::default();
    for call in live {
        for (side, h) in call.into_iter().enumerate() {
            match h.await {
                Ok(Ok(o)) => {
                    r.sent += o.sent;
                    r.received += o.received;
                    lat[side].extend(o.latency_ms);
                }
                Ok(Err(e)) => {
                    r.setup_error.get_or_insert(format!("during the call: {e:#}"));
                }
                Err(e) => {
                    r.setup_error.get_or_insert(e.to_string());
                }
            }
        }
    }
    let split =
        [(crate::pct(&mut lat[1], 0.5), crate::pct(&mut lat[1], 0.99)), (crate::pct(&mut lat[0], 0.5), crate::pct(&mut lat[0], 0.99))];
    let mut all: Vec<f64> = lat.concat();
    r.expected = r.sent;
    r.p50_ms = crate::pct(&mut all, 0.5);
    r.p99_ms = crate::pct(&mut all, 0.99);
    r.p999_ms = crate::pct(&mut all, 0.999);
    r.relay_cpu_s = c1 - c0;
    r.gen_cpu_s = g1 - g0;
    r.other_cpu_s = ((m1 - m0) - (c1 - c0) - (g1 - g0)).max(0.0);
    r.secs = (i1 - i0).as_secs_f64();
    (r, split)
}

/// Our relay with its gateway up: its default port (QUIC port + 1) may be
/// taken, in which case the relay runs without one; try another port.
async fn start(bin: &RelayBin, dir: &std::path::Path, cpu: usize) -> anyhow::Result<Relay> {
    for _ in 0..5 {
        let relay = Relay::start(bin, dir, Some(cpu)).await?;
        let gw = relay.url.port().unwrap_or(0).wrapping_add(1);
        // Bound by the relay before it accepts sessions: if we can bind it,
        // the relay has no gateway.
        if std::net::UdpSocket::bind(("127.0.0.1", gw)).is_err() {
            return Ok(relay);
        }
    }
    anyhow::bail!("the relay never got its WebRTC gateway port (QUIC port + 1)")
}

/// One step's row.
fn row(n: usize, what: &str, r: &LoadResult) -> String {
    format!(
        "| {n} | {what} | {}/{} | {} | {} | {:.2}% | {:.2} | {:.2} | {:.2} | {:.1} | {:.0} | {:.0}% | {:.0}% |\n",
        r.ready,
        r.wanted,
        r.sent,
        r.received,
        r.loss() * 100.0,
        r.p50_ms,
        r.p99_ms,
        cpu_per_call(r),
        r.us_per_obj(),
        r.rss_growth as f64 / 1024.0 / r.ready.max(1) as f64,
        r.gen_cpu_s / r.secs.max(1e-9) * 100.0,
        r.other_cpu_s / r.secs.max(1e-9) * 100.0,
    )
}

/// Relay CPU per call, % of a core.
fn cpu_per_call(r: &LoadResult) -> f64 {
    r.relay_cpu_s / r.secs.max(1e-9) * 100.0 / r.ready.max(1) as f64
}

fn ratio(n: usize, what: &str, f: &LoadResult, q: &LoadResult) -> String {
    let x = |a: f64, b: f64| if b > 0.0 && a.is_finite() && b.is_finite() { format!("{:.2}×", a / b) } else { "—".into() };
    let rss = |r: &LoadResult| r.rss_growth as f64 / r.ready.max(1) as f64;
    format!(
        "| {n} | **{what} / QUIC** | | | | | {} | {} | {} | {} | {} | {} | |\n",
        x(f.p50_ms, q.p50_ms),
        x(f.p99_ms, q.p99_ms),
        x(cpu_per_call(f), cpu_per_call(q)),
        x(f.us_per_obj(), q.us_per_obj()),
        x(rss(f), rss(q)),
        x(f.gen_cpu_s, q.gen_cpu_s),
    )
}

/// A line saying what the machine is and was doing, when bench/run did not
/// pass one.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu.lines().find_map(|l| l.strip_prefix("model name")).map(|m| m.trim_start_matches([' ', '\t', ':'])).unwrap_or("?");
    // All of the machine's, whatever taskset gave this process.
    let cores = cpu.lines().filter(|l| l.starts_with("processor")).count();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    format!(
        "{cores} cores ({model}), {}; load average at start {}",
        date.unwrap_or_default(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    )
}

/// Runs the steps, writes `a.out`, returns the markdown.
pub async fn run(a: &FallbackArgs) -> anyhow::Result<String> {
    let bin = std::env::current_exe()?.with_file_name("moq-relay");
    anyhow::ensure!(bin.exists(), "{} not found: build moq-relay in the same profile first", bin.display());
    let ours = RelayBin::new(Kind::Ours, bin.clone());
    let dir = std::env::temp_dir().join(format!("fallback-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let machine = a.machine.clone().unwrap_or_else(machine);
    let mut rows = String::new();
    let mut notes = String::new();
    let mut split = String::new();
    let ms = |(p50, p99): (f64, f64)| format!("p50 {p50:.2} ms, p99 {p99:.2} ms");
    for &n in &a.calls {
        anyhow::ensure!(2 * n <= 256, "{n} calls: more fallback peers than the gateway's default --webrtc-max-peers (256)");
        eprintln!("== {n} calls, both parties WebRTC fallback");
        let relay = start(&ours, &dir, a.relay_cpu).await?;
        let (f, _) = calls(&relay, n, a.secs, false).await;
        drop(relay);
        eprintln!("   {}", crate::verdict::load_line(&f));
        eprintln!("== {n} calls, one party fallback, one QUIC");
        let relay = start(&ours, &dir, a.relay_cpu).await?;
        let (m, dirs) = calls(&relay, n, a.secs, true).await;
        drop(relay);
        eprintln!("   {}", crate::verdict::load_line(&m));
        eprintln!("== {n} calls, QUIC");
        let relay = start(&ours, &dir, a.relay_cpu).await?;
        let q = load::calls(&relay, n, a.secs, Mapping::Datagram).await;
        drop(relay);
        eprintln!("   {}", crate::verdict::load_line(&q));
        rows += &row(n, "WebRTC fallback (both parties)", &f);
        rows += &row(n, "mixed (one party each)", &m);
        rows += &row(n, "QUIC (both parties)", &q);
        rows += &ratio(n, "fallback", &f, &q);
        rows += &ratio(n, "mixed", &m, &q);
        split += &format!("- {n} calls: fallback → QUIC {}; QUIC → fallback {}\n", ms(dirs[0]), ms(dirs[1]));
        for (what, r) in [("fallback", &f), ("mixed", &m), ("QUIC", &q)] {
            if let Some(e) = &r.setup_error {
                notes += &format!("- {n} calls, {what}: {e}\n");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let calls = a.calls.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",");
    let md = format!(
        "# WebRTC fallback beside QUIC (issue 14)\n\n\
         `moq-bench fallback --calls {calls} --secs {secs}` — {bin}\n\n\
         **Machine:** {machine}\n\n\
         Each call: two parties, each publishing one 60–120-byte Opus-shaped packet every 20 ms and subscribed to the \
         other's `audio` track; {secs} s measured after 1 s of warm-up; parties send in 16 staggered slots per \
         20 ms, as the QUIC load does. **WebRTC fallback**: both parties are str0m \
         peers (bench/src/rtc_peer.rs) on the relay's gateway — POST /webrtc, ICE-lite, DTLS, MoQ over data channels, \
         audio as RTP/SRTP, which the gateway maps to LOC OBJECT_DATAGRAMs (Group n/50, Object n%50) and back to RTP at \
         the other party. **Mixed**: one party a str0m fallback peer, the other moq-client over QUIC (a Safari user \
         calling a Chromium one), so each direction crosses the gateway once. **QUIC**: the same calls from moq-client over raw QUIC (`moq-bench relay-load`'s load, \
         datagram mapping `datagram`), the shape of RESULTS.md's call rows. Each row is a fresh relay process (same \
         binary) pinned to CPU {cpu} (taskset); the peers run in this process (bench/run pins it to CPU 1). Latency: send → receipt by the other \
         party's str0m / moq-client, one way through the relay, both ends on one clock; **the browser's encoder, \
         jitter buffer and playout are not included** (bench/browser-latency.mjs measures browser mouth-to-ear). \
         Relay CPU per call = relay CPU over the window / N (% of one core); per 1,000 objects = relay CPU ms per \
         1,000 objects received; RSS per call = relay RSS growth over its idle RSS / N. \"Peers\" = this process's CPU (all 2N \
         parties: str0m with SRTP and SCTP, or moq-client over QUIC). \"Rest of machine\" = CPU the machine spent \
         outside the relay and this process during the window (other work on a shared machine); where it is high, \
         relay and peers waited for a core and latency tails grow with it.\n\n\
         | calls | transport | calls set up | packets sent | received | loss | p50 (ms) | p99 (ms) | relay CPU per call (% of a core) | relay CPU per 1,000 objects (ms) | relay RSS per call (KiB) | peers CPU (% of a core) | rest of machine (% of a core) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n{rows}\n\
         Mixed calls by direction (one-way through the relay; fallback → QUIC is RTP in at the gateway, QUIC → fallback \
         RTP out):\n\n{split}{notes}",
        secs = a.secs,
        bin = bin.display(),
        cpu = a.relay_cpu,
        notes = if notes.is_empty() { String::new() } else { format!("\nSetup errors (first per step):\n{notes}") },
    );
    if let Some(d) = a.out.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(&a.out, &md)?;
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_opus_sized_and_carry_stamp_and_frame() {
        let mut b = Vec::new();
        for frame in 0..200 {
            payload(frame, 3, &mut b);
            assert!((60..=120).contains(&b.len()), "{}", b.len());
            assert_eq!(b[0], 0xf8, "an Opus TOC byte first");
            let (stamp, f) = parse(&b).unwrap();
            assert_eq!(f, frame);
            assert!(stamp <= base().elapsed().as_nanos() as u64);
        }
        assert_eq!(parse(&[0xf8, 1, 2]), None);
    }

    #[test]
    fn parties_spread_over_sixteen_slots_of_a_frame() {
        let (tx, _) = oneshot::channel();
        let (_, start) = watch::channel(None);
        let plan = Plan { warm: 50, rounds: 50, peers: 100 };
        let mut seat = Seat { tag: "t".into(), idx: 0, side: 0, published: Arc::default(), ready: tx, start, plan };
        let t0 = tokio::time::Instant::now();
        let mut offsets: Vec<Duration> = (0..50)
            .flat_map(|idx| [0, 1].map(|side| (idx, side)))
            .map(|(idx, side)| {
                (seat.idx, seat.side) = (idx, side);
                seat.first(t0) - t0
            })
            .collect();
        assert!(offsets.iter().all(|o| *o < FRAME));
        offsets.sort();
        offsets.dedup();
        assert_eq!(offsets.len(), SLOTS);
        assert_eq!(seat.ns(1), TrackNamespace::from_utf8_path("bench/t/49/1"));
    }
}
