//! Relay load through our own draft-18 client stack (moq-client):
//!
//! - **calls**: N concurrent 1:1 calls; each party publishes one Opus-sized
//!   object (60–120 B) every 20 ms and subscribes to the other's track;
//! - **fan-out**: one publisher, K subscribers of its track (a small
//!   conference).
//!
//! Every payload carries its send time and frame number, so the receiver
//! measures latency (send → receive through the relay, both ends in this
//! process) and loss over a fixed window of frames. Relay CPU and RSS come
//! from /proc of the relay process; the generator's own CPU from ours.

use crate::relays::Dial;
use bytes::{BufMut, Bytes, BytesMut};
use moq_client::{DatagramSpec, Session, SubscribeParams, Subscription, TrackPublisher};
use moq_wire::coding::TrackNamespace;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::procstat::{cpu_secs, machine_busy_secs, udp_drops};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mapping {
    /// One OBJECT_DATAGRAM per frame, 50 frames a group (moq-phone's
    /// default: group = frame / 50, object = frame % 50).
    Datagram,
    /// One OBJECT_DATAGRAM per frame, each its own group (object 0): the
    /// only datagram mapping moq-dev's relay forwards whole.
    DatagramGroup,
    /// One SUBGROUP stream per frame (group per frame).
    Stream,
}

/// Process-wide time base for the send stamps.
fn base() -> Instant {
    static B: OnceLock<Instant> = OnceLock::new();
    *B.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    base().elapsed().as_nanos() as u64
}

/// Latency histogram: 5 µs buckets up to 1 s, then one overflow bucket.
const BUCKET_NS: u64 = 5_000;
const BUCKETS: usize = 200_000;
/// Percentiles at or above this (ms) fell into the overflow bucket.
pub const LAT_CAP_MS: f64 = (BUCKET_NS * BUCKETS as u64) as f64 / 1e6;

/// What the receivers saw, shared by all subscription tasks.
pub struct Recv {
    hist: Vec<AtomicU64>,
    received: AtomicU64,
    /// Frames `[from, to)` are measured.
    from: AtomicU64,
    to: AtomicU64,
}

impl Recv {
    fn new() -> Arc<Self> {
        Arc::new(Recv {
            hist: (0..=BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            received: AtomicU64::new(0),
            from: AtomicU64::new(u64::MAX),
            to: AtomicU64::new(u64::MAX),
        })
    }

    fn note(&self, payload: &[u8]) {
        if payload.len() < 16 {
            return;
        }
        let sent = u64::from_le_bytes(payload[0..8].try_into().unwrap());
        let frame = u64::from_le_bytes(payload[8..16].try_into().unwrap());
        if frame < self.from.load(Ordering::Relaxed) || frame >= self.to.load(Ordering::Relaxed) {
            return;
        }
        let ns = now_ns().saturating_sub(sent);
        self.hist[((ns / BUCKET_NS) as usize).min(BUCKETS)].fetch_add(1, Ordering::Relaxed);
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    /// Latency percentile in ms (bucket upper edge); infinite when it fell
    /// in the overflow bucket (at or above [`LAT_CAP_MS`]).
    fn pct(&self, p: f64) -> f64 {
        let total: u64 = self.hist.iter().map(|h| h.load(Ordering::Relaxed)).sum();
        if total == 0 {
            return f64::NAN;
        }
        let want = ((total as f64) * p).ceil().max(1.0) as u64;
        let mut acc = 0;
        for (i, h) in self.hist.iter().enumerate() {
            acc += h.load(Ordering::Relaxed);
            if acc >= want {
                if i == BUCKETS {
                    return f64::INFINITY;
                }
                return ((i as u64 + 1) * BUCKET_NS) as f64 / 1e6;
            }
        }
        f64::INFINITY
    }
}

/// One object: send stamp, frame number, party, then padding to 60–120 B.
fn payload(frame: u64, party: usize) -> Bytes {
    let size = 60 + ((frame as usize * 7 + party * 13) % 61);
    let mut b = BytesMut::with_capacity(size);
    b.put_u64_le(now_ns());
    b.put_u64_le(frame);
    b.put_u32_le(party as u32);
    b.resize(size, 0x5a);
    b.freeze()
}

#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// Calls (or subscribers, for fan-out) that were set up / asked for.
    pub ready: usize,
    pub wanted: usize,
    /// Objects the generator sent in the window, and those expected back.
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub relay_cpu_s: f64,
    pub gen_cpu_s: f64,
    /// CPU seconds the rest of the machine used in the window (neither the
    /// relay nor the generator): other people's builds and tests.
    pub other_cpu_s: f64,
    pub secs: f64,
    /// Datagrams dropped by the kernel (receive buffer full) during the
    /// window: at the relay's socket, and at all other sockets.
    pub drops_relay: u64,
    pub drops_other: u64,
    /// Relay RSS growth over its idle RSS.
    pub rss_growth: u64,
    /// Why sessions failed to set up (first error), if any did.
    pub setup_error: Option<String>,
}

impl LoadResult {
    pub fn loss(&self) -> f64 {
        1.0 - self.received as f64 / self.expected.max(1) as f64
    }
    /// Relay CPU µs per forwarded object (= ms per 1,000 objects).
    pub fn us_per_obj(&self) -> f64 {
        self.relay_cpu_s * 1e6 / self.received.max(1) as f64
    }
}

/// Keeps a subscription's objects flowing into `recv`.
fn drain(mut s: Subscription, recv: Arc<Recv>) {
    tokio::spawn(async move {
        while let Ok(o) = s.next_object(Duration::from_secs(3600)).await {
            recv.note(&o.payload);
        }
    });
}

/// Answers every SUBSCRIBE the relay forwards to `publ` (a relay that
/// aggregates sends one), adding the track publishers to `out`.
fn serve(publ: Session, out: Tracks) {
    tokio::spawn(async move {
        let mut alias = 1;
        while let Ok(inc) = publ.accept_subscribe(Duration::from_secs(3600)).await {
            if let Ok(p) = inc.accept(alias).await {
                out.lock().unwrap().push(Arc::new(p));
            }
            alias += 1;
        }
    });
}

/// Waits (bounded) until `publishers` holds `n` tracks.
async fn wait_tracks(publishers: &Tracks, n: usize, within: Duration) -> usize {
    let t0 = Instant::now();
    loop {
        let have = publishers.lock().unwrap().len();
        if have >= n || t0.elapsed() > within {
            return have;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The track publishers of one publishing party (one per SUBSCRIBE the
/// relay forwarded).
type Tracks = Arc<Mutex<Vec<Arc<TrackPublisher>>>>;

struct Setup {
    sessions: Vec<Session>,
    /// Per publishing party: its accepted track publishers.
    parties: Vec<Tracks>,
    ready: usize,
    error: Option<String>,
}

/// One call: two sessions, each announcing its namespace and subscribing
/// to the other's `audio`.
async fn setup_call(dial: &Dial, tag: &str, i: usize, recv: Arc<Recv>) -> anyhow::Result<(Vec<Session>, Vec<Tracks>)> {
    let a = dial.connect().await?;
    let b = dial.connect().await?;
    let ns = |side: &str| TrackNamespace::from_utf8_path(&format!("bench/{tag}/{i}/{side}"));
    let ha = a.publish_namespace(&ns("a")).await?;
    let hb = b.publish_namespace(&ns("b")).await?;
    std::mem::forget((ha, hb));
    let mut parties = Vec::new();
    for (publ, sub, side) in [(&a, &b, "a"), (&b, &a, "b")] {
        let out: Tracks = Arc::default();
        serve(publ.clone(), out.clone());
        let s = sub.subscribe(&ns(side), "audio", SubscribeParams::new()).await?;
        drain(s, recv.clone());
        anyhow::ensure!(wait_tracks(&out, 1, Duration::from_secs(10)).await == 1, "the publisher never saw the SUBSCRIBE");
        parties.push(out);
    }
    Ok((vec![a, b], parties))
}

/// Sets up `n` calls, 8 at a time.
async fn setup_calls(dial: &Dial, tag: &str, n: usize, recv: &Arc<Recv>) -> Setup {
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let (dial, tag, recv, sem) = (dial.clone(), tag.to_string(), recv.clone(), sem.clone());
        set.spawn(async move {
            let _p = sem.acquire().await;
            setup_call(&dial, &tag, i, recv).await
        });
    }
    let mut s = Setup { sessions: Vec::new(), parties: Vec::new(), ready: 0, error: None };
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok((ss, ps))) => {
                s.sessions.extend(ss);
                s.parties.extend(ps);
                s.ready += 1;
            }
            Ok(Err(e)) => {
                s.error.get_or_insert(format!("{e:#}"));
            }
            Err(e) => {
                s.error.get_or_insert(e.to_string());
            }
        }
    }
    s
}

/// Sends one frame per party every 20 ms, from 16 staggered sender tasks
/// (phones are not in step). Runs `warm + rounds` frames; returns how many
/// (party, frame) pairs of the window went out.
async fn pump(parties: &[Tracks], mapping: Mapping, warm: u64, rounds: u64) -> u64 {
    let tasks = 16.min(parties.len().max(1));
    let sent = Arc::new(AtomicU64::new(0));
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        // Tracks are all accepted by now: snapshot them, no lock per object.
        let mine: Vec<(usize, Vec<Arc<TrackPublisher>>)> =
            parties.iter().enumerate().filter(|(i, _)| i % tasks == t).map(|(i, p)| (i, p.lock().unwrap().clone())).collect();
        let sent = sent.clone();
        set.spawn(async move {
            tokio::time::sleep(Duration::from_micros(20_000 * t as u64 / tasks as u64)).await;
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for frame in 0..warm + rounds {
                tick.tick().await;
                for (i, tracks) in &mine {
                    let mut ok = false;
                    for track in tracks {
                        let data = payload(frame, *i);
                        ok |= match mapping {
                            Mapping::Datagram => track.send_datagram(&DatagramSpec::new(frame / 50, frame % 50, data)).is_ok(),
                            Mapping::DatagramGroup => track.send_datagram(&DatagramSpec::new(frame, 0, data)).is_ok(),
                            Mapping::Stream => send_stream(track, frame, data).await,
                        };
                    }
                    if ok && frame >= warm {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    sent.load(Ordering::Relaxed)
}

/// One object on its own SUBGROUP stream (group per frame).
async fn send_stream(track: &TrackPublisher, frame: u64, data: Bytes) -> bool {
    let spec = moq_client::SubgroupSpec { end_of_group: true, ..moq_client::SubgroupSpec::new(frame, 0) };
    match track.open_subgroup(spec).await {
        Ok(mut w) => {
            let ok = w.write(0, &data).await.is_ok();
            w.finish();
            ok
        }
        Err(_) => false,
    }
}

/// Measures `warm` s of warm-up then `secs` s of traffic; `wanted`/`ready`
/// count calls or subscribers, `fan` how many receivers each object has.
async fn measure(
    relay: &crate::relays::Relay,
    s: Setup,
    recv: Arc<Recv>,
    wanted: usize,
    fan: u64,
    secs: u64,
    mapping: Mapping,
) -> LoadResult {
    let (warm, rounds) = (50, secs * 50);
    recv.from.store(warm, Ordering::Relaxed);
    recv.to.store(warm + rounds, Ordering::Relaxed);
    let marks: Arc<Mutex<Option<Marks>>> = Arc::default();
    let m2 = marks.clone();
    let pid = relay.pid;
    let port = relay.url.port().unwrap_or(0);
    let d0 = udp_drops(port);
    // The CPU window starts with the first measured frame (after warm-up).
    let mark = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(warm * 20)).await;
        *m2.lock().unwrap() = Some((cpu_secs(pid), cpu_secs(std::process::id()), machine_busy_secs(), Instant::now()));
    });
    let sent = pump(&s.parties, mapping, warm, rounds).await;
    let _ = mark.await;
    let (c0, g0, m0, t0) = marks.lock().unwrap().unwrap_or((0.0, 0.0, 0.0, Instant::now()));
    let (c1, g1, m1, t1) = (relay.cpu_secs(), cpu_secs(std::process::id()), machine_busy_secs(), Instant::now());
    let rss = relay.rss();
    // Objects still in flight count if they arrive within 300 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d1 = udp_drops(port);
    let drops_relay = d1.0.saturating_sub(d0.0);
    let r = LoadResult {
        drops_relay,
        drops_other: d1.1.saturating_sub(d0.1).saturating_sub(drops_relay),
        ready: s.ready,
        wanted,
        sent,
        expected: sent * fan,
        received: recv.received.load(Ordering::Relaxed),
        p50_ms: recv.pct(0.5),
        p99_ms: recv.pct(0.99),
        p999_ms: recv.pct(0.999),
        relay_cpu_s: c1 - c0,
        gen_cpu_s: g1 - g0,
        other_cpu_s: ((m1 - m0) - (c1 - c0) - (g1 - g0)).max(0.0),
        secs: (t1 - t0).as_secs_f64(),
        rss_growth: rss.saturating_sub(relay.rss0),
        setup_error: s.error,
    };
    for sess in s.sessions {
        drop(sess);
    }
    r
}

/// N concurrent 1:1 calls for `secs` s (after 1 s of warm-up).
pub async fn calls(relay: &crate::relays::Relay, n: usize, secs: u64, mapping: Mapping) -> LoadResult {
    let recv = Recv::new();
    let tag = format!("{}-calls-{n}", std::process::id());
    let s = setup_calls(&relay.dial(), &tag, n, &recv).await;
    measure(relay, s, recv, n, 1, secs, mapping).await
}

/// One publisher, `k` subscribers of its one track.
pub async fn fanout(relay: &crate::relays::Relay, k: usize, secs: u64, mapping: Mapping) -> LoadResult {
    let recv = Recv::new();
    let ns = TrackNamespace::from_utf8_path(&format!("bench/{}-fan-{k}/room", std::process::id()));
    let mut s = Setup { sessions: Vec::new(), parties: Vec::new(), ready: 0, error: None };
    let publ = match relay.dial().connect().await {
        Ok(p) => p,
        Err(e) => {
            s.error = Some(format!("{e:#}"));
            return measure(relay, s, recv, k, 0, 0, mapping).await;
        }
    };
    match publ.publish_namespace(&ns).await {
        Ok(h) => std::mem::forget(h),
        Err(e) => s.error = Some(format!("PUBLISH_NAMESPACE: {e}")),
    }
    let out: Tracks = Arc::default();
    serve(publ.clone(), out.clone());
    s.sessions.push(publ);
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..k {
        let (dial, ns, recv, sem) = (relay.dial(), ns.clone(), recv.clone(), sem.clone());
        set.spawn(async move {
            let _p = sem.acquire().await;
            let sess = dial.connect().await?;
            let sub = sess.subscribe(&ns, "audio", SubscribeParams::new()).await?;
            drain(sub, recv);
            anyhow::Ok(sess)
        });
    }
    while let Some(r) = set.join_next().await {
        match r.map_err(anyhow::Error::from).and_then(|r| r) {
            Ok(sess) => {
                s.sessions.push(sess);
                s.ready += 1;
            }
            Err(e) => {
                s.error.get_or_insert(format!("{e:#}"));
            }
        }
    }
    wait_tracks(&out, 1, Duration::from_secs(5)).await;
    s.parties.push(out);
    let fan = s.ready as u64;
    measure(relay, s, recv, k, fan, secs, mapping).await
}

/// CPU-seconds marks (relay, generator, rest of machine) and when they were taken.
type Marks = (f64, f64, f64, Instant);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_opus_sized_and_carry_stamp_and_frame() {
        for frame in 0..200 {
            let p = payload(frame, 3);
            assert!((60..=120).contains(&p.len()), "{}", p.len());
            assert_eq!(u64::from_le_bytes(p[8..16].try_into().unwrap()), frame);
        }
    }

    #[test]
    fn only_window_frames_count_and_percentiles_follow_the_histogram() {
        let r = Recv::new();
        r.from.store(10, Ordering::Relaxed);
        r.to.store(20, Ordering::Relaxed);
        r.note(&payload(5, 0));
        r.note(&payload(20, 0));
        assert_eq!(r.received.load(Ordering::Relaxed), 0);
        // Fill the histogram directly: 90 objects at 1 ms, 10 at 40 ms.
        r.hist[(1_000_000 / BUCKET_NS) as usize].fetch_add(90, Ordering::Relaxed);
        r.hist[(40_000_000 / BUCKET_NS) as usize].fetch_add(10, Ordering::Relaxed);
        assert!((r.pct(0.5) - 1.005).abs() < 1e-9);
        assert!((r.pct(0.99) - 40.005).abs() < 1e-9);
        r.note(&payload(15, 0));
        assert_eq!(r.received.load(Ordering::Relaxed), 1);
    }
}
