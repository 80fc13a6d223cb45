//! Load on Asterisk through chan_moq: N concurrent MoQ calls to an Echo()
//! extension, each a moq-phone playing a tone; reports Asterisk's CPU per
//! MOQ leg. Run inside the harness's network namespace by bench/pbx-legs.sh,
//! once with `codecs = slin48` (chan_moq transcodes Opus itself) and once
//! with `codecs = opus` (Opus passes through chan_moq and Echo() untouched).

use crate::procstat::{cpu_secs, rss_bytes};
use pub_sub_audio::call::{Address, Timers, UserAction};
use pub_sub_audio::phone::media::MediaConfig;
use pub_sub_audio::phone::{Phone, PhoneConfig, Progress};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub struct LegsResult {
    pub calls: usize,
    pub established: usize,
    pub asterisk_cpu_s: f64,
    pub gen_cpu_s: f64,
    pub secs: f64,
    pub asterisk_rss: u64,
}

/// Places `n` calls to `to`, holds them for `secs`, hangs up.
pub async fn run(url: &url::Url, to: &str, n: usize, secs: u64, asterisk: u32) -> anyhow::Result<LegsResult> {
    let mut users = Vec::new();
    let mut established = Vec::new();
    for i in 0..n {
        let cfg = PhoneConfig {
            url: url.clone(),
            tls: moq_client::Tls::DisableVerify,
            user: format!("load{i}"),
            device: "d".into(),
            display: format!("load {i}"),
            timers: Timers::default(),
            token: None,
        };
        let (phone, _rings) = Phone::register(cfg).await?;
        let (act_tx, act_rx) = mpsc::unbounded_channel();
        let (rep_tx, mut rep_rx) = mpsc::unbounded_channel::<Progress>();
        let (up_tx, up_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let mut up = Some(up_tx);
            while let Some(p) = rep_rx.recv().await {
                if matches!(p, Progress::Established { .. }) {
                    if let Some(t) = up.take() {
                        let _ = t.send(());
                    }
                }
            }
        });
        let to = Address::parse(to)?;
        let play = crate::tone(440.0 + i as f32, secs + 30);
        tokio::spawn(async move { phone.call(&to, MediaConfig { play, ..Default::default() }, act_rx, rep_tx).await });
        users.push(act_tx);
        established.push(up_rx);
    }
    let mut up = 0;
    for e in established {
        if tokio::time::timeout(Duration::from_secs(20), e).await.is_ok_and(|r| r.is_ok()) {
            up += 1;
        }
    }
    // Let every leg settle into steady state before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (a0, g0, t0) = (cpu_secs(asterisk), cpu_secs(std::process::id()), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (a1, g1, t1) = (cpu_secs(asterisk), cpu_secs(std::process::id()), Instant::now());
    let rss = rss_bytes(asterisk);
    for u in &users {
        let _ = u.send(UserAction::Hangup);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(LegsResult {
        calls: n,
        established: up,
        asterisk_cpu_s: a1 - a0,
        gen_cpu_s: g1 - g0,
        secs: (t1 - t0).as_secs_f64(),
        asterisk_rss: rss,
    })
}

/// One markdown table row.
pub fn row(codec: &str, r: &LegsResult) -> String {
    let per_leg = r.asterisk_cpu_s / r.secs / r.established.max(1) as f64;
    format!(
        "| {codec} | {} | {} | {:.1} | {:.2} | {:.0} | {:.1} | {:.0} |\n",
        r.calls,
        r.established,
        100.0 * r.asterisk_cpu_s / r.secs,
        100.0 * per_leg,
        1e6 * per_leg / 50.0,
        100.0 * r.gen_cpu_s / r.secs,
        r.asterisk_rss as f64 / 1048576.0,
    )
}
