//! One sample of everything the soak watches: the relay process from /proc
//! (RSS, open descriptors, threads, CPU), the relay's own gauges from its
//! `GET /metrics` (relay/src/metrics.rs: sessions, namespaces, tracks,
//! subscriptions, bytes queued to subscribers, bytes in track caches), and
//! the generator — this process, whose phones are pub-sub-audio's — by its
//! RSS, descriptors (each phone session has its own UDP socket) and live
//! tokio tasks, so a leak in the phone library shows too.

use crate::procstat::{cpu_secs, rss_bytes};
use crate::relays::Relay;

/// The relay gauges read from /metrics, by their Prometheus names.
pub const GAUGES: [&str; 6] = [
    "moq_relay_sessions",
    "moq_relay_namespaces",
    "moq_relay_tracks",
    "moq_relay_subscriptions",
    "moq_relay_queued_bytes",
    "moq_relay_cache_bytes",
];

#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Seconds since the soak started.
    pub t: f64,
    pub relay_rss: f64,
    pub relay_fds: f64,
    pub relay_threads: f64,
    pub relay_cpu_s: f64,
    /// [`GAUGES`], NaN where /metrics did not answer.
    pub gauges: [f64; 6],
    pub gen_rss: f64,
    pub gen_fds: f64,
    pub gen_tasks: f64,
    pub gen_cpu_s: f64,
    /// The load at that moment: calls running and phones registered.
    pub calls: f64,
    pub phones: f64,
    /// Asterisk (soak/pbx.rs), NaN without one: RSS, descriptors, threads, active channels.
    pub ast_rss: f64,
    pub ast_fds: f64,
    pub ast_threads: f64,
    pub ast_channels: f64,
    pub ast_cpu_s: f64,
}

/// Open file descriptors of a process (entries of /proc/PID/fd).
pub fn fds(pid: u32) -> f64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as f64).unwrap_or(f64::NAN)
}

/// Threads of a process (the `Threads:` line of /proc/PID/status).
pub fn threads(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|v| v.trim().parse().ok()).unwrap_or(f64::NAN)
}

/// A plain (unlabelled) metric's value from a Prometheus text page.
pub fn gauge(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

/// Takes one sample. The relay's descriptors and threads are read before
/// its /metrics, whose TCP connection would otherwise count as a descriptor.
pub async fn take(relay: &Relay, ast: Option<&super::pbx::Asterisk>, t: f64, calls: usize, phones: usize) -> Sample {
    let me = std::process::id();
    let mut s = Sample {
        t,
        relay_rss: rss_bytes(relay.pid) as f64,
        relay_fds: fds(relay.pid),
        relay_threads: threads(relay.pid),
        relay_cpu_s: relay.cpu_secs(),
        gauges: [f64::NAN; 6],
        gen_rss: rss_bytes(me) as f64,
        gen_fds: fds(me),
        gen_tasks: tokio::runtime::Handle::current().metrics().num_alive_tasks() as f64,
        gen_cpu_s: cpu_secs(me),
        calls: calls as f64,
        phones: phones as f64,
        ast_rss: ast.map_or(f64::NAN, |a| rss_bytes(a.pid) as f64),
        ast_fds: ast.map_or(f64::NAN, |a| fds(a.pid)),
        ast_threads: ast.map_or(f64::NAN, |a| threads(a.pid)),
        ast_channels: f64::NAN,
        ast_cpu_s: ast.map_or(f64::NAN, |a| cpu_secs(a.pid)),
    };
    if let Some(a) = ast.cloned() {
        // The CLI is a child process: off the async workers.
        s.ast_channels = tokio::task::spawn_blocking(move || a.channels()).await.unwrap_or(f64::NAN);
    }
    if let Ok(page) = crate::tokens::metrics_page(relay).await {
        for (i, name) in GAUGES.iter().enumerate() {
            s.gauges[i] = gauge(&page, name).unwrap_or(f64::NAN);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_plain_gauges_not_their_prefixes() {
        let page = "# HELP moq_relay_sessions Open.\nmoq_relay_sessions_total 9\nmoq_relay_sessions 3\nmoq_relay_tracks 0\n";
        assert_eq!(super::gauge(page, "moq_relay_sessions"), Some(3.0));
        assert_eq!(super::gauge(page, "moq_relay_tracks"), Some(0.0));
        assert_eq!(super::gauge(page, "moq_relay_cache_bytes"), None);
    }

    #[test]
    fn this_process_has_descriptors_and_threads() {
        let me = std::process::id();
        assert!(super::fds(me) >= 3.0);
        assert!(super::threads(me) >= 1.0);
        assert!(super::fds(u32::MAX).is_nan());
    }
}
