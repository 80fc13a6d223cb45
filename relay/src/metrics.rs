//! Relay counters, exposed at `GET /metrics` in the Prometheus text format.
//!
//! Plain atomics updated on the data path (one relaxed add per object); the
//! exposition is rendered on demand. The text format is a handful of lines, so
//! no metrics framework sits on the hot path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    pub sessions: AtomicU64,
    pub sessions_total: AtomicU64,
    pub namespaces: AtomicU64,
    pub tracks: AtomicU64,
    pub subscriptions: AtomicU64,
    pub objects_in: AtomicU64,
    pub objects_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Downstream streams reset because their subscriber fell behind.
    pub dropped: AtomicU64,
    /// Objects evicted from subscriber queues (shared with every `Outbound`).
    pub evicted: std::sync::Arc<AtomicU64>,
    requests: Mutex<BTreeMap<&'static str, u64>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Token verdicts: sessions admitted / refused by reason, and refused requests.
    auth: Mutex<BTreeMap<&'static str, u64>>,
    denied: Mutex<BTreeMap<&'static str, u64>>,
    /// Requests refused for a per-session limit, by limit.
    limits: Mutex<BTreeMap<&'static str, u64>>,
    /// `POST /login` answers, by result.
    logins: Mutex<BTreeMap<&'static str, u64>>,
    /// WebRTC gateway (issue 14): browsers on it now, `POST /webrtc` answers
    /// by result, peers dropped for ICE that never came up, MoQ sessions
    /// started over data channels, RTP packets each way.
    pub webrtc_peers: AtomicU64,
    webrtc_offers: Mutex<BTreeMap<&'static str, u64>>,
    pub webrtc_ice_timeouts: AtomicU64,
    pub webrtc_sessions: AtomicU64,
    pub webrtc_rtp_in: AtomicU64,
    pub webrtc_rtp_out: AtomicU64,
}

/// Extra gauges computed at scrape time.
pub struct Snapshot {
    pub queued_bytes: u64,
    pub cache_bytes: u64,
    pub rss_bytes: Option<u64>,
}

impl Metrics {
    pub fn error(&self, code: &'static str) {
        *self.errors.lock().unwrap_or_else(|e| e.into_inner()).entry(code).or_default() += 1;
    }

    pub fn request(&self, kind: &'static str) {
        *self.requests.lock().unwrap_or_else(|e| e.into_inner()).entry(kind).or_default() += 1;
    }

    /// A session's token verdict at SETUP ("granted" or a refusal label).
    pub fn auth(&self, result: &'static str) {
        *self.auth.lock().unwrap_or_else(|e| e.into_inner()).entry(result).or_default() += 1;
    }

    /// A request refused by its session's token or the call policy.
    pub fn denied(&self, reason: &'static str) {
        *self.denied.lock().unwrap_or_else(|e| e.into_inner()).entry(reason).or_default() += 1;
    }

    /// A `POST /login` answer ("ok", "wrong_credentials", "throttled", …).
    pub fn login(&self, result: &'static str) {
        *self.logins.lock().unwrap_or_else(|e| e.into_inner()).entry(result).or_default() += 1;
    }

    /// A `POST /webrtc` answer ("answered", "bad_sdp", "bad_token", …).
    pub fn webrtc_offer(&self, result: &'static str) {
        *self.webrtc_offers.lock().unwrap_or_else(|e| e.into_inner()).entry(result).or_default() += 1;
    }

    /// A request refused for a per-session limit.
    pub fn limit(&self, which: &'static str) {
        *self.limits.lock().unwrap_or_else(|e| e.into_inner()).entry(which).or_default() += 1;
    }

    pub fn errors(&self, code: &str) -> u64 {
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).get(code).copied().unwrap_or(0)
    }

    pub fn render(&self, snap: &Snapshot) -> String {
        let mut out = String::new();
        let g = |out: &mut String, name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP moq_relay_{name} {help}\n# TYPE moq_relay_{name} {kind}\nmoq_relay_{name} {v}");
        };
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        g(&mut out, "sessions", "gauge", "Open MoQT sessions.", l(&self.sessions));
        g(&mut out, "sessions_total", "counter", "Sessions accepted.", l(&self.sessions_total));
        g(&mut out, "namespaces", "gauge", "Published namespaces.", l(&self.namespaces));
        g(&mut out, "tracks", "gauge", "Tracks with an upstream.", l(&self.tracks));
        g(&mut out, "subscriptions", "gauge", "Downstream subscriptions.", l(&self.subscriptions));
        g(&mut out, "objects_in_total", "counter", "Objects received from publishers.", l(&self.objects_in));
        g(&mut out, "objects_out_total", "counter", "Objects written to subscribers.", l(&self.objects_out));
        g(&mut out, "bytes_in_total", "counter", "Object bytes received.", l(&self.bytes_in));
        g(&mut out, "bytes_out_total", "counter", "Object bytes written.", l(&self.bytes_out));
        g(&mut out, "dropped_streams_total", "counter", "Subscriber streams reset because the subscriber fell behind.", l(&self.dropped));
        g(&mut out, "evicted_objects_total", "counter", "Objects dropped from queues of subscribers that fell behind.", l(&self.evicted));
        g(&mut out, "queued_bytes", "gauge", "Bytes waiting in subscriber queues.", snap.queued_bytes);
        g(&mut out, "cache_bytes", "gauge", "Bytes held in track caches.", snap.cache_bytes);
        if let Some(rss) = snap.rss_bytes {
            g(&mut out, "resident_memory_bytes", "gauge", "Resident set size of the relay process.", rss);
        }
        let _ = writeln!(out, "# HELP moq_relay_requests_total Requests received by type.\n# TYPE moq_relay_requests_total counter");
        for (k, v) in self.requests.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "moq_relay_requests_total{{type=\"{k}\"}} {v}");
        }
        let _ = writeln!(out, "# HELP moq_relay_errors_total Errors by kind.\n# TYPE moq_relay_errors_total counter");
        for (k, v) in self.errors.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "moq_relay_errors_total{{code=\"{k}\"}} {v}");
        }
        let _ = writeln!(
            out,
            "# HELP moq_relay_auth_sessions_total Sessions by token verdict at SETUP.\n# TYPE moq_relay_auth_sessions_total counter"
        );
        for (k, v) in self.auth.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "moq_relay_auth_sessions_total{{result=\"{k}\"}} {v}");
        }
        let _ = writeln!(out, "# HELP moq_relay_auth_requests_denied_total Requests refused by token scope or call policy.\n# TYPE moq_relay_auth_requests_denied_total counter");
        for (k, v) in self.denied.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "moq_relay_auth_requests_denied_total{{reason=\"{k}\"}} {v}");
        }
        let _ = writeln!(out, "# HELP moq_relay_limit_refusals_total Requests refused with EXCESSIVE_LOAD, by session limit.\n# TYPE moq_relay_limit_refusals_total counter");
        for (k, v) in self.limits.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "moq_relay_limit_refusals_total{{limit=\"{k}\"}} {v}");
        }
        let _ = writeln!(out, "# HELP moq_relay_logins_total Sign-ins at POST /login, by result.\n# TYPE moq_relay_logins_total counter");
        for (k, v) in self.logins.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "moq_relay_logins_total{{result=\"{k}\"}} {v}");
        }
        g(&mut out, "webrtc_peers", "gauge", "Browsers on the WebRTC gateway.", l(&self.webrtc_peers));
        g(&mut out, "webrtc_sessions_total", "counter", "MoQ sessions started over WebRTC data channels.", l(&self.webrtc_sessions));
        g(
            &mut out,
            "webrtc_ice_timeouts_total",
            "counter",
            "WebRTC peers dropped because ICE and DTLS never came up.",
            l(&self.webrtc_ice_timeouts),
        );
        let _ = writeln!(
            out,
            "# HELP moq_relay_webrtc_offers_total POST /webrtc answers, by result.\n# TYPE moq_relay_webrtc_offers_total counter"
        );
        for (k, v) in self.webrtc_offers.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "moq_relay_webrtc_offers_total{{result=\"{k}\"}} {v}");
        }
        let _ = writeln!(
            out,
            "# HELP moq_relay_webrtc_rtp_frames_total Opus frames through the WebRTC gateway (in: RTP to datagrams, out: datagrams to RTP).\n# TYPE moq_relay_webrtc_rtp_frames_total counter"
        );
        let _ = writeln!(out, "moq_relay_webrtc_rtp_frames_total{{dir=\"in\"}} {}", l(&self.webrtc_rtp_in));
        let _ = writeln!(out, "moq_relay_webrtc_rtp_frames_total{{dir=\"out\"}} {}", l(&self.webrtc_rtp_out));
        out
    }
}

/// Resident set size from /proc (Linux), for the memory gauge.
pub fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_labels() {
        let m = Metrics::default();
        m.objects_in.fetch_add(3, Ordering::Relaxed);
        m.error("protocol_violation");
        m.request("Subscribe");
        let text = m.render(&Snapshot { queued_bytes: 7, cache_bytes: 0, rss_bytes: None });
        assert!(text.contains("moq_relay_objects_in_total 3"));
        assert!(text.contains("moq_relay_errors_total{code=\"protocol_violation\"} 1"));
        assert!(text.contains("moq_relay_requests_total{type=\"Subscribe\"} 1"));
        assert!(text.contains("moq_relay_queued_bytes 7"));
        m.webrtc_offer("bad_sdp");
        m.webrtc_rtp_in.fetch_add(2, Ordering::Relaxed);
        let text = m.render(&Snapshot { queued_bytes: 0, cache_bytes: 0, rss_bytes: None });
        assert!(text.contains("moq_relay_webrtc_offers_total{result=\"bad_sdp\"} 1"));
        assert!(text.contains("moq_relay_webrtc_rtp_frames_total{dir=\"in\"} 2"));
        assert!(text.contains("moq_relay_webrtc_peers 0"));
    }
}
