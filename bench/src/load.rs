//! Calls-shaped relay load: N concurrent 1:1 "calls", each party publishing
//! one 80-byte object every 20 ms (an Opus frame) and subscribed to the
//! other's. Reports the relay's CPU per forwarded object and RSS, read from
//! /proc of the relay process, and the generator's own CPU.

use bytes::Bytes;
use moq_interop::{Client, DatagramSpec, Session, SubscribeParams, Tls, TrackPublisher};
use moq_transport::coding::TrackNamespace;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mapping {
    Datagram,
    Stream,
}

/// CPU seconds (user + system) of a process, from /proc/PID/stat.
pub fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

pub fn rss_bytes(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 4096
}

pub struct LoadResult {
    pub sent: u64,
    pub received: u64,
    pub relay_cpu_s: f64,
    pub gen_cpu_s: f64,
    pub secs: f64,
    pub rss_bytes: u64,
}

struct Party {
    publisher: Arc<TrackPublisher>,
}

async fn setup_call(url: &url::Url, i: usize, received: Arc<AtomicU64>) -> anyhow::Result<(Vec<Session>, Vec<Party>)> {
    let tls = Tls::DisableVerify;
    let a = Client::connect(url, &tls).await?;
    let b = Client::connect(url, &tls).await?;
    let run = std::process::id();
    let ns = |side: &str| TrackNamespace::from_utf8_path(&format!("load/{run}/{i}/{side}"));
    let _ha = a.publish_namespace(&ns("a")).await?;
    let _hb = b.publish_namespace(&ns("b")).await?;
    std::mem::forget((_ha, _hb));
    let mut parties = Vec::new();
    for (sub, publ, side) in [(&b, &a, "a"), (&a, &b, "b")] {
        let track_ns = ns(side);
        let accept = async {
            let incoming = publ.accept_subscribe(Duration::from_secs(10)).await?;
            incoming.accept(1).await
        };
        let (s, publisher) = tokio::join!(sub.subscribe(&track_ns, "audio", SubscribeParams::new()), accept);
        let publisher = publisher?;
        let mut s = s?;
        let received = received.clone();
        tokio::spawn(async move {
            while s.next_object(Duration::from_secs(3600)).await.is_ok() {
                received.fetch_add(1, Ordering::Relaxed);
            }
        });
        parties.push(Party { publisher: Arc::new(publisher) });
    }
    Ok((vec![a, b], parties))
}

pub async fn run(url: &url::Url, relay_pid: u32, calls: usize, secs: u64, mapping: Mapping) -> anyhow::Result<LoadResult> {
    let received = Arc::new(AtomicU64::new(0));
    let mut sessions = Vec::new();
    let mut parties = Vec::new();
    for i in 0..calls {
        let (s, p) = setup_call(url, i, received.clone()).await?;
        sessions.extend(s);
        parties.extend(p);
    }
    let payload = Bytes::from(vec![0x5a; 80]);
    // Warm-up second, then measure.
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut frame = 0u64;
    let send_round = |frame: u64| {
        let parties = &parties;
        let payload = payload.clone();
        async move {
            for p in parties {
                match mapping {
                    Mapping::Datagram => {
                        let _ = p.publisher.send_datagram(&DatagramSpec::new(frame / 50, frame % 50, payload.clone()));
                    }
                    Mapping::Stream => {
                        let _ = p.publisher.send_group(frame, std::slice::from_ref(&payload)).await;
                    }
                }
            }
        }
    };
    for _ in 0..50 {
        tick.tick().await;
        send_round(frame).await;
        frame += 1;
    }
    let (r0, c0, g0, t0) = (received.load(Ordering::Relaxed), cpu_secs(relay_pid), cpu_secs(std::process::id()), Instant::now());
    let rounds = secs * 50;
    for _ in 0..rounds {
        tick.tick().await;
        send_round(frame).await;
        frame += 1;
    }
    // Let the last objects arrive.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let result = LoadResult {
        sent: rounds * parties.len() as u64,
        received: received.load(Ordering::Relaxed) - r0,
        relay_cpu_s: cpu_secs(relay_pid) - c0,
        gen_cpu_s: cpu_secs(std::process::id()) - g0,
        secs: t0.elapsed().as_secs_f64(),
        rss_bytes: rss_bytes(relay_pid),
    };
    drop(sessions);
    Ok(result)
}
