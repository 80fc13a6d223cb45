//! `moq-bench compare`: the same load against each relay in turn
//! (alternating at every step; ours with tokens on right after ours), relay
//! pinned to one CPU, this generator to another; stepping N up until a relay
//! saturates. The results go to [`crate::report`].

use crate::load::{self, LoadResult, Mapping};
use crate::relays::{Kind, Relay, RelayBin};
use crate::storm::{self, StormResult};
use crate::verdict::saturated;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Concurrent 1:1 calls per step.
    #[arg(long, value_delimiter = ',', default_value = "25,50,75,100,150,200,300,400")]
    pub calls: Vec<usize>,
    /// Fan-out steps: subscribers of one publisher.
    #[arg(long, value_delimiter = ',', default_value = "10,50,100,200")]
    pub fanout: Vec<usize>,
    /// Call-setup storm steps: new calls per second.
    #[arg(long, value_delimiter = ',', default_value = "5,10,20,40")]
    pub storm: Vec<f64>,
    /// Seconds of each storm step.
    #[arg(long, default_value_t = 6)]
    pub storm_secs: u64,
    /// Seconds a storm call is held after its first audio.
    #[arg(long, default_value_t = 2)]
    pub hold_secs: u64,
    /// Measured seconds per load step (after 1 s of warm-up).
    #[arg(long, default_value_t = 8)]
    pub secs: u64,
    /// Object mapping of the calls and fan-out load. The default, one
    /// datagram per group, is the datagram mapping all three relays forward
    /// whole (moq-dev's forwards only the first datagram of a group).
    #[arg(long, value_enum, default_value = "datagram-group")]
    pub mapping: Mapping,
    /// Our relay (default: moq-relay next to this binary).
    #[arg(long)]
    pub ours: Option<PathBuf>,
    /// Leave out our relay with access tokens on (`ours+auth`: started with
    /// `--auth-key`, every client presenting a token; calls and fan-out only).
    #[arg(long)]
    pub no_tokens: bool,
    /// Cloudflare's moq-relay-ietf 0.8.0 ("none" to leave it out).
    #[arg(long, default_value = "target/peers/bin/moq-relay-ietf")]
    pub ietf: PathBuf,
    /// moq-dev's moq-relay 0.17.10 ("none" to leave it out).
    #[arg(long, default_value = "target/peers/bin/moq-relay-dev")]
    pub dev: PathBuf,
    /// CPU the relays are pinned to (taskset); pin the generator yourself.
    #[arg(long, default_value_t = 0)]
    pub relay_cpu: usize,
    /// Output directory: RESULTS.md and the PNG plots.
    #[arg(long, default_value = "bench")]
    pub out: PathBuf,
    /// What else the machine was doing (bench/run fills this in).
    #[arg(long, default_value = "")]
    pub machine: String,
}

#[derive(Default)]
pub struct Outcome {
    pub relays: Vec<RelayBin>,
    /// Per relay: (N, result) for each step run.
    pub calls: Vec<Vec<(usize, LoadResult)>>,
    pub fanout: Vec<Vec<(usize, LoadResult)>>,
    pub storm: Vec<Vec<StormResult>>,
    /// Per relay: the draft-18 flow probes.
    pub probes: Vec<Vec<crate::probe::Probe>>,
    /// Per relay: why it stopped stepping (saturation, failure).
    pub stopped: Vec<Vec<String>>,
    /// What the tokens-on relays counted.
    pub checked: crate::tokens::Checked,
    pub minutes: f64,
}

fn progress(done: usize, total: usize, t0: Instant, what: &str) {
    let el = t0.elapsed().as_secs_f64();
    let eta = if done > 0 { el / done as f64 * (total - done) as f64 } else { f64::NAN };
    eprintln!("[{done:>2}/{total}] {:>4.0}s elapsed, ~{:>4.0}s left | {what}", el, eta);
}

pub async fn run(a: CompareArgs) -> anyhow::Result<Outcome> {
    let ours = match &a.ours {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("moq-relay"),
    };
    anyhow::ensure!(ours.exists(), "{} not found: build moq-relay (release) first", ours.display());
    let dir = std::env::temp_dir().join(format!("moq-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut relays = vec![RelayBin::new(Kind::Ours, ours.clone())];
    if !a.no_tokens {
        relays.push(RelayBin::with_tokens(ours, &dir.join("issuer"))?);
    }
    for (kind, p) in [(Kind::Ietf, &a.ietf), (Kind::Dev, &a.dev)] {
        if p.as_os_str() == "none" {
            continue;
        }
        anyhow::ensure!(p.exists(), "{} not found: run bench/peers.sh (or pass `none` to leave it out)", p.display());
        relays.push(RelayBin::new(kind, p.clone()));
    }
    let nr = relays.len();
    let mut o = Outcome {
        relays: relays.clone(),
        calls: vec![Vec::new(); nr],
        fanout: vec![Vec::new(); nr],
        storm: vec![Vec::new(); nr],
        stopped: vec![Vec::new(); nr],
        ..Default::default()
    };
    // The tokens-on relay is not stormed (why: crate::tokens::DESCRIBE).
    let stormed = |r: &RelayBin| r.kind != Kind::OursAuth;
    for (i, r) in relays.iter().enumerate().filter(|(_, r)| !stormed(r)) {
        o.stopped[i].push(format!("storm: not run for {} (calls and fan-out only)", r.short()));
    }
    let ns = relays.iter().filter(|r| stormed(r)).count();
    let total = nr * (a.calls.len() + a.fanout.len()) + ns * 2 * a.storm.len();
    let (t0, mut done) = (Instant::now(), 0usize);
    let cpu = Some(a.relay_cpu);

    // 0. Which draft-18 flows each relay handles.
    for r in &relays {
        eprintln!("[probe] draft-18 flows on {}", r.name);
        let relay = Relay::start(r, &dir, cpu).await?;
        let p = crate::probe::run(&relay).await;
        if r.kind == Kind::OursAuth {
            let refused = crate::tokens::refuses_tokenless(&relay).await;
            eprintln!(
                "        session without a token: {}",
                refused.as_ref().map_or_else(|e| format!("NOT REFUSED ({e})"), |w| format!("refused ({w})"))
            );
            o.checked.tokenless = Some(refused);
        }
        for x in &p {
            eprintln!(
                "        {}: {}",
                x.name,
                match &x.result {
                    Ok(s) => format!("ok ({s})"),
                    Err(e) => format!("FAILED ({e})"),
                }
            );
        }
        o.probes.push(p);
    }

    // 1. N concurrent calls, alternating relays at each N.
    let mut stop = vec![false; nr];
    for &n in &a.calls {
        for (i, r) in relays.iter().enumerate() {
            done += 1;
            if stop[i] {
                continue;
            }
            progress(done, total, t0, &format!("calls N={n} on {}", r.name));
            let relay = Relay::start(r, &dir, cpu).await?;
            let res = load::calls(&relay, n, a.secs, a.mapping).await;
            if r.kind == Kind::OursAuth {
                o.checked.scrape(&relay).await;
            }
            drop(relay);
            eprintln!("        {}", crate::verdict::load_line(&res));
            if res.ready == 0 {
                stop[i] = true;
                o.stopped[i].push(format!("calls: no call could be set up at N={n}: {}", res.setup_error.clone().unwrap_or_default()));
            } else if saturated(&res) {
                stop[i] = true;
                o.stopped[i].push(format!("calls: saturated at N={n} ({})", crate::verdict::why_saturated(&res)));
            }
            o.calls[i].push((n, res));
            // Let the kernel drop the closed sockets' state between steps.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    // 2. Fan-out: one publisher, K subscribers.
    let mut stop = vec![false; nr];
    for &k in &a.fanout {
        for (i, r) in relays.iter().enumerate() {
            done += 1;
            if stop[i] {
                continue;
            }
            progress(done, total, t0, &format!("fan-out 1→{k} on {}", r.name));
            let relay = Relay::start(r, &dir, cpu).await?;
            let res = load::fanout(&relay, k, a.secs, a.mapping).await;
            if r.kind == Kind::OursAuth {
                o.checked.scrape(&relay).await;
            }
            drop(relay);
            eprintln!("        {}", crate::verdict::load_line(&res));
            if res.ready == 0 || saturated(&res) {
                stop[i] = true;
                o.stopped[i].push(format!("fan-out: stopped at K={k} ({})", crate::verdict::why_saturated(&res)));
            }
            o.fanout[i].push((k, res));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    // 3. Call-setup storm with the Phone API: the phones' datagram audio,
    // then one stream per frame (what moq-dev's relay forwards whole).
    for streams in [false, true] {
        let mut stop = vec![false; nr];
        for &rate in &a.storm {
            for (i, r) in relays.iter().enumerate().filter(|(_, r)| stormed(r)) {
                done += 1;
                if stop[i] {
                    continue;
                }
                let m = if streams { "stream" } else { "datagram" };
                progress(done, total, t0, &format!("storm {rate} calls/s for {} s ({m} audio) on {}", a.storm_secs, r.name));
                let relay = Relay::start(r, &dir, cpu).await?;
                let res = storm::run(&relay, rate, a.storm_secs, Duration::from_secs(a.hold_secs), streams).await;
                drop(relay);
                eprintln!("        {}", crate::verdict::storm_line(&res));
                if res.ok * 10 < res.attempted * 9 {
                    stop[i] = true;
                    o.stopped[i].push(format!("storm ({m} audio): under 90 % of calls worked at {rate}/s"));
                }
                o.storm[i].push(res);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    o.minutes = t0.elapsed().as_secs_f64() / 60.0;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(o)
}
