//! A congestion controller whose window never drops below a floor, for
//! sessions that carry calls (docs/design/quality.md §3.6).
//!
//! Why: during an outage every packet is lost. A standard controller
//! (quinn's Cubic, RFC 9002 §7.6.2) declares persistent congestion and
//! collapses its window to two packets, and the unacknowledged bytes of the
//! outage fill even the initial window; after that the sender may only send
//! when a Probe Timeout fires, and PTOs back off exponentially (RFC 9002
//! §6.2.1), so after a 2 s outage the first audio could wait most of a
//! second for the next probe, and datagrams queued meanwhile would arrive as
//! a stale burst. A call sends about 50 small datagrams a second (a few
//! kB/s): with a window of at least [`CALL_WINDOW_FLOOR`] the audio of a 2 s
//! outage never fills it, so each frame leaves when it is captured and the
//! first one after the link returns goes out at once. Bulk traffic still
//! backs off above the floor; the floor is what a few calls need, not a
//! licence to flood.
//!
//! Measured with bench/tests/call_outage.rs (a call through moq-relay, 2 s
//! of total loss both ways, loopback): with the floor each side played audio
//! its peer sent after the outage 32–82 ms after the link returned (4 runs);
//! without it 411–464 ms, and once 2.1 s.
//!
//! This file is also compiled into moq-relay (`relay/src/lib.rs` names it
//! with `#[path]`), so that both directions of a call behave the same.

use quinn::congestion::{Controller, ControllerFactory, ControllerMetrics};
use quinn_proto::RttEstimator;
use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

/// 32 KB: about 5 s of one call's datagrams (~120 bytes each, 50 a second),
/// so a 2 s outage never makes the sender window-limited.
pub const CALL_WINDOW_FLOOR: u64 = 32 * 1024;

/// Builds controllers of `inner`'s kind whose window is at least `floor`.
pub struct FloorFactory {
    inner: Arc<dyn ControllerFactory + Send + Sync>,
    floor: u64,
}

impl FloorFactory {
    pub fn new(inner: Arc<dyn ControllerFactory + Send + Sync>, floor: u64) -> Self {
        Self { inner, floor }
    }

    /// quinn's default controller (Cubic) with [`CALL_WINDOW_FLOOR`].
    pub fn for_calls() -> Arc<Self> {
        Arc::new(Self::new(Arc::new(quinn::congestion::CubicConfig::default()), CALL_WINDOW_FLOOR))
    }
}

impl ControllerFactory for FloorFactory {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(Floor { inner: self.inner.clone().build(now, current_mtu), floor: self.floor })
    }
}

/// The inner controller, unchanged, except that [`Controller::window`] is
/// at least `floor`.
pub struct Floor {
    inner: Box<dyn Controller>,
    floor: u64,
}

impl Floor {
    pub fn new(inner: Box<dyn Controller>, floor: u64) -> Self {
        Self { inner, floor }
    }
}

impl Controller for Floor {
    fn on_sent(&mut self, now: Instant, bytes: u64, last_packet_number: u64) {
        self.inner.on_sent(now, bytes, last_packet_number)
    }

    fn on_ack(&mut self, now: Instant, sent: Instant, bytes: u64, app_limited: bool, rtt: &RttEstimator) {
        self.inner.on_ack(now, sent, bytes, app_limited, rtt)
    }

    fn on_end_acks(&mut self, now: Instant, in_flight: u64, app_limited: bool, largest_packet_num_acked: Option<u64>) {
        self.inner.on_end_acks(now, in_flight, app_limited, largest_packet_num_acked)
    }

    fn on_congestion_event(&mut self, now: Instant, sent: Instant, is_persistent_congestion: bool, lost_bytes: u64) {
        self.inner.on_congestion_event(now, sent, is_persistent_congestion, lost_bytes)
    }

    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.inner.on_mtu_update(new_mtu)
    }

    fn window(&self) -> u64 {
        self.inner.window().max(self.floor)
    }

    fn metrics(&self) -> ControllerMetrics {
        let mut m = self.inner.metrics();
        m.congestion_window = self.window();
        m
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(Floor { inner: self.inner.clone_box(), floor: self.floor })
    }

    fn initial_window(&self) -> u64 {
        self.inner.initial_window().max(self.floor)
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn persistent_congestion_leaves_the_window_at_the_floor_and_growth_above_it_works() {
        let now = Instant::now();
        let mut c = FloorFactory::for_calls().build(now, 1200);
        let initial = c.window();
        assert!(initial >= CALL_WINDOW_FLOOR);
        // Cubic alone drops to two packets here (RFC 9002 §7.6.2).
        let mut cubic = Arc::new(quinn::congestion::CubicConfig::default()).build(now, 1200);
        cubic.on_congestion_event(now + Duration::from_secs(2), now, true, 20_000);
        assert_eq!(cubic.window(), 2 * 1200);
        c.on_congestion_event(now + Duration::from_secs(2), now, true, 20_000);
        assert_eq!(c.window(), CALL_WINDOW_FLOOR);
        assert_eq!(c.metrics().congestion_window, CALL_WINDOW_FLOOR);
        // A clone keeps the floor.
        assert_eq!(c.clone_box().window(), CALL_WINDOW_FLOOR);
    }

    #[test]
    fn a_larger_inner_window_is_kept() {
        let now = Instant::now();
        let inner = {
            let mut cfg = quinn::congestion::CubicConfig::default();
            cfg.initial_window(1 << 20);
            Arc::new(cfg)
        };
        let c = Arc::new(FloorFactory::new(inner, CALL_WINDOW_FLOOR)).build(now, 1200);
        assert_eq!(c.window(), 1 << 20);
    }
}
