//! Access tokens in the comparison (issue 13): our relay once more with
//! `--auth-key`, its clients presenting a token, side by side with it open.
//! Token work happens when a session is set up and at each request
//! (SUBSCRIBE, PUBLISH_NAMESPACE, ...); forwarding objects involves none, so
//! relay CPU per forwarded object should not move. This module provisions
//! the key and token with the relay binary's own commands and judges the
//! paired steps (same load, same N, tokens on vs off).

use crate::compare::Outcome;
use crate::load::LoadResult;
use crate::relays::{Kind, Relay};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a tokens-on relay is started with and its clients present.
#[derive(Debug, Clone)]
pub struct Issued {
    /// For `--auth-key`.
    pub public_key: PathBuf,
    /// The token, raw (base64url-decoded), for SETUP's AUTHORIZATION TOKEN.
    pub token: Vec<u8>,
}

/// The user the bench's token is minted for (`--scope any`: every action on
/// every namespace, so one token serves every load client).
pub const USER: &str = "bench";

fn relay_cli(bin: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(bin).args(args).output().map_err(|e| anyhow::anyhow!("running {} {args:?}: {e}", bin.display()))?;
    anyhow::ensure!(out.status.success(), "{} {args:?} failed: {}", bin.display(), String::from_utf8_lossy(&out.stderr).trim());
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A fresh key pair in `dir` (`moq-relay keygen`) and one `--scope any`
/// token for [`USER`] (`moq-relay token`), valid 12 h — longer than any run.
pub fn issue(bin: &Path, dir: &Path) -> anyhow::Result<Issued> {
    std::fs::create_dir_all(dir)?;
    let key = dir.join("issuer.key.pem");
    let public_key = key.with_extension("pub.pem");
    for f in [&key, &public_key] {
        let _ = std::fs::remove_file(f);
    }
    let k = key.display().to_string();
    relay_cli(bin, &["keygen", "--out", &k])?;
    anyhow::ensure!(public_key.exists(), "`moq-relay keygen` wrote no {}", public_key.display());
    let text = relay_cli(bin, &["token", "--key", &k, "--user", USER, "--ttl", "12h", "--scope", "any"])?;
    let token = text.lines().rev().find_map(moq_client::token_from_text);
    let token = token.ok_or_else(|| anyhow::anyhow!("`moq-relay token` printed no token: {text:?}"))?;
    Ok(Issued { public_key, token })
}

/// What the tokens-on relays counted (their `/metrics`), summed over the
/// calls and fan-out steps: sessions by token verdict at SETUP, requests
/// refused by scope or policy; and whether a session without a token was
/// refused (the probe stage).
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub sessions: BTreeMap<String, u64>,
    pub denied: u64,
    /// Steps whose counters could not be read.
    pub unread: usize,
    pub tokenless: Option<Result<String, String>>,
}

/// Sums `name{label="x"} v` lines of a Prometheus text page by label value.
fn counters(page: &str, name: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in page.lines().filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{')) {
        let Some((labels, value)) = line[name.len()..].rsplit_once(' ') else { continue };
        let label = labels.split('"').nth(1).unwrap_or("").to_string();
        *out.entry(label).or_default() += value.trim().parse::<f64>().unwrap_or(0.0) as u64;
    }
    out
}

impl Checked {
    /// Adds one relay's counters (`GET /metrics` over plain HTTP on its port).
    pub async fn scrape(&mut self, relay: &Relay) {
        match metrics_page(relay).await {
            Ok(page) => {
                for (k, v) in counters(&page, "moq_relay_auth_sessions_total") {
                    *self.sessions.entry(k).or_default() += v;
                }
                self.denied += counters(&page, "moq_relay_auth_requests_denied_total").values().sum::<u64>();
            }
            Err(_) => self.unread += 1,
        }
    }

    fn describe(&self) -> String {
        let sessions = self.sessions.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ");
        let mut s = format!(
            "the tokens-on relays' own counters (`/metrics`, calls and fan-out steps): sessions by token verdict at SETUP: {}; requests refused by scope or policy: {}",
            if sessions.is_empty() { "none counted".into() } else { sessions },
            self.denied
        );
        if self.unread > 0 {
            s += &format!(" ({} steps not read)", self.unread);
        }
        match &self.tokenless {
            Some(Ok(why)) => s += &format!("; a session without a token was refused ({why})"),
            Some(Err(e)) => s += &format!("; **a session without a token was not refused** ({e})"),
            None => {}
        }
        s
    }
}

pub async fn metrics_page(relay: &Relay) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = relay.url.host_str().unwrap_or("127.0.0.1");
    let port = relay.url.port().unwrap_or(4443);
    let io = async {
        let mut tcp = tokio::net::TcpStream::connect((host, port)).await?;
        tcp.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes()).await?;
        let mut page = String::new();
        tcp.read_to_string(&mut page).await?;
        anyhow::Ok(page)
    };
    let page = tokio::time::timeout(std::time::Duration::from_secs(5), io).await??;
    anyhow::ensure!(
        page.starts_with("HTTP/1.") && page.split_whitespace().nth(1) == Some("200"),
        "GET /metrics: {}",
        page.lines().next().unwrap_or("")
    );
    Ok(page)
}

/// Whether the relay refuses a session that presents no token.
pub async fn refuses_tokenless(relay: &Relay) -> Result<String, String> {
    let bare = crate::relays::Dial { url: relay.url.clone(), token: None };
    match bare.connect().await {
        Ok(s) => match s.publish_namespace(&moq_wire::coding::TrackNamespace::from_utf8_path("bench/tokenless")).await {
            Ok(_) => Err("admitted, and its PUBLISH_NAMESPACE accepted".into()),
            Err(e) => Ok(format!("its first request failed: {e}")),
        },
        Err(e) => Ok(format!("at SETUP: {e:#}")),
    }
}

/// One paired step: relay CPU µs per forwarded object, tokens off and on.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// "N=25" (calls) or "1→10" (fan-out).
    pub step: String,
    pub off: f64,
    pub on: f64,
}

impl Pair {
    /// Tokens on ÷ off.
    pub fn ratio(&self) -> f64 {
        self.on / self.off
    }
}

/// A step counts when every session of it was set up on both relays and
/// objects arrived (CPU per object means something).
fn usable(r: &LoadResult) -> bool {
    r.ready == r.wanted && r.received > 0 && r.relay_cpu_s > 0.0
}

fn paired(off: &[(usize, LoadResult)], on: &[(usize, LoadResult)], label: impl Fn(usize) -> String) -> Vec<Pair> {
    on.iter()
        .filter_map(|(n, b)| {
            let (_, a) = off.iter().find(|(m, _)| m == n)?;
            (usable(a) && usable(b)).then(|| Pair { step: label(*n), off: a.us_per_obj(), on: b.us_per_obj() })
        })
        .collect()
}

/// The paired steps of the calls and the fan-out load, if both our relays ran.
pub fn pairs(o: &Outcome) -> Option<(Vec<Pair>, Vec<Pair>)> {
    let off = o.relays.iter().position(|r| r.kind == Kind::Ours)?;
    let on = o.relays.iter().position(|r| r.kind == Kind::OursAuth)?;
    Some((paired(&o.calls[off], &o.calls[on], |n| format!("N={n}")), paired(&o.fanout[off], &o.fanout[on], |k| format!("1→{k}"))))
}

/// Two-sided 95 % Student t quantile for `df` degrees of freedom.
fn t95(df: usize) -> f64 {
    const T: [f64; 10] = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];
    match df {
        0 => f64::INFINITY,
        1..=10 => T[df - 1],
        11..=20 => 2.2,
        21..=40 => 2.06,
        _ => 2.0,
    }
}

/// Mean relative difference (on ÷ off − 1) over the steps and the half
/// width of its 95 % confidence interval (paired t; infinite for one step).
pub fn mean_diff(pairs: &[Pair]) -> Option<(f64, f64)> {
    let d: Vec<f64> = pairs.iter().map(|p| p.ratio() - 1.0).filter(|d| d.is_finite()).collect();
    if d.is_empty() {
        return None;
    }
    let k = d.len() as f64;
    let mean = d.iter().sum::<f64>() / k;
    if d.len() < 2 {
        return Some((mean, f64::INFINITY));
    }
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (k - 1.0);
    Some((mean, t95(d.len() - 1) * (var / k).sqrt()))
}

fn signed_pct(x: f64) -> String {
    format!("{}{:.1} %", if x >= 0.0 { "+" } else { "−" }, (x * 100.0).abs())
}

/// The verdict on the paired steps: within noise when the 95 % interval of
/// the mean difference holds zero.
pub fn verdict(pairs: &[Pair]) -> String {
    let Some((mean, half)) = mean_diff(pairs) else { return "no paired steps to compare".into() };
    let k = pairs.len();
    if !half.is_finite() {
        return format!("{} difference on the one paired step (noise not estimated: one step)", signed_pct(mean));
    }
    let range = format!("95 % interval {} … {}, {k} paired steps", signed_pct(mean - half), signed_pct(mean + half));
    if (mean - half) <= 0.0 && 0.0 <= (mean + half) {
        format!("**within noise**: {} mean difference with tokens ({range})", signed_pct(mean))
    } else if mean > 0.0 {
        format!("**measurable**: {} CPU per object with tokens ({range})", signed_pct(mean))
    } else {
        format!("**measurable, but lower with tokens**: {} ({range}) — not token work; look for drift between runs", signed_pct(mean))
    }
}

/// The summary line of RESULTS.md, if both our relays ran.
pub fn summary(o: &Outcome) -> Option<String> {
    let (calls, fan) = pairs(o)?;
    let list =
        |v: &[Pair]| v.iter().map(|p| format!("{} {:.1} vs {:.1} ({:.2}×)", p.step, p.on, p.off, p.ratio())).collect::<Vec<_>>().join(", ");
    let all: Vec<Pair> = calls.iter().chain(&fan).cloned().collect();
    let mut s = String::from(
        "**Token checks (issue 13)** — relay CPU per 1,000 forwarded objects (ms), our relay with tokens (`ours+auth`) vs \
         without (`ours`), same load, run one after the other at each step (ratio: with ÷ without):\n\n",
    );
    if !calls.is_empty() {
        s += &format!("- calls: {}\n", list(&calls));
    }
    if !fan.is_empty() {
        s += &format!("- fan-out: {}\n", list(&fan));
    }
    s += &format!("- verdict, calls: {}\n", verdict(&calls));
    if !fan.is_empty() {
        s += &format!("- verdict, calls and fan-out: {}\n", verdict(&all));
    }
    s += &format!("- tokens were in force: {}\n", o.checked.describe());
    Some(s)
}

/// How the tokens-on relay ran, for the Relays paragraph.
pub const DESCRIBE: &str = "`ours+auth` is the same moq-relay binary started with `--auth-key` (a key pair from its own \
    `keygen`); every load and probe session presents one `--scope any` token from its `token` command in SETUP's \
    AUTHORIZATION TOKEN, so SETUP and every request (PUBLISH_NAMESPACE, SUBSCRIBE, ...) are checked against the token. It \
    runs the probes, the calls and the fan-out (the per-object load), not the call-setup storm: the storm's phones register \
    as many users, which the call policy would hold to one token each, and the storm measures setup, not forwarding";

#[cfg(test)]
mod tests {
    use super::*;

    fn p(off: f64, on: f64) -> Pair {
        Pair { step: "N=1".into(), off, on }
    }

    #[test]
    fn noise_decides_the_verdict() {
        // Scattered both ways around equal: within noise.
        let v = [p(10.0, 10.2), p(10.0, 9.9), p(20.0, 20.1), p(15.0, 14.9)];
        assert!(verdict(&v).starts_with("**within noise**"), "{}", verdict(&v));
        // Consistently 10 % more: measurable.
        let v = [p(10.0, 11.0), p(10.0, 11.02), p(20.0, 21.95), p(15.0, 16.5)];
        assert!(verdict(&v).starts_with("**measurable**: +10."), "{}", verdict(&v));
        assert!(verdict(&[p(10.0, 10.5)]).contains("one step"));
        assert_eq!(verdict(&[]), "no paired steps to compare");
    }

    #[test]
    fn metrics_counters_sum_by_label() {
        let page = "# HELP x\nmoq_relay_auth_sessions_total{result=\"granted\"} 12\nmoq_relay_auth_sessions_total{result=\"missing\"} 1\n\
                    moq_relay_auth_sessions_total_other{result=\"granted\"} 5\nmoq_relay_auth_requests_denied_total{reason=\"scope\"} 0\n";
        let c = counters(page, "moq_relay_auth_sessions_total");
        assert_eq!(c.get("granted"), Some(&12));
        assert_eq!(c.get("missing"), Some(&1));
        assert_eq!(c.len(), 2);
        assert_eq!(counters(page, "moq_relay_auth_requests_denied_total").values().sum::<u64>(), 0);
    }

    #[test]
    fn mean_difference_and_interval() {
        let (m, h) = mean_diff(&[p(10.0, 11.0), p(10.0, 9.0)]).unwrap();
        assert!(m.abs() < 1e-12);
        // sd of (+0.1, −0.1) is 0.1414; se 0.1; t(1) 12.706.
        assert!((h - 1.2706).abs() < 1e-3, "{h}");
    }
}
