//! When a phone tries its relay again after its session ended: exponential
//! backoff with full jitter, sans-IO (time and randomness are inputs).
//!
//! Why: draft-18 leaves reconnection to the application (§13.6.1: "accept
//! that idle connections can close and implement reconnection logic"), and a
//! relay that restarts drops every phone at the same instant. Retrying at a
//! fixed or purely exponential schedule brings them all back in the same
//! millisecond, again and again (a thundering herd); drawing each wait
//! uniformly from `0..=ceiling` ("full jitter") spreads them evenly over the
//! whole window, and the window doubles per failure up to a cap, so a relay
//! that stays down is asked less and less often. A session that stayed up
//! for a while resets the window: the next outage starts from the short
//! first wait again, while a relay that accepts and then drops at once
//! (flapping) keeps the window growing.

/// Milliseconds on the caller's clock (as in [`crate::call::machine`]).
pub type Millis = u64;

/// The knobs of [`Backoff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Ceiling of the first wait; doubles per failed attempt.
    pub first: Millis,
    /// The ceiling never grows past this.
    pub cap: Millis,
    /// A session up at least this long resets the ceiling to `first`.
    pub stable: Millis,
}

impl Default for BackoffPolicy {
    /// 250 ms doubling to 30 s (eight steps: 250, 500, …, 16 s, 30 s); a
    /// session that stayed up 10 s counts as a success. 250 ms keeps a lone
    /// phone's gap short after a relay restart; 30 s bounds the load a few
    /// thousand phones put on a relay that is down.
    fn default() -> Self {
        BackoffPolicy { first: 250, cap: 30_000, stable: 10_000 }
    }
}

/// The state of one phone's reconnection schedule.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    /// Attempts (or sessions) that failed since the last stable session.
    failures: u32,
    /// When the current session came up, if one is up.
    up_since: Option<Millis>,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Self {
        Backoff { policy, failures: 0, up_since: None }
    }

    /// A session came up (registered) at `now`.
    pub fn connected(&mut self, now: Millis) {
        self.up_since = Some(now);
    }

    /// The ceiling of the next wait: `first · 2^failures`, at most `cap`.
    pub fn ceiling(&self) -> Millis {
        let first = self.policy.first.max(1);
        let doubled = first.checked_shl(self.failures.min(63)).filter(|v| v >> self.failures.min(63) == first);
        doubled.unwrap_or(Millis::MAX).min(self.policy.cap.max(first))
    }

    /// The session ended, or an attempt to connect failed, at `now`.
    /// `random` is a uniformly random number (the shell draws it from the
    /// OS). Returns how long to wait before the next attempt: uniform in
    /// `0..=ceiling` (full jitter).
    pub fn next_delay(&mut self, now: Millis, random: u64) -> Millis {
        if let Some(up) = self.up_since.take() {
            if now.saturating_sub(up) >= self.policy.stable {
                self.failures = 0;
            }
        }
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        // The modulo's bias is below ceiling / 2^64: nothing at 30 s.
        match ceiling.checked_add(1) {
            Some(span) => random % span,
            None => random,
        }
    }

    /// Failed attempts since the last stable session.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// A uniformly random number for the jitter: the OS's, so that phones (and
/// PBXs) restarted together still draw differently.
pub fn os_random() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        // No OS randomness: the clock's nanoseconds still differ per phone.
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64: a seeded stand-in for the OS's randomness.
    fn randoms(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    #[test]
    fn ceiling_doubles_from_250_ms_to_the_30_s_cap_and_stays() {
        let mut b = Backoff::new(BackoffPolicy::default());
        let mut ceilings = Vec::new();
        for _ in 0..12 {
            ceilings.push(b.ceiling());
            b.next_delay(0, 0);
        }
        assert_eq!(ceilings, [250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000, 30_000, 30_000]);
        // No overflow however long the relay stays down.
        for _ in 0..1_000 {
            assert!(b.next_delay(0, u64::MAX) <= 30_000);
        }
        assert_eq!(b.ceiling(), 30_000);
    }

    #[test]
    fn each_wait_lies_between_zero_and_its_ceiling_inclusive() {
        let mut next = randoms(7);
        let mut b = Backoff::new(BackoffPolicy::default());
        for _ in 0..40 {
            let ceiling = b.ceiling();
            let d = b.next_delay(0, next());
            assert!(d <= ceiling, "{d} > {ceiling}");
        }
        // The extremes of the random input reach both ends.
        let mut lo = Backoff::new(BackoffPolicy::default());
        assert_eq!(lo.next_delay(0, 0), 0);
        let mut hi = Backoff::new(BackoffPolicy::default());
        assert_eq!(hi.next_delay(0, 250), 250);
        assert_eq!(hi.next_delay(0, 500), 500);
        assert_eq!(hi.next_delay(0, 1_001), 0);
    }

    #[test]
    fn a_session_that_stayed_up_resets_the_window() {
        let mut b = Backoff::new(BackoffPolicy::default());
        for _ in 0..5 {
            b.next_delay(0, 0);
        }
        assert_eq!(b.ceiling(), 8_000);
        b.connected(100_000);
        // Up 10 s: the next wait is drawn from the first window again.
        assert!(b.next_delay(110_000, u64::MAX) <= 250);
        assert_eq!(b.failures(), 1);
        assert_eq!(b.ceiling(), 500);
    }

    #[test]
    fn a_session_that_drops_at_once_keeps_the_window_growing() {
        let mut b = Backoff::new(BackoffPolicy::default());
        for _ in 0..5 {
            b.next_delay(0, 0);
        }
        // A flapping relay: registered, then dropped 9.999 s later.
        b.connected(100_000);
        b.next_delay(109_999, 0);
        assert_eq!(b.ceiling(), 16_000);
        // An attempt that fails without a session does not reset either.
        b.next_delay(200_000, 0);
        assert_eq!(b.ceiling(), 30_000);
    }

    /// 500 phones dropped by the same relay restart, each with its own
    /// randomness: at every attempt their retries cover the window evenly
    /// (no tenth of it gets more than twice its share) instead of landing
    /// together.
    #[test]
    fn phones_dropped_together_spread_their_retries_over_the_window() {
        const PHONES: usize = 500;
        let mut next = randoms(20);
        let mut phones: Vec<Backoff> = (0..PHONES).map(|_| Backoff::new(BackoffPolicy::default())).collect();
        for attempt in 0..9 {
            let ceiling = phones[0].ceiling();
            let mut tenths = [0usize; 10];
            let mut delays = Vec::new();
            for p in phones.iter_mut() {
                assert_eq!(p.ceiling(), ceiling);
                let d = p.next_delay(0, next());
                tenths[((d * 10) / (ceiling + 1)) as usize] += 1;
                delays.push(d);
            }
            for (i, n) in tenths.iter().enumerate() {
                assert!((PHONES / 20..=PHONES / 5).contains(n), "attempt {attempt}: tenth {i} of {ceiling} ms has {n} of {PHONES}");
            }
            delays.sort_unstable();
            delays.dedup();
            assert!(delays.len() > PHONES / 4, "attempt {attempt}: only {} distinct waits", delays.len());
        }
    }

    #[test]
    fn a_degenerate_policy_still_gives_bounded_waits() {
        let mut b = Backoff::new(BackoffPolicy { first: 0, cap: 0, stable: 0 });
        for _ in 0..100 {
            assert!(b.next_delay(0, u64::MAX) <= 1);
        }
        let mut b = Backoff::new(BackoffPolicy { first: u64::MAX / 2, cap: u64::MAX, stable: 0 });
        for _ in 0..10 {
            b.next_delay(0, 3);
        }
        assert_eq!(b.ceiling(), u64::MAX);
        // `0..=u64::MAX` is every value: no `+ 1` overflow.
        assert_eq!(b.next_delay(0, u64::MAX), u64::MAX);
    }
}
