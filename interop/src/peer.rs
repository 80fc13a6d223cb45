//! moq-interop-peer: our publisher and subscriber roles in the interop
//! matrix (`interop/run`). Each foreign peer in the matrix has the same two
//! roles (aiomoqt: `interop/aiomoqt/peer.py`; moq-dev: its `clock` client),
//! so any publisher can be paired with any relay and any subscriber.
//!
//! ```text
//! moq-interop-peer publish   -r moqt://127.0.0.1:4443 --ca ca.pem -n interop/x -t track --flow namespace --delivery stream
//! moq-interop-peer subscribe -r moqt://127.0.0.1:4443 --ca ca.pem -n interop/x -t track --count 100
//! ```
//!
//! The publisher prints `ready` once the relay accepted its namespace
//! (PUBLISH_NAMESPACE_OK, draft-18 §10.14) or its track (PUBLISH_OK, §10.10)
//! and then sends objects until it is killed: `--group-size` objects a group,
//! `--rate` objects a second, each group on its own subgroup stream (§11.4)
//! or every object as an OBJECT_DATAGRAM (§11.3). The subscriber prints one
//! JSON line — `ok`, `received`, `groups`, `first`, `last`, `problem` — and
//! exits 0 when `--count` objects arrived without a gap or a duplicate.

use clap::{Parser, ValueEnum};
use moq_client::{
    Client, DatagramSpec, Error, PublisherRequest, Session, SubgroupSpec, SubgroupWriter, SubscribeParams, Tls, TrackPublisher,
};
use moq_wire::coding::TrackNamespace;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

#[derive(Parser, Debug)]
#[command(name = "moq-interop-peer", version, about = "Publisher and subscriber roles of moq-phone's interop matrix")]
struct Args {
    #[command(subcommand)]
    role: Role,
}

#[derive(clap::Args, Debug, Clone)]
struct Common {
    /// Relay URL: moqt:// for native QUIC, https:// for WebTransport.
    #[arg(short, long)]
    relay: Url,
    /// Track namespace, `/`-separated fields.
    #[arg(short, long)]
    namespace: String,
    /// Track name.
    #[arg(short, long, default_value = "track")]
    track: String,
    /// Trust the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// Accept any server certificate.
    #[arg(long)]
    tls_disable_verify: bool,
}

#[derive(clap::Subcommand, Debug)]
enum Role {
    /// Announce (or PUBLISH) a track and send objects until killed.
    Publish {
        #[command(flatten)]
        common: Common,
        #[arg(long, value_enum, default_value_t = Flow::Namespace)]
        flow: Flow,
        #[arg(long, value_enum, default_value_t = Delivery::Stream)]
        delivery: Delivery,
        /// Objects per group.
        #[arg(long, default_value_t = 10)]
        group_size: u64,
        /// Objects per second.
        #[arg(long, default_value_t = 100)]
        rate: u64,
    },
    /// Subscribe and check that `count` objects arrive in order.
    Subscribe {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 100)]
        count: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 15)]
        timeout: u64,
        /// The objects must span at least this many groups (a clock
        /// publisher makes one group a minute).
        #[arg(long, default_value_t = 3)]
        min_groups: usize,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq)]
enum Flow {
    /// PUBLISH_NAMESPACE; the relay forwards subscribers' SUBSCRIBEs (§6.2).
    Namespace,
    /// Direct PUBLISH of the track (§9.11).
    Publish,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq)]
enum Delivery {
    Stream,
    Datagram,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match args.role {
            Role::Publish { common, flow, delivery, group_size, rate } => {
                publish(&common, flow, delivery, group_size.max(1), rate.max(1)).await
            }
            Role::Subscribe { common, count, timeout, min_groups } => {
                subscribe(&common, count, Duration::from_secs(timeout), min_groups).await
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("moq-interop-peer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn tls(c: &Common) -> Tls {
    match (&c.ca, c.tls_disable_verify) {
        (_, true) => Tls::DisableVerify,
        (Some(ca), false) => Tls::Ca(ca.clone()),
        (None, false) => Tls::System,
    }
}

async fn connect(c: &Common) -> Result<Session, Error> {
    Client::connect(&c.relay, &tls(c)).await
}

/// One subscriber's copy of the track: its handle, the open subgroup, and
/// whether its first group began. A new subscriber starts at the next group,
/// as a live encoder starts a viewer at a keyframe: every group it gets is
/// whole (moq-dev's subscriber cannot take a group from the middle).
struct Sink {
    track: TrackPublisher,
    writer: Option<SubgroupWriter>,
    started: bool,
}

async fn publish(c: &Common, flow: Flow, delivery: Delivery, group_size: u64, rate: u64) -> Result<bool, Error> {
    let session = connect(c).await?;
    let ns = TrackNamespace::from_utf8_path(&c.namespace);
    let sinks = Arc::new(Mutex::new(Vec::<Sink>::new()));
    // Keeps the namespace announced for as long as we publish.
    let _announced = match flow {
        Flow::Namespace => {
            let handle = session.publish_namespace(&ns).await?;
            let (session, sinks, track) = (session.clone(), sinks.clone(), c.track.clone());
            tokio::spawn(async move { serve(session, sinks, track).await });
            Some(handle)
        }
        Flow::Publish => {
            let track = session.publish(&ns, &c.track, 1).await?;
            sinks.lock().unwrap_or_else(|e| e.into_inner()).push(Sink { track, writer: None, started: false });
            None
        }
    };
    println!("ready");
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0u64.. {
        tick.tick().await;
        if let Some(why) = session.close_reason() {
            return Err(Error::Closed(why));
        }
        let (g, o) = (n / group_size, n % group_size);
        let payload = bytes::Bytes::from(format!("{g}/{o} moq-phone interop peer {:>40}", ""));
        // Take the sinks out while writing: the lock is never held across an await.
        let mut current = std::mem::take(&mut *sinks.lock().unwrap_or_else(|e| e.into_inner()));
        let mut kept = Vec::with_capacity(current.len());
        for mut sink in current.drain(..) {
            sink.started |= o == 0;
            if !sink.started {
                kept.push(sink);
                continue;
            }
            let ok = match delivery {
                Delivery::Datagram => {
                    let spec = DatagramSpec { end_of_group: o + 1 == group_size, ..DatagramSpec::new(g, o, payload.clone()) };
                    sink.track.send_datagram(&spec).is_ok()
                }
                Delivery::Stream => write_stream(&mut sink, g, o, group_size, &payload).await.is_ok(),
            };
            if ok {
                kept.push(sink);
            }
        }
        sinks.lock().unwrap_or_else(|e| e.into_inner()).extend(kept);
    }
    Ok(true)
}

/// Writes object `g/o` on the sink's subgroup stream, opening a new stream
/// at each group's first object and ending it after its last (§11.4).
async fn write_stream(sink: &mut Sink, g: u64, o: u64, group_size: u64, payload: &[u8]) -> Result<(), Error> {
    let open = sink.writer.is_none() || o == 0;
    if open {
        if let Some(w) = sink.writer.take() {
            w.finish();
        }
        let spec = SubgroupSpec { end_of_group: true, ..SubgroupSpec::new(g, 0) };
        sink.writer = Some(sink.track.open_subgroup(spec).await?);
    }
    let w = sink.writer.as_mut().expect("opened above");
    w.write(o, payload).await?;
    if o + 1 == group_size {
        if let Some(w) = sink.writer.take() {
            w.finish();
        }
    }
    Ok(())
}

/// Answers the SUBSCRIBEs the relay forwards for our track (§9.5); FETCHes
/// and other tracks are refused (this peer keeps no cache).
async fn serve(session: Session, sinks: Arc<Mutex<Vec<Sink>>>, track: String) {
    let mut alias = 1;
    loop {
        match session.accept_publisher_request(Duration::from_secs(3600)).await {
            Ok(PublisherRequest::Subscribe(s)) if s.track_name() == track => {
                alias += 1;
                if let Ok(t) = s.accept(alias).await {
                    sinks.lock().unwrap_or_else(|e| e.into_inner()).push(Sink { track: t, writer: None, started: false });
                }
            }
            Ok(PublisherRequest::Subscribe(s)) => {
                let _ = s.reject(0x10, "no such track").await;
            }
            Ok(PublisherRequest::Fetch(f)) => {
                let _ = f.reject(0x3, "this publisher keeps no cache").await;
            }
            Err(Error::Timeout(_)) => continue,
            Err(_) => return,
        }
    }
}

async fn subscribe(c: &Common, count: usize, timeout: Duration, min_groups: usize) -> Result<bool, Error> {
    let session = connect(c).await?;
    let ns = TrackNamespace::from_utf8_path(&c.namespace);
    let deadline = tokio::time::Instant::now() + timeout;
    // A direct PUBLISH may reach the relay after our SUBSCRIBE: ask again
    // while the answer is DOES_NOT_EXIST (0x10) and time is left.
    let mut sub = loop {
        match session.subscribe(&ns, &c.track, SubscribeParams::new().largest_object()).await {
            Ok(s) => break s,
            Err(Error::Rejected(e)) if e.code == 0x10 && tokio::time::Instant::now() + Duration::from_millis(100) < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let mut got = Vec::with_capacity(count);
    let mut datagrams = false;
    let mut why = None;
    while got.len() < count {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match sub.next_object(left).await {
            Ok(o) => {
                datagrams |= o.carrier == moq_client::Carrier::Datagram;
                got.push((o.group_id, o.object_id));
            }
            Err(e) => {
                why = Some(format!("only {} of {count} objects arrived: {e}", got.len()));
                break;
            }
        }
    }
    let problem = why.or_else(|| contiguous(&got, datagrams, min_groups));
    let show = |l: Option<&(u64, u64)>| l.map(|(g, o)| format!("\"{g}/{o}\"")).unwrap_or_else(|| "null".into());
    let groups = got.iter().map(|l| l.0).collect::<std::collections::BTreeSet<_>>().len();
    println!(
        "{{\"ok\": {}, \"received\": {}, \"groups\": {groups}, \"delivery\": \"{}\", \"first\": {}, \"last\": {}, \"problem\": {}}}",
        problem.is_none(),
        got.len(),
        if datagrams { "datagram" } else { "stream" },
        show(got.first()),
        show(got.last()),
        problem.as_deref().map(|p| format!("{p:?}")).unwrap_or_else(|| "null".into()),
    );
    Ok(problem.is_none())
}

/// The first problem in the received (group, object) sequence, or `None`.
/// No location twice; groups consecutive; every group but the first starts
/// at object 0; objects within a group consecutive — and, on streams, in
/// order (§11.4: one group per stream; groups may interleave). The last
/// group may be cut short by the count. Datagrams may reorder (§11.3).
fn contiguous(got: &[(u64, u64)], datagrams: bool, min_groups: usize) -> Option<String> {
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = got.iter().find(|l| !seen.insert(**l)) {
        return Some(format!("object {}/{} arrived twice", dup.0, dup.1));
    }
    let mut groups: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
    for &(g, o) in got {
        groups.entry(g).or_default().push(o);
    }
    let (&first, &last) = (groups.keys().next()?, groups.keys().next_back()?);
    if groups.len() as u64 != last - first + 1 {
        return Some(format!("groups missing between {first} and {last}"));
    }
    for (&g, objs) in groups.iter_mut() {
        if !datagrams && objs.windows(2).any(|w| w[0] > w[1]) {
            return Some(format!("group {g} objects out of order: {objs:?}"));
        }
        objs.sort_unstable();
        if g != first && objs[0] != 0 {
            return Some(format!("group {g} starts at object {}", objs[0]));
        }
        if objs.windows(2).any(|w| w[1] != w[0] + 1) {
            return Some(format!("group {g} has a gap: {objs:?}"));
        }
    }
    if groups.len() < min_groups {
        return Some(format!("objects spanned only {} groups", groups.len()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::contiguous;

    #[test]
    fn a_clean_run_passes_and_each_fault_is_named() {
        let run: Vec<_> = (3..40u64).map(|n| (n / 10, n % 10)).collect();
        assert_eq!(contiguous(&run, false, 3), None);
        let mut dup = run.clone();
        dup.push((1, 1));
        assert_eq!(contiguous(&dup, false, 3).unwrap(), "object 1/1 arrived twice");
        let gap: Vec<_> = run.iter().copied().filter(|&l| l != (2, 5)).collect();
        assert!(contiguous(&gap, false, 3).unwrap().contains("group 2 has a gap"));
        let no_group: Vec<_> = run.iter().copied().filter(|l| l.0 != 2).collect();
        assert!(contiguous(&no_group, false, 3).unwrap().starts_with("groups missing"));
        let mut swapped = run.clone();
        swapped.swap(10, 11);
        assert!(contiguous(&swapped, false, 3).unwrap().contains("out of order"));
        assert_eq!(contiguous(&swapped, true, 3), None, "datagrams may reorder");
        let late: Vec<_> = run.iter().copied().filter(|&l| l != (2, 0)).collect();
        assert!(contiguous(&late, false, 3).unwrap().contains("group 2 starts at object 1"));
        assert!(contiguous(&run[..12], false, 3).unwrap().contains("only 2 groups"));
    }
}
