//! Stream credit for one direction of a session, grown with use.
//!
//! A QUIC endpoint tells its peer how many streams it may have open at once
//! (MAX_STREAMS, RFC 9000 §4.6). quinn-proto allocates the per-stream state of
//! every stream ID it grants at the moment it grants it, about 47 bytes each:
//! the 1,024 bidi + 4,096 uni streams we used to grant up front cost ~240 KiB
//! per session before a single object flowed — most of a call's memory
//! (bench/results/profile-relay.md). A phone needs a handful of request streams
//! (draft-ietf-moq-transport-18 §3.3: one bidi stream per request) and a few
//! data streams at a time, while a PBX gateway carrying many calls on one
//! session needs hundreds. So the relay starts small and doubles the grant
//! whenever the streams it is serving reach three quarters of it; quinn sends
//! the larger MAX_STREAMS at once, before the peer is blocked.

/// Request (bidi) streams a peer may have open at first, and at most.
pub const BIDI: (u64, u64) = (32, 1024);
/// Data (uni) streams a peer may have open at first, and at most.
pub const UNI: (u64, u64) = (32, 4096);

/// Pure bookkeeping: the async shell tells it about accepted and finished
/// streams and applies the limits it returns.
#[derive(Debug, Clone)]
pub struct StreamCredit {
    limit: u64,
    max: u64,
    open: u64,
}

impl StreamCredit {
    pub const fn new(initial: u64, max: u64) -> Self {
        Self { limit: initial, max, open: 0 }
    }

    /// The limit currently granted.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// A peer-opened stream was accepted. Returns a new limit to grant when
    /// the open streams reach three quarters of the current one.
    pub fn opened(&mut self) -> Option<u64> {
        self.open += 1;
        if self.open * 4 >= self.limit * 3 && self.limit < self.max {
            self.limit = (self.limit * 2).min(self.max);
            return Some(self.limit);
        }
        None
    }

    /// A peer-opened stream is finished with.
    pub fn closed(&mut self) {
        self.open = self.open.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_before_the_peer_runs_out_and_stops_at_the_maximum() {
        let mut c = StreamCredit::new(8, 20);
        let grants: Vec<Option<u64>> = (0..8).map(|_| c.opened()).collect();
        // The 6th open stream reaches 3/4 of 8: grant 16; the 12th would reach 3/4 of 16.
        assert_eq!(grants, vec![None, None, None, None, None, Some(16), None, None]);
        let more: Vec<Option<u64>> = (0..8).map(|_| c.opened()).collect();
        assert_eq!(more.iter().flatten().copied().collect::<Vec<_>>(), vec![20], "capped at the maximum");
        assert_eq!(c.limit(), 20);
        assert!((0..10).all(|_| c.opened().is_none()), "no grant beyond the maximum");
    }

    #[test]
    fn streams_that_finish_do_not_grow_the_grant() {
        let mut c = StreamCredit::new(8, 1024);
        for _ in 0..1000 {
            assert_eq!(c.opened(), None);
            c.closed();
        }
        assert_eq!(c.limit(), 8);
        c.closed();
        assert_eq!(c.opened(), None, "a spurious close cannot underflow");
    }
}
