//! Puts a peer's `events` back in order (docs/CALLS.md §5), as a sans-IO
//! state machine: what arrived on the subscription, what a FETCH returned
//! and the time in milliseconds go in; the events to deliver, the FETCHes
//! to ask for and when to be stepped again come out. No clock, no socket:
//! the phone driver feeds it from the session, and the same vectors
//! (`docs/vectors/sequencer.json`) drive this and the web phone's copy
//! (`webapp/src/phone/sequencer.ts`).
//!
//! Events are one object per group, groups numbered from 0, so what is
//! missing is visible. Nothing here depends on a relay's cache:
//!
//! - Events published before our SUBSCRIBE are not sent on it ("Subscribe
//!   only requests newly published or received Objects. Objects from the
//!   past are retrieved using FETCH", draft-ietf-moq-transport-18 §10.7).
//!   SUBSCRIBE_OK carries the Joining Location (LARGEST_OBJECT, §10.2.11)
//!   when anything was published; an Absolute Joining FETCH from group 0
//!   (§5.1.3, §10.12.2) returns everything up to it. A relay may answer it
//!   from its cache or forward it to the publisher (§9.1: caching is
//!   optional). A relay that aggregates subscriptions attaches us to its
//!   upstream one, and objects it had already forwarded do not reach us
//!   (§9.4); they are at or below the Joining Location, so the Joining
//!   FETCH covers them too.
//! - "Groups can always be received out of order" (§2.3.1): a later group
//!   arriving first is normally just reordering, so a hole is waited for
//!   ([`GAP_WAIT_MS`]), then asked for once with a Standalone FETCH
//!   (§10.12.1) that runs beside the live subscription, so nothing live is
//!   held up by a slow or silent publisher. A hole is skipped when it
//!   outlives [`MAX_HOLE_MS`], or at once when the Joining FETCH, the one
//!   source of what it covers, came back without it.
//! - With nothing arriving at all and no Joining Location, everything is
//!   asked for once after [`QUIET_WAIT_MS`].
//!
//! Each event is delivered once, in group order.
//!
//! Beyond the TypeScript copy: skipped groups are reported
//! ([`Output::Skipped`], for the log), and [`EventSequencer::finish`]
//! hands over what is left when the track ends.

use super::machine::Millis;
use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};

/// How long a hole in the event sequence may last before it is asked for
/// with a FETCH: every event is its own group on its own stream (CALLS.md
/// §5), so a later group arriving first is normally just reordering
/// (§2.3.1), over within a round trip.
pub const GAP_WAIT_MS: Millis = 300;

/// The longest a hole holds up the events behind it when no FETCH answers
/// (a FETCH may travel to the publisher, which need not answer quickly, or
/// at all): well within the lost-peer timer (CALLS.md §7), so a `hangup`
/// behind a hole still ends the call as a hangup.
pub const MAX_HOLE_MS: Millis = 1000;

/// With nothing at all arriving for this long, and no Joining Location,
/// ask once for anything published before we subscribed.
pub const QUIET_WAIT_MS: Millis = 500;

/// The end of a FETCH range meaning "everything": far beyond any call's
/// events.
pub const EVERYTHING: u64 = 1 << 32;

/// What the sequencer wants done, in the order it wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Hand the event of group `group` to the call.
    Deliver { group: u64, payload: Bytes },
    /// An Absolute Joining FETCH from group 0 of the subscription (§10.12.2);
    /// its answer covers groups `0..=joining`.
    FetchJoining,
    /// A Standalone FETCH (§10.12.1) of groups `from..to` (`to` exclusive;
    /// [`EVERYTHING`] for "all of them").
    FetchRange { from: u64, to: u64 },
    /// Groups `from..to` were given up on (for the log; nothing to do).
    Skipped { from: u64, to: u64 },
}

/// The FETCH in flight (one at a time): the end of the groups it covers,
/// and whether it is the Joining FETCH.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    to: u64,
    joining: bool,
}

#[derive(Debug)]
pub struct EventSequencer {
    /// The next group to deliver.
    next: u64,
    /// Groups at or above `next` that arrived, first copy kept.
    pending: BTreeMap<u64, Bytes>,
    /// Groups below `known_end` exist: up to the Joining Location, and below
    /// any group that arrived.
    known_end: u64,
    in_flight: Option<InFlight>,
    /// When the hole at `next` was first seen; whether the Joining FETCH
    /// came back without it (nothing else can fill it); whether a
    /// Standalone FETCH covering it was asked for (once per hole).
    hole_since: Option<Millis>,
    hole_fetched: bool,
    hole_asked: bool,
    quiet_fetched: bool,
    started: Millis,
    joining: bool,
    out: VecDeque<Output>,
}

impl EventSequencer {
    /// `joining_group`: the group of SUBSCRIBE_OK's LARGEST_OBJECT, if any;
    /// with one, the Joining FETCH is asked for at once. Step it once `now`
    /// too, as after any input, to learn when to step it again.
    pub fn new(joining_group: Option<u64>, now: Millis) -> Self {
        let mut s = Self {
            next: 0,
            pending: BTreeMap::new(),
            known_end: joining_group.map_or(0, |g| g + 1),
            in_flight: None,
            hole_since: None,
            hole_fetched: false,
            hole_asked: false,
            quiet_fetched: false,
            started: now,
            joining: joining_group.is_some(),
            out: VecDeque::new(),
        };
        if let Some(g) = joining_group {
            s.in_flight = Some(InFlight { to: g + 1, joining: true });
            s.out.push_back(Output::FetchJoining);
        }
        s
    }

    /// The next group to deliver: a group below it has been delivered or
    /// skipped, and is dropped if it comes (again).
    pub fn expected(&self) -> u64 {
        self.next
    }

    /// What to do next, oldest first.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// An object of group `group` arrived on the subscription. Returns when
    /// to call [`step`](Self::step) at the latest (`None`: only on input).
    pub fn object(&mut self, group: u64, payload: Bytes, now: Millis) -> Option<Millis> {
        if group >= self.next {
            self.known_end = self.known_end.max(group);
            self.pending.entry(group).or_insert(payload);
        }
        self.step(now)
    }

    /// A FETCH of groups `from..to` came back with `objects` (group,
    /// payload); none when it failed. A hole the Joining FETCH covered and
    /// did not fill is skipped at once: only it has those groups. A hole a
    /// Standalone FETCH did not fill is not asked for again and lives until
    /// [`MAX_HOLE_MS`]: a relay answers from what it has (§9.1), and the
    /// object may still be on its way (a WebRTC page's stream that had to be
    /// opened again came 300+ ms late under load).
    pub fn fetched(&mut self, from: u64, to: u64, objects: impl IntoIterator<Item = (u64, Bytes)>, now: Millis) -> Option<Millis> {
        let joining = self.in_flight.is_some_and(|f| f.joining);
        self.in_flight = None;
        for (g, p) in objects {
            if g >= self.next {
                self.pending.entry(g).or_insert(p);
            }
        }
        if self.hole_since.is_some() && (from..to).contains(&self.next) {
            if joining {
                self.hole_fetched = true;
            } else {
                self.hole_asked = true;
            }
        }
        self.step(now)
    }

    /// Delivers what it can, skips or asks for holes; returns when to be
    /// called again (`None`: only on the next input).
    pub fn step(&mut self, now: Millis) -> Option<Millis> {
        let (hole, hole_end, joining_pending) = loop {
            while let Some(p) = self.pending.remove(&self.next) {
                self.out.push_back(Output::Deliver { group: self.next, payload: p });
                self.next += 1;
                self.hole_since = None;
                self.hole_fetched = false;
                self.hole_asked = false;
            }
            let first_pending = self.pending.keys().next().copied();
            let hole_end = first_pending.unwrap_or(0).max(self.known_end);
            let hole = hole_end > self.next;
            if hole && self.hole_since.is_none() {
                self.hole_since = Some(now);
            }
            // The Joining FETCH is the only source of what it covers: wait for it.
            let joining_pending = self.in_flight.is_some_and(|f| f.joining && self.next < f.to);
            let too_long = self.hole_since.is_some_and(|t| now >= t + MAX_HOLE_MS) && !joining_pending;
            if hole && (self.hole_fetched || too_long) {
                let to = first_pending.unwrap_or(hole_end);
                self.out.push_back(Output::Skipped { from: self.next, to });
                self.next = to;
                self.hole_since = None;
                self.hole_fetched = false;
                self.hole_asked = false;
                continue;
            }
            break (hole, hole_end, joining_pending);
        };
        // Ask for the hole after GAP_WAIT (or for anything published before
        // us after QUIET_WAIT), give up on it at MAX_HOLE.
        let quiet = !hole && self.next == 0 && !self.joining && !self.quiet_fetched;
        let ask = self.in_flight.is_none() && ((hole && !self.hole_asked) || quiet);
        let wake = match self.hole_since {
            Some(t) if hole && ask => Some(t + GAP_WAIT_MS),
            Some(t) if hole && !joining_pending => Some(t + MAX_HOLE_MS),
            _ if quiet && ask => Some(self.started + QUIET_WAIT_MS),
            _ => None,
        };
        match wake {
            Some(w) if ask && now >= w => {
                let (from, to) = if hole {
                    self.hole_asked = true;
                    (self.next, hole_end)
                } else {
                    self.quiet_fetched = true;
                    (0, EVERYTHING)
                };
                self.in_flight = Some(InFlight { to, joining: false });
                self.out.push_back(Output::FetchRange { from, to });
                self.step(now)
            }
            _ => wake,
        }
    }

    /// The track is over (PUBLISH_DONE, §10.11, which "is likely to arrive
    /// at the receiver before late-arriving objects": `late` are the objects
    /// that still came after it). Nothing will fill a hole now, so every
    /// pending event is delivered, in group order.
    pub fn finish(&mut self, late: impl IntoIterator<Item = (u64, Bytes)>) {
        for (g, p) in late {
            if g >= self.next {
                self.pending.entry(g).or_insert(p);
            }
        }
        for (group, payload) in std::mem::take(&mut self.pending) {
            self.out.push_back(Output::Deliver { group, payload });
            self.next = group + 1;
        }
        self.in_flight = None;
        self.hole_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut EventSequencer) -> Vec<Output> {
        std::iter::from_fn(|| s.poll_output()).collect()
    }

    fn deliver(group: u64, payload: &'static str) -> Output {
        Output::Deliver { group, payload: Bytes::from_static(payload.as_bytes()) }
    }

    #[test]
    fn skips_are_reported() {
        let mut s = EventSequencer::new(None, 0);
        s.object(0, Bytes::from_static(b"a"), 0);
        s.object(3, Bytes::from_static(b"d"), 0);
        assert_eq!(s.step(1000), None);
        assert_eq!(drain(&mut s), [deliver(0, "a"), Output::Skipped { from: 1, to: 3 }, deliver(3, "d")]);
    }

    #[test]
    fn finish_delivers_what_is_pending_and_late_in_group_order() {
        let mut s = EventSequencer::new(Some(1), 0);
        s.object(4, Bytes::from_static(b"e"), 10);
        s.object(2, Bytes::from_static(b"c"), 10);
        assert_eq!(drain(&mut s), [Output::FetchJoining]);
        s.finish([(3, Bytes::from_static(b"d")), (2, Bytes::from_static(b"c late"))]);
        assert_eq!(drain(&mut s), [deliver(2, "c"), deliver(3, "d"), deliver(4, "e")]);
        assert_eq!(s.expected(), 5);
        s.finish([(1, Bytes::from_static(b"b"))]);
        assert_eq!(drain(&mut s), []);
    }
}
