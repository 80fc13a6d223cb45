//! What a listener tells the sender about the audio it receives
//! (docs/design/quality.md §4.1): the [`Report`] that rides as the `rx`
//! member of the `keepalive` event (docs/CALLS.md §5), and the sans-IO
//! [`LossMeter`] that computes it.
//!
//! Loss is counted *before repair*, from gaps in the frame numbers `n` of
//! the audio track (CALLS.md §6): a frame FEC or a redundant copy rebuilt
//! still counts as lost, because the sender must know how much it needs to
//! protect. Frames lost between the sender and the relay count too — the
//! numbers are the sender's. The window is the last 2 s of the sender's
//! frames (100 frame numbers up to the newest heard), so the report says
//! the same thing whether it is sent every 500 ms or less often. moqt-18 has
//! no receiver report of its own (it leaves feedback to QUIC, and the
//! datagram path gets none), hence this one on the call's `events` track.
//!
//! Sans-IO: arrivals carry no clock at all (numbers only) and a report is
//! asked for at an explicit time, which only bounds the late-frame window.
//! The web phone's copy is `webapp/src/media/feedback.ts`; both run
//! `docs/vectors/adapt.json` ("meter").

use super::playout::Stats;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};

/// Frames in the loss window (2 s of 20 ms frames).
pub const WINDOW_FRAMES: u64 = 100;
/// The late-frame window, ms.
pub const WINDOW_MS: u64 = 2_000;
/// A frame this far behind the newest one (a restarted sender) or ahead of
/// it (a jump) starts the count over: the gap is no loss.
pub const REBASE_FRAMES: u64 = 1_500;
/// Frames in a row from below the window that start the count over too (a
/// sender that restarted close to its old numbers; the playout controller
/// rebases after as many, `playout::Config::stray_run`).
pub const STRAY_RUN: u32 = 10;

/// The listener's report (quality.md §4.1). Every member is optional on
/// the wire (a missing one reads as 0), so a report can grow members and a
/// peer can leave out what it does not measure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    /// The newest frame number heard.
    pub n: u64,
    /// Frames missing among the last 2 s of frame numbers, ‰, before repair.
    pub loss: u64,
    /// Mean length of a run of missing frames in that window, ×10 (0: none).
    pub burst: u64,
    /// Frames that came after their turn to play, ‰ of the window.
    pub late: u64,
    /// Frames rebuilt from in-band FEC since the call began.
    pub fec: u64,
    /// Frames played from a REDUNDANT_FRAME copy since the call began.
    pub red: u64,
    /// Concealed audio since the call began, ms.
    pub conceal_ms: u64,
    /// The playout's current target delay, ms.
    pub target_ms: u64,
}

/// Counts the frame numbers heard (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct LossMeter {
    /// Numbers heard within the window below the newest.
    seen: BTreeSet<u64>,
    /// First number of the stream (the window never reaches below it).
    first: Option<u64>,
    newest: u64,
    /// Arrivals in a row from below the window.
    strays: u32,
    /// (time, cumulative late frames) at each report, and the first arrival.
    late: VecDeque<(u64, u64)>,
}

impl LossMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// An audio object of frame `n` arrived at `now_ms` (late, duplicate and
    /// redundant-carrying ones alike: every primary frame heard).
    pub fn on_arrival(&mut self, n: u64, now_ms: u64) {
        let Some(first) = self.first else {
            self.restart(n, now_ms);
            return;
        };
        if n > self.newest.saturating_add(REBASE_FRAMES) || n.saturating_add(REBASE_FRAMES) < self.newest {
            self.restart(n, now_ms);
            return;
        }
        if n < first.max(self.newest.saturating_sub(WINDOW_FRAMES - 1)) {
            self.strays += 1;
            if self.strays >= STRAY_RUN {
                self.restart(n, now_ms);
            }
            return;
        }
        self.strays = 0;
        self.seen.insert(n);
        if n > self.newest {
            self.newest = n;
            let lo = self.low();
            self.seen = self.seen.split_off(&lo);
        }
    }

    fn restart(&mut self, n: u64, now_ms: u64) {
        self.seen.clear();
        self.seen.insert(n);
        self.strays = 0;
        self.first = Some(n);
        self.newest = n;
        if self.late.is_empty() {
            self.late.push_back((now_ms, 0));
        }
    }

    /// Lowest frame number of the window.
    fn low(&self) -> u64 {
        self.first.unwrap_or(0).max(self.newest.saturating_sub(WINDOW_FRAMES - 1))
    }

    /// The report at `now_ms`, with the playout's counters; `None` before
    /// the first frame (nothing to say yet).
    pub fn report(&mut self, stats: &Stats, now_ms: u64) -> Option<Report> {
        self.first?;
        let lo = self.low();
        let len = self.newest - lo + 1;
        let (mut lost, mut runs, mut in_run) = (0u64, 0u64, false);
        for n in lo..=self.newest {
            let missing = !self.seen.contains(&n);
            lost += missing as u64;
            runs += (missing && !in_run) as u64;
            in_run = missing;
        }
        self.late.push_back((now_ms, stats.late));
        while self.late.len() > 1 && self.late.get(1).is_some_and(|&(t, _)| t.saturating_add(WINDOW_MS) <= now_ms) {
            self.late.pop_front();
        }
        let late_base = self.late.front().map_or(stats.late, |&(_, l)| l);
        let late = stats.late.saturating_sub(late_base);
        Some(Report {
            n: self.newest,
            loss: lost * 1000 / len,
            burst: (lost * 10).checked_div(runs).unwrap_or(0),
            late: (late * 1000 / len).min(1000),
            fec: stats.fec,
            red: stats.redundant,
            conceal_ms: stats.concealed_ms,
            target_ms: stats.target_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(ns: impl IntoIterator<Item = u64>) -> LossMeter {
        let mut m = LossMeter::new();
        for n in ns {
            m.on_arrival(n, n * 20);
        }
        m
    }

    #[test]
    fn nothing_heard_nothing_reported() {
        assert_eq!(LossMeter::new().report(&Stats::default(), 0), None);
    }

    #[test]
    fn gaps_are_loss_and_runs_are_bursts() {
        let mut m = meter((0..100).filter(|n| ![10, 11, 50, 51, 52].contains(n)));
        let r = m.report(&Stats::default(), 2_000).unwrap();
        assert_eq!((r.n, r.loss, r.burst), (99, 50, 25));
    }

    #[test]
    fn the_window_forgets_old_loss() {
        let mut m = meter((0..200).filter(|n| !(10..20).contains(n)));
        let r = m.report(&Stats::default(), 4_000).unwrap();
        assert_eq!((r.loss, r.burst), (0, 0));
    }

    #[test]
    fn a_restarted_sender_is_not_a_loss_and_hostile_numbers_do_not_panic() {
        let mut m = meter(1000..1100);
        for n in 0..50 {
            m.on_arrival(n, 3_000 + n * 20);
        }
        let r = m.report(&Stats::default(), 4_000).unwrap();
        assert_eq!((r.n, r.loss), (49, 0));
        m.on_arrival(u64::MAX, 5_000);
        m.on_arrival(u64::MAX - 1, 5_000);
        let r = m.report(&Stats::default(), 5_000).unwrap();
        assert_eq!((r.n, r.loss), (u64::MAX, 0));
    }

    #[test]
    fn the_wire_form_tolerates_missing_and_unknown_members() {
        let r: Report = serde_json::from_str(r#"{"loss":12,"future":[1]}"#).unwrap();
        assert_eq!(r, Report { loss: 12, ..Report::default() });
    }
}
