//! Per-session limits (issue 13): how many requests of each kind a session
//! may hold open, and how fast it may send new ones. A request over a limit
//! is refused with REQUEST_ERROR EXCESSIVE_LOAD (draft-18 §10.6) and a Retry
//! Interval where waiting helps; the session itself goes on, so one greedy
//! client cannot starve the others and is not punished beyond its excess.
//!
//! Plain bookkeeping with time as an input: the shell acquires before it
//! serves a request and releases when the request ends.

use std::time::{Duration, Instant};

/// What a session holds open, each with its own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE, FETCH, TRACK_STATUS served for this session.
    Subscription,
    /// PUBLISH_NAMESPACE in force.
    Namespace,
    /// SUBSCRIBE_NAMESPACE / SUBSCRIBE_TRACKS in force.
    Watch,
    /// Tracks it PUBLISHed.
    Track,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Subscription, Kind::Namespace, Kind::Watch, Kind::Track];

    /// A fixed label for metrics and config keys.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Subscription => "subscriptions",
            Kind::Namespace => "namespaces",
            Kind::Watch => "namespace_watches",
            Kind::Track => "published_tracks",
        }
    }
}

/// The limits, per session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLimits {
    pub subscriptions: usize,
    pub namespaces: usize,
    pub watches: usize,
    pub tracks: usize,
    /// Sustained new requests per second, and the burst above it.
    pub requests_per_sec: u32,
    pub request_burst: u32,
}

/// Defaults sized for the busiest legitimate session, a PBX gateway
/// (chan_moq): per call it announces one namespace and holds about three
/// subscriptions, and a call-setup storm of 40 calls/s sends some 250
/// requests a second. A phone uses a handful of each.
impl Default for QuotaLimits {
    fn default() -> Self {
        Self { subscriptions: 4096, namespaces: 1024, watches: 64, tracks: 4096, requests_per_sec: 500, request_burst: 1000 }
    }
}

impl QuotaLimits {
    fn of(&self, k: Kind) -> usize {
        match k {
            Kind::Subscription => self.subscriptions,
            Kind::Namespace => self.namespaces,
            Kind::Watch => self.watches,
            Kind::Track => self.tracks,
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    /// Already `limit` of this kind open; retrying helps only after one ends.
    Open { kind: Kind, limit: usize },
    /// Too many new requests; one more is allowed after `retry`.
    Rate { retry: Duration },
}

impl OverLimit {
    pub fn label(&self) -> &'static str {
        match self {
            OverLimit::Open { kind, .. } => kind.label(),
            OverLimit::Rate { .. } => "request_rate",
        }
    }

    /// REQUEST_ERROR's Retry Interval (§10.6): milliseconds plus one; 0 means
    /// "do not retry" — right for a full slot, whose end we cannot predict.
    pub fn retry_interval(&self) -> u64 {
        match self {
            OverLimit::Open { .. } => 0,
            OverLimit::Rate { retry } => retry.as_millis() as u64 + 1,
        }
    }
}

/// One session's usage.
#[derive(Debug)]
pub struct Quota {
    limits: QuotaLimits,
    open: [usize; 4],
    /// Token bucket for new requests, in thousandths of a request.
    tokens: u64,
    refilled: Option<Instant>,
}

impl Quota {
    pub fn new(limits: QuotaLimits) -> Self {
        Self { limits, open: [0; 4], tokens: u64::from(limits.request_burst) * 1000, refilled: None }
    }

    fn slot(k: Kind) -> usize {
        Kind::ALL.iter().position(|x| *x == k).unwrap_or(0)
    }

    /// A new request arrives at `now`: spends one token of the rate limit.
    pub fn request(&mut self, now: Instant) -> Result<(), OverLimit> {
        let rate = u64::from(self.limits.requests_per_sec.max(1));
        let cap = u64::from(self.limits.request_burst.max(1)) * 1000;
        if let Some(last) = self.refilled {
            let earned = now.saturating_duration_since(last).as_millis() as u64 * rate;
            self.tokens = (self.tokens + earned).min(cap);
        }
        self.refilled = Some(now);
        if self.tokens >= 1000 {
            self.tokens -= 1000;
            Ok(())
        } else {
            // Time until one whole token has accrued, at `rate` per second.
            let missing_ms = (1000 - self.tokens).div_ceil(rate);
            Err(OverLimit::Rate { retry: Duration::from_millis(missing_ms) })
        }
    }

    /// Takes one of `kind`'s slots for a request being served.
    pub fn acquire(&mut self, kind: Kind) -> Result<(), OverLimit> {
        let limit = self.limits.of(kind);
        let used = &mut self.open[Self::slot(kind)];
        if *used >= limit {
            return Err(OverLimit::Open { kind, limit });
        }
        *used += 1;
        Ok(())
    }

    /// The request that held a slot of `kind` ended.
    pub fn release(&mut self, kind: Kind) {
        let used = &mut self.open[Self::slot(kind)];
        *used = used.saturating_sub(1);
    }

    pub fn open(&self, kind: Kind) -> usize {
        self.open[Self::slot(kind)]
    }
}

/// Sessions open per source address: one host cannot take every session
/// slot of the relay. Counted by the shell as connections arrive and end.
#[derive(Debug, Default)]
pub struct PerAddress {
    open: std::collections::HashMap<std::net::IpAddr, usize>,
    /// Sessions open from every address together.
    total: usize,
}

/// Which session cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCap {
    /// `--max-sessions-per-address`: one host (or NAT) is at its share.
    PerAddress,
    /// `--max-sessions`: the relay is full (abandoned sessions cannot grow memory without bound).
    Total,
}

impl SessionCap {
    /// Its `moq_relay_limit_refusals_total{limit}` label.
    pub fn label(self) -> &'static str {
        match self {
            SessionCap::PerAddress => "sessions_per_address",
            SessionCap::Total => "sessions",
        }
    }
}

impl PerAddress {
    /// A connection from `ip` arrives: admitted while its address is below
    /// `per_address` and the relay below `total`.
    pub fn admit(&mut self, ip: std::net::IpAddr, per_address: usize, total: usize) -> Result<(), SessionCap> {
        if self.total >= total {
            return Err(SessionCap::Total);
        }
        let n = self.open.entry(ip).or_default();
        if *n >= per_address {
            if *n == 0 {
                self.open.remove(&ip);
            }
            return Err(SessionCap::PerAddress);
        }
        *n += 1;
        self.total += 1;
        Ok(())
    }

    /// A connection from `ip` ended.
    pub fn release(&mut self, ip: std::net::IpAddr) {
        if let Some(n) = self.open.get_mut(&ip) {
            *n -= 1;
            self.total -= 1;
            if *n == 0 {
                self.open.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_kind_and_freed_on_release() {
        let mut q = Quota::new(QuotaLimits { subscriptions: 2, namespaces: 1, ..QuotaLimits::default() });
        assert_eq!(q.acquire(Kind::Subscription), Ok(()));
        assert_eq!(q.acquire(Kind::Subscription), Ok(()));
        let over = q.acquire(Kind::Subscription).unwrap_err();
        assert_eq!(over, OverLimit::Open { kind: Kind::Subscription, limit: 2 });
        assert_eq!((over.label(), over.retry_interval()), ("subscriptions", 0));
        assert_eq!(q.acquire(Kind::Namespace), Ok(()), "other kinds are counted apart");
        q.release(Kind::Subscription);
        assert_eq!(q.acquire(Kind::Subscription), Ok(()));
        assert_eq!(q.open(Kind::Subscription), 2);
    }

    #[test]
    fn the_request_rate_allows_a_burst_then_refills_with_time() {
        let mut q = Quota::new(QuotaLimits { requests_per_sec: 10, request_burst: 3, ..QuotaLimits::default() });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(q.request(t0), Ok(()));
        }
        let over = q.request(t0).unwrap_err();
        assert_eq!(over, OverLimit::Rate { retry: Duration::from_millis(100) });
        assert_eq!((over.label(), over.retry_interval()), ("request_rate", 101));
        // 99 ms later: still not a whole request's worth.
        assert!(q.request(t0 + Duration::from_millis(99)).is_err());
        // At 100 ms after the refusal, one more.
        assert_eq!(q.request(t0 + Duration::from_millis(100)), Ok(()));
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(q.request(later), Ok(()));
        }
        assert!(q.request(later).is_err());
    }

    #[test]
    fn sessions_are_counted_per_address_and_forgotten_when_gone() {
        let (a, b): (std::net::IpAddr, std::net::IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let mut p = PerAddress::default();
        assert!(p.admit(a, 2, 9).is_ok() && p.admit(a, 2, 9).is_ok());
        assert_eq!(p.admit(a, 2, 9), Err(SessionCap::PerAddress), "a third session from one address");
        assert!(p.admit(b, 2, 9).is_ok(), "another address is counted apart");
        p.release(a);
        assert!(p.admit(a, 2, 9).is_ok());
        p.release(a);
        p.release(a);
        p.release(b);
        assert!(p.open.is_empty(), "nothing kept for addresses that left");
    }

    #[test]
    fn sessions_are_capped_in_total_too() {
        let ip = |i: u8| std::net::IpAddr::from([192, 0, 2, i]);
        let mut p = PerAddress::default();
        assert!(p.admit(ip(1), 5, 2).is_ok() && p.admit(ip(2), 5, 2).is_ok());
        assert_eq!(p.admit(ip(3), 5, 2), Err(SessionCap::Total), "the relay is full");
        assert_eq!((SessionCap::Total.label(), SessionCap::PerAddress.label()), ("sessions", "sessions_per_address"));
        p.release(ip(1));
        assert!(p.admit(ip(3), 5, 2).is_ok(), "room again once one left");
        assert_eq!(p.admit(ip(4), 0, 9), Err(SessionCap::PerAddress));
        assert!(!p.open.contains_key(&ip(4)), "nothing kept for a refused address");
    }
}
