//! moq-bench: measurements for moq-phone. Results go to bench/results/
//! and bench/RESULTS.md. Figures are reported, never asserted.
//!
//!   moq-bench compare ...     ours (tokens off, on) vs moq-relay-ietf vs moq-dev (bench/run)
//!   moq-bench call-loss --loss 2 --jitter-ms 20 --secs 30
//!   moq-bench fallback --calls 10,25,50   WebRTC fallback calls beside QUIC (issue 14)
//!   moq-bench soak --minutes 60   call churn through our relay, fails on growth (bench/soak, issue 20)
//!
//! call-loss runs a real call (two phones, our relay as a process) through a
//! UDP impairment proxy and reports concealment, underruns per minute and
//! mouth-to-ear latency.

mod compare;
mod fallback;
mod hostile_caller;
mod impair;
mod link;
mod load;
mod pbx;
mod phones;
mod plot;
mod probe;
mod procstat;
mod relays;
mod report;
mod rtc_peer;
mod soak;
mod storm;
mod tokens;
mod verdict;

use clap::{Parser, Subcommand};
use pub_sub_audio::audio::FRAME;
use pub_sub_audio::call::{Address, Timers, UserAction};
use pub_sub_audio::phone::media::{AudioMapping, MediaConfig, Recording};
use pub_sub_audio::phone::Progress;
use pub_sub_audio::phone::{Phone, PhoneConfig};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Parser)]
#[command(name = "moq-bench")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Relays side by side (ours without and with tokens, moq-relay-ietf,
    /// moq-dev's moq-relay): calls, fan-out, call-setup storm; writes
    /// RESULTS.md and PNG plots (run through bench/run).
    Compare(compare::CompareArgs),
    /// N calls whose parties are both WebRTC fallback peers (str0m on the
    /// relay's gateway) beside N QUIC calls of the same shape, on our relay;
    /// writes bench/results/fallback.md.
    Fallback(fallback::FallbackArgs),
    /// Calls-shaped load on relays, side by side; writes bench/results/relay-load.md.
    RelayLoad {
        /// Concurrent calls per step (two parties each), e.g. 10,25,50.
        #[arg(long, value_delimiter = ',', default_value = "10,25,50")]
        calls: Vec<usize>,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, value_enum, default_value = "datagram")]
        mapping: load::Mapping,
        /// moq-relay-ietf binary to compare against (optional).
        #[arg(long, env = "MOQ_RELAY_IETF")]
        ietf: Option<std::path::PathBuf>,
        #[arg(long, default_value = "bench/results/relay-load.md")]
        out: std::path::PathBuf,
    },
    /// MoQ calls into Asterisk's Echo() through chan_moq; prints table rows
    /// (run by bench/pbx-legs.sh inside the Asterisk harness's namespace).
    PbxLegs {
        #[arg(long, default_value = "moqt://127.0.0.1:4443")]
        relay: url::Url,
        /// Host PID of the Asterisk process to measure.
        #[arg(long)]
        asterisk_pid: u32,
        /// Label of the chan_moq codec setting in force.
        #[arg(long)]
        codec: String,
        #[arg(long, value_delimiter = ',', default_value = "5,10,20")]
        calls: Vec<usize>,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value = "pbx/100")]
        to: String,
    },
    /// A UDP impairment proxy with a named link profile each way (issue 19):
    /// put it between a client (or a browser) and a relay by hand.
    Impair {
        /// Where clients send to.
        #[arg(long, default_value = "127.0.0.1:5443")]
        listen: std::net::SocketAddr,
        /// The relay (UDP) behind it.
        #[arg(long, default_value = "127.0.0.1:4443")]
        to: std::net::SocketAddr,
        /// What clients send meets this profile (see --list).
        #[arg(long, default_value = "clean")]
        up: String,
        /// What clients receive meets this profile.
        #[arg(long, default_value = "clean")]
        down: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print the profiles and exit.
        #[arg(long)]
        list: bool,
    },
    /// Call churn through our relay for `--minutes`, watched for growth;
    /// writes bench/SOAK.md and exits 1 when anything grew or a call failed
    /// (run through bench/soak).
    Soak(soak::SoakArgs),
    /// A caller that misbehaves towards its callee (flood, garbage, vanish);
    /// chan_moq's test in Asterisk runs it (exit 1: the callee never got far enough).
    HostileCaller(hostile_caller::HostileCallerArgs),
    /// A call through a lossy, jittery path; writes bench/results/call-loss.md.
    CallLoss {
        /// Packet loss in percent, each direction.
        #[arg(long, default_value_t = 2.0)]
        loss: f64,
        /// Base one-way delay in ms.
        #[arg(long, default_value_t = 5)]
        delay_ms: u64,
        /// Uniform extra delay 0..jitter in ms.
        #[arg(long, default_value_t = 20)]
        jitter_ms: u64,
        /// Call length in seconds.
        #[arg(long, default_value_t = 30)]
        secs: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Where to write the results table.
        #[arg(long, default_value = "bench/results/call-loss.md")]
        out: std::path::PathBuf,
    },
}

pub fn free_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

fn tone(freq: f32, secs: u64) -> Vec<i16> {
    (0..48_000 * secs as usize).map(|i| ((i as f32 * freq * 2.0 * std::f32::consts::PI / 48_000.0).sin() * 12_000.0) as i16).collect()
}

pub fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Longest run of silence after the first sound (start-up buffering excluded).
fn longest_gap_frames(s: &[i16]) -> f64 {
    let (mut run, mut best) = (0usize, 0usize);
    let start = s.iter().position(|x| *x != 0).unwrap_or(s.len());
    for x in &s[start..] {
        run = if *x == 0 { run + 1 } else { 0 };
        best = best.max(run);
    }
    best as f64 / FRAME as f64
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("error").with_writer(std::io::stderr).init();
    match Cli::parse().cmd {
        Cmd::CallLoss { loss, delay_ms, jitter_ms, secs, seed, out } => call_loss(loss, delay_ms, jitter_ms, secs, seed, &out).await,
        Cmd::RelayLoad { calls, secs, mapping, ietf, out } => relay_load(&calls, secs, mapping, ietf, &out).await,
        Cmd::Compare(a) => {
            let o = compare::run(a.clone()).await?;
            std::fs::create_dir_all(&a.out)?;
            let mut md = report::write(&o, &a)?;
            match plot::write(&o, &a.out) {
                Ok(files) => eprintln!("plots: {}", files.join(", ")),
                Err(e) => md += &format!("\n(Plots not written: {e}.)\n"),
            }
            let path = a.out.join("RESULTS.md");
            std::fs::write(&path, &md)?;
            eprintln!("wrote {}", path.display());
            Ok(())
        }
        Cmd::Fallback(a) => {
            let md = fallback::run(&a).await?;
            println!("{md}");
            eprintln!("wrote {}", a.out.display());
            Ok(())
        }
        Cmd::Impair { listen, to, up, down, seed, list } => {
            if list {
                for n in link::Profile::NAMES {
                    println!("{n:16} {:?}", link::Profile::named(n).expect("a named profile"));
                }
                return Ok(());
            }
            let profile = |n: &str| link::Profile::named(n).ok_or_else(|| anyhow::anyhow!("no profile {n:?}; --list shows them"));
            let proxy = impair::start_links(listen, to, profile(&up)?, profile(&down)?, seed).await?;
            // The first line, parsed by bench/quality/run.mjs: the bound address and the links'
            // time zero (wall clock), from which a profile's outages start (link::OUTAGE_AT).
            eprintln!(
                "impairing {} → {to}: up {up}, down {down}, seed {seed}, epoch_unix_us {} (outages start {:?} after it)",
                proxy.addr,
                proxy.epoch_unix_us,
                link::OUTAGE_AT
            );
            tokio::signal::ctrl_c().await?;
            Ok(())
        }
        Cmd::Soak(a) => {
            if !soak::main(a).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::HostileCaller(a) => {
            if !hostile_caller::main(a).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::PbxLegs { relay, asterisk_pid, codec, calls, secs, to } => {
            for n in calls {
                eprintln!("== {codec}: {n} calls for {secs} s");
                let r = pbx::run(&relay, &to, n, secs, asterisk_pid).await?;
                print!("{}", pbx::row(&codec, &r));
            }
            Ok(())
        }
    }
}

async fn call_loss(loss: f64, delay_ms: u64, jitter_ms: u64, secs: u64, seed: u64, out: &std::path::Path) -> anyhow::Result<()> {
    let mappings = [
        ("datagram per frame", AudioMapping::Datagram),
        ("stream per frame (group per frame)", AudioMapping::Streams(1)),
        ("stream per second (50-frame group)", AudioMapping::Streams(50)),
    ];
    let mut rows = String::new();
    for (i, (name, mapping)) in mappings.iter().enumerate() {
        eprintln!("== mapping {}/{}: {name}", i + 1, mappings.len());
        let (a, b) = one_call(loss, delay_ms, jitter_ms, secs, seed, *mapping).await?;
        rows += &row(name, "alice hears bob", &a);
        rows += &row(name, "bob hears alice", &b);
    }
    let table = format!(
        "# Call under loss and jitter\n\n`moq-bench call-loss --loss {loss} --delay-ms {delay_ms} --jitter-ms {jitter_ms} --secs {secs} --seed {seed}`\n\n\
         Two moq-phones call each other through moq-relay; every packet of both QUIC connections crosses a \
         user-space impairment proxy ({loss}% loss and {delay_ms} ms + uniform 0..{jitter_ms} ms delay, each way; \
         so each direction of audio crosses two lossy hops). Opus 20 ms frames with in-band FEC, adaptive jitter \
         buffer. Mouth-to-ear = LOC capture timestamp to playout, same host clock. Reported, not asserted.\n\n\
         | mapping | listener | heard (s) | frames played | FEC-rebuilt | concealed | underruns/min | mouth-to-ear p50 (ms) | p99 (ms) | longest silent gap (frames) | dominant Hz |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n{rows}"
    );
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, &table)?;
    println!("{table}");
    Ok(())
}

fn row(mapping: &str, who: &str, r: &Recording) -> String {
    let minutes = r.samples.len() as f64 / 48_000.0 / 60.0;
    let mut lat = r.latency_ms.clone();
    let s = r.stats;
    format!(
        "| {mapping} | {who} | {:.1} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} |\n",
        r.samples.len() as f64 / 48_000.0,
        s.played,
        s.fec,
        s.concealed,
        s.underruns as f64 / minutes.max(1e-9),
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        longest_gap_frames(&r.samples),
        pub_sub_audio::audio::wav::dominant_frequency(&r.samples[48_000.min(r.samples.len())..], 48_000),
    )
}

async fn one_call(
    loss: f64,
    delay_ms: u64,
    jitter_ms: u64,
    secs: u64,
    seed: u64,
    mapping: AudioMapping,
) -> anyhow::Result<(Recording, Recording)> {
    let relay_bin = std::env::current_exe()?.with_file_name("moq-relay");
    anyhow::ensure!(relay_bin.exists(), "{} not found: run `cargo build -p moq-relay` (same profile) first", relay_bin.display());
    let rport = free_port();
    let mut relay =
        Command::new(&relay_bin).args(["--bind", &format!("127.0.0.1:{rport}")]).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    eprintln!("[1/4] relay on 127.0.0.1:{rport}; impairment {loss}% loss, {delay_ms} ms + 0..{jitter_ms} ms jitter each way");
    let imp = impair::Impairment { loss: loss / 100.0, delay: Duration::from_millis(delay_ms), jitter: Duration::from_millis(jitter_ms) };
    let proxy = impair::start("127.0.0.1:0".parse()?, format!("127.0.0.1:{rport}").parse()?, imp, seed).await?;
    let url: url::Url = format!("moqt://{proxy}").parse()?;
    let cfg = |user: &str, dev: &str| PhoneConfig {
        url: url.clone(),
        tls: moq_client::Tls::DisableVerify,
        user: user.into(),
        device: dev.into(),
        display: user.into(),
        timers: Timers::default(),
        token: None,
    };
    eprintln!("[2/4] registering phones through the proxy");
    let mut tries = 0;
    let (alice, bob, mut rings) = loop {
        match (Phone::register(cfg("alice", "a1")).await, Phone::register(cfg("bob", "b1")).await) {
            (Ok((a, _)), Ok((b, r))) => break (a, b, r),
            _ if tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (a, b) => anyhow::bail!("registration failed: {:?} {:?}", a.err(), b.err()),
        }
    };
    eprintln!("[3/4] calling for {secs} s");
    let (a_user_tx, a_user) = mpsc::unbounded_channel();
    let (b_user_tx, b_user) = mpsc::unbounded_channel();
    let (a_rep, mut a_lines) = mpsc::unbounded_channel::<Progress>();
    let (b_rep, mut b_lines) = mpsc::unbounded_channel::<Progress>();
    let a = tokio::spawn({
        let alice = alice.clone();
        async move {
            alice
                .call(
                    &Address::parse("bob")?,
                    MediaConfig { play: tone(440.0, secs + 5), record: true, mapping, live: None },
                    a_user,
                    a_rep,
                )
                .await
                .pipe_ok()
        }
    });
    let inc = rings.recv().await.ok_or_else(|| anyhow::anyhow!("bob never rang"))?;
    let b = tokio::spawn({
        let bob = bob.clone();
        async move { bob.take(&inc, MediaConfig { play: tone(880.0, secs + 5), record: true, mapping, live: None }, b_user, b_rep).await }
    });
    // Answer on ringing, hang up `secs` after establishment.
    while let Some(l) = b_lines.recv().await {
        if l == (Progress::Ringing { on: true }) {
            b_user_tx.send(UserAction::Answer)?;
            break;
        }
    }
    while let Some(l) = a_lines.recv().await {
        if matches!(l, Progress::Established { .. }) {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    a_user_tx.send(UserAction::Hangup)?;
    let (oa, ob) = (a.await??, b.await?);
    let _ = relay.kill();
    let _ = relay.wait();
    eprintln!("[4/4] done");
    Ok((oa.recording, ob.recording))
}

trait PipeOk<T> {
    fn pipe_ok(self) -> anyhow::Result<T>;
}
impl<T> PipeOk<T> for T {
    fn pipe_ok(self) -> anyhow::Result<T> {
        Ok(self)
    }
}

async fn relay_load(
    steps: &[usize],
    secs: u64,
    mapping: load::Mapping,
    ietf: Option<std::path::PathBuf>,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let ours = std::env::current_exe()?.with_file_name("moq-relay");
    anyhow::ensure!(ours.exists(), "{} not found: build moq-relay in the same profile first", ours.display());
    let dir = std::env::temp_dir().join(format!("relay-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut bins = vec![relays::RelayBin::new(relays::Kind::Ours, ours)];
    if let Some(i) = ietf {
        bins.push(relays::RelayBin::new(relays::Kind::Ietf, i));
    }
    let mut rows = String::new();
    for &n in steps {
        for r in &bins {
            let relay = relays::Relay::start(r, &dir, Some(0)).await?;
            let res = load::calls(&relay, n, secs, mapping).await;
            drop(relay);
            eprintln!("{}: {n} calls: {}", r.name, verdict::load_line(&res));
            rows += &format!(
                "| {} | {n} | {} | {} | {:.2}% | {:.1} | {:.2} | {:.0}% | {:.1} | {:.0} |\n",
                r.name,
                res.sent,
                res.received,
                res.loss() * 100.0,
                res.us_per_obj(),
                res.p99_ms,
                res.relay_cpu_s / res.secs * 100.0,
                res.gen_cpu_s / res.secs * 100.0,
                res.rss_growth as f64 / 1024.0 / (2 * n) as f64,
            );
        }
    }
    let table = format!(
        "# Relay load, calls-shaped\n\n`moq-bench relay-load --calls {} --secs {secs} --mapping {mapping:?}`\n\n\
         Each call: two sessions, each publishing one 60–120-byte object every 20 ms and subscribed to the other's \
         track (PUBLISH_NAMESPACE flow, raw QUIC). Relay pinned to core 0 when taskset exists. CPU from /proc; \
         generator CPU is the bench process (all calls). See bench/RESULTS.md for the full comparison.\n\n\
         | relay | calls | objects sent | received | loss | relay CPU µs/object | p99 (ms) | relay CPU | generator CPU (% of a core) | relay RSS per session (KiB) |\n\
         |---|---|---|---|---|---|---|---|---|---|\n{rows}",
        steps.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(",")
    );
    if let Some(d) = out.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(out, &table)?;
    println!("{table}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
