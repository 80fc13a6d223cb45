//! The PBX part of the soak (`bench/soak --pbx`): chan_moq inside a real
//! Asterisk 22 (the chan_moq test harness's chroot and network namespace),
//! registered on the soak's relay as user `pbx`. Besides the phone ↔ phone
//! churn, phones of the same pool keep `--pbx-calls` calls up to it: half to
//! extension 100 (`Answer(), Echo()`: the phone hangs up), half to 101
//! (`Echo()` under `TIMEOUT(absolute)`: Asterisk hangs up), with the same
//! DTMF and hold/unhold plans. Asterisk's RSS, descriptors, threads and
//! channel count are sampled beside the relay's; after the drain no channel
//! may be left (a stuck channel is the PBX-side leak this is for).

use super::calls::{Ctx, Plan, Side, SideLog, CONNECT_WITHIN};
use crate::phones::{await_connect, live_port};
use pub_sub_audio::call::{Address, EndReason, UserAction};
use pub_sub_audio::phone::media::MediaConfig;
use pub_sub_audio::phone::{Phone, Progress};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The dialplan bench/soak gives context `[moq-test]`: 101 ends itself
/// after this many seconds.
pub const PBX_HANGS_UP_AFTER: u64 = 8;

/// The Asterisk under test: its process and how to reach its CLI.
#[derive(Debug, Clone)]
pub struct Asterisk {
    pub pid: u32,
    /// A command that runs one CLI line given as its last argument
    /// (`chan_moq/harness/asterisk.sh cli`).
    pub cli: Vec<String>,
    /// Where its moq.conf lives (the harness's etc directory).
    pub etc: PathBuf,
}

impl Asterisk {
    /// Runs one CLI line; its output, empty if the CLI could not run.
    pub fn cli(&self, line: &str) -> String {
        let Some((prog, args)) = self.cli.split_first() else { return String::new() };
        Command::new(prog).args(args).arg(line).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
    }

    /// Active channels (`core show channels count`: "N active channels"), NaN if unreadable.
    pub fn channels(&self) -> f64 {
        parse_channels(&self.cli("core show channels count")).unwrap_or(f64::NAN)
    }

    /// Points chan_moq at `relay` (moq.conf, `module reload`) and waits
    /// until it says it is registered.
    pub async fn register_on(&self, relay: &url::Url) -> anyhow::Result<()> {
        let port = relay.port().unwrap_or(4443);
        let conf = format!("[general]\nrelay = moqt://127.0.0.1:{port}\ninsecure = yes\ncontext = moq-test\ncodecs = slin48\n");
        std::fs::write(self.etc.join("moq.conf"), conf)?;
        self.cli("module reload chan_moq.so");
        for _ in 0..200 {
            if self.cli("moq show status").contains("Registered:   yes") {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("chan_moq did not register on {relay} within 20 s: `moq show status` says {:?}", self.cli("moq show status"))
    }
}

/// "3 active channels" → 3.
fn parse_channels(out: &str) -> Option<f64> {
    out.lines()
        .find_map(|l| l.trim().strip_suffix(" active channels").or_else(|| l.trim().strip_suffix(" active channel"))?.trim().parse().ok())
}

/// A call from `caller` (reserved in the pool) to `pbx/<ext>`: connected
/// (heard) within the bound, the plan's DTMF and hold keyed, ended by the
/// side the extension implies — the phone for 100, Asterisk for 101.
pub async fn place(ctx: Arc<Ctx>, (ci, caller): (usize, Phone), ext: u16, plan: Plan) {
    ctx.pbx_live.fetch_add(1, Ordering::Relaxed);
    ctx.tally().pbx_placed += 1;
    let (act_tx, act_rx) = mpsc::unbounded_channel();
    let (rep_tx, mut rep_rx) = mpsc::unbounded_channel::<Progress>();
    let (live, mut heard) = live_port();
    let media = MediaConfig { live: Some(live), mapping: ctx.mapping, ..Default::default() };
    let to = Address::parse(&format!("pbx/{ext}")).expect("a valid address");
    let t0 = Instant::now();
    let call = tokio::spawn(async move { caller.call(&to, media, act_rx, rep_tx).await });
    let c = await_connect(&mut rep_rx, &mut heard, t0, CONNECT_WITHIN).await;
    tokio::spawn(async move { while heard.recv().await.is_some() {} });
    let problem = match c.failure(CONNECT_WITHIN) {
        Some(why) => {
            *ctx.tally().pbx_failed.entry(why).or_default() += 1;
            let _ = act_tx.send(UserAction::Hangup);
            None
        }
        None => {
            ctx.tally().pbx_connected += 1;
            // Echo() never hangs up: the phone ends a call to 100; Asterisk's side of 101 ends it.
            let plan = if ext == 101 {
                Plan { hold: Duration::from_secs(PBX_HANGS_UP_AFTER * 3), hangup: Side::Callee, ..plan }
            } else {
                Plan { hangup: Side::Caller, ..plan }
            };
            // Echo() ends on '#' (app_echo), and the dialplan would hang up: keyed as '*' here.
            let plan =
                Plan { dtmf: plan.dtmf.map(|(side, d)| (side, d.into_iter().map(|c| if c == '#' { '*' } else { c }).collect())), ..plan };
            let mut log = SideLog { established: true, ..Default::default() };
            super::calls::follow(Side::Caller, &plan, &act_tx, &mut rep_rx, &mut log).await;
            let want = EndReason::Hangup { by_peer: ext == 101 };
            (log.ended.as_ref() != Some(&want)).then(|| {
                let describe = |r: &EndReason| pub_sub_audio::phone::driver::describe(r);
                format!(
                    "pbx/{ext}: ended {} instead of {}",
                    log.ended.as_ref().map(describe).unwrap_or_else(|| "still up".into()),
                    describe(&want)
                )
            })
        }
    };
    drop(act_tx);
    let _ = tokio::time::timeout(Duration::from_secs(10), call).await;
    {
        let mut t = ctx.tally();
        match problem {
            Some(p) => *t.troubled.entry(p).or_default() += 1,
            None if c.failure(CONNECT_WITHIN).is_none() => t.pbx_ended_clean += 1,
            None => {}
        }
    }
    ctx.release(&[ci]);
    ctx.pbx_live.fetch_sub(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::parse_channels;

    #[test]
    fn channel_counts_are_read_from_the_cli() {
        assert_eq!(parse_channels("3 active channels\n2 active calls\n17 calls processed\n"), Some(3.0));
        assert_eq!(parse_channels("1 active channel\n1 active call\n"), Some(1.0));
        assert_eq!(parse_channels("Unable to connect to remote asterisk\n"), None);
    }
}
