//! Every decision with explicit time: arrivals at given ms, pulls of 960
//! samples by a simulated shell whose stretcher always succeeds with a
//! fixed period (240 samples; 480 when fast).

use super::*;

struct Sim {
    ctl: Controller,
    ops: Vec<Op>,
}

impl Sim {
    fn new() -> Self {
        Self { ctl: Controller::default(), ops: Vec::new() }
    }

    /// With the design's 20 ms floor, so a calm link shows the thresholds
    /// low = 15, high = 35 (the default floor is 40, see Config).
    fn floor20() -> Self {
        Self { ctl: Controller::new(Config { min_target_ms: 20, ..Config::default() }), ops: Vec::new() }
    }

    fn arrive(&mut self, n: u64, ms: u64) -> bool {
        self.ctl.on_object(n, Some(1_000_000 + n * 20_000), ms)
    }

    /// One 20 ms pull; returns its ops.
    fn pull(&mut self) -> Vec<Op> {
        let mut ops = Vec::new();
        while self.ctl.fifo_samples() < FRAME_SAMPLES {
            let op = self.ctl.next();
            ops.push(op);
            match op {
                Op::Idle => break,
                Op::Accelerate { n, fast } => self.ctl.stretched(n, if fast { -480 } else { -240 }),
                Op::Expand(n) => self.ctl.stretched(n, 240),
                _ => {}
            }
        }
        self.ctl.pulled(FRAME_SAMPLES);
        self.ops.extend(&ops);
        ops
    }

    /// Frames `from..to` arrive every 20 ms from `t0` (minus `lost`), each
    /// followed by a pull 1 ms later.
    fn steady(&mut self, from: u64, to: u64, t0: u64, lost: &[u64]) {
        for n in from..to {
            let t = t0 + (n - from) * 20;
            if !lost.contains(&n) {
                self.arrive(n, t);
            }
            self.pull();
        }
    }
}

fn frames(ops: &[Op]) -> Vec<u64> {
    ops.iter()
        .filter_map(|o| match *o {
            Op::Decode(n) | Op::Expand(n) | Op::Accelerate { n, .. } => Some(n),
            _ => None,
        })
        .collect()
}

#[test]
fn nothing_plays_before_the_first_object_which_plays_at_once() {
    let mut s = Sim::new();
    assert_eq!(s.pull(), vec![Op::Idle]);
    assert!(s.ctl.is_idle());
    assert!(s.arrive(7, 1000));
    // Target 40 ms, level 0: the first frame is decoded at once, expanded.
    assert_eq!(s.pull(), vec![Op::Expand(7)]);
    assert_eq!(s.ctl.stats().underruns, 0);
}

#[test]
fn the_start_builds_the_level_by_expanding_then_plays_plainly() {
    let mut s = Sim::floor20();
    s.steady(0, 100, 0, &[]);
    let st = s.ctl.stats();
    let played = frames(&s.ops);
    assert_eq!(played, (0..played.len() as u64).collect::<Vec<_>>(), "every frame once, in order");
    assert!(played.len() >= 95, "at most a few frames of slack: {}", played.len());
    assert_eq!((st.underruns, st.concealed, st.fec, st.late), (0, 0, 0, 0));
    let expands = s.ops.iter().filter(|o| matches!(o, Op::Expand(_))).count();
    assert!((3..=12).contains(&expands), "{expands} expands: {:?}", &s.ops[..12]);
    assert!(matches!(s.ops[0], Op::Expand(0)));
    assert!(s.ops[s.ops.len() - 20..].iter().all(|o| matches!(o, Op::Decode(_))), "settled: {:?}", &s.ops[80..]);
    // Once the start target (40 ms) has given way to the floor (20 ms), the
    // level (built to the start target's low edge, 30 ms) is inside the
    // floor's band [15, 35): nothing to undo, no accelerate.
    s.steady(100, 400, 2000, &[]);
    let st = s.ctl.stats();
    assert_eq!((st.target_ms, st.underruns, st.accel_ms), (20, 0, 0));
    assert!((15..35).contains(&st.level_ms), "{st:?}");
}

#[test]
fn a_single_loss_is_rebuilt_from_the_next_packets_fec() {
    let mut s = Sim::new();
    // Frames 0..=5 without 2 arrive at once (level 100 ms).
    for n in [0, 1, 3, 4, 5] {
        s.arrive(n, 0);
    }
    let ops: Vec<Op> = (0..4).flat_map(|_| s.pull()).collect();
    assert!(ops.contains(&Op::DecodeFec { lost: 2, from: 3 }), "{ops:?}");
    assert_eq!(s.ctl.stats().fec, 1);
    assert_eq!(s.ctl.stats().concealed, 0);
}

#[test]
fn a_double_loss_is_concealed_then_rebuilt() {
    let mut s = Sim::new();
    for n in [0, 1, 4, 5, 6] {
        s.arrive(n, 0);
    }
    let ops: Vec<Op> = (0..5).flat_map(|_| s.pull()).collect();
    let i = ops.iter().position(|o| *o == Op::Conceal(2)).expect("2 concealed");
    assert_eq!(ops[i + 1], Op::DecodeFec { lost: 3, from: 4 }, "{ops:?}");
    let st = s.ctl.stats();
    assert_eq!((st.concealed, st.fec, st.underruns), (1, 1, 0));
}

#[test]
fn reordering_within_the_level_is_invisible_and_a_late_frame_is_counted() {
    let mut s = Sim::new();
    s.steady(0, 50, 0, &[]);
    // 51 overtakes 50; both before their turn.
    s.arrive(51, 1000);
    s.arrive(50, 1005);
    s.pull();
    s.steady(52, 60, 1040, &[]);
    let played = frames(&s.ops);
    assert_eq!(played, (0..played.len() as u64).collect::<Vec<_>>());
    assert!(played.contains(&51));
    let st = s.ctl.stats();
    assert_eq!((st.late, st.fec, st.concealed), (0, 0, 0));
    // Frame 60 lost, 61.. on time: 60 is rebuilt; when 60 turns up it is late.
    s.steady(60, 70, 1200, &[60]);
    assert!(s.ops.contains(&Op::DecodeFec { lost: 60, from: 61 }), "{:?}", &s.ops[50..]);
    assert!(!s.arrive(60, 1400), "a late packet is not kept");
    assert_eq!(s.ctl.stats().late, 1);
}

#[test]
fn an_underrun_holds_the_due_frame_and_plays_it_when_it_comes() {
    let mut s = Sim::new();
    s.steady(0, 100, 0, &[]);
    // Frame 100 is late: the buffer runs dry, PLC fills in.
    while !s.pull().contains(&Op::Conceal(100)) {}
    let mut ops = Vec::new();
    for _ in 0..3 {
        ops.extend(s.pull());
    }
    assert!(ops.iter().all(|o| *o == Op::Conceal(100)), "{ops:?}");
    assert_eq!(s.ctl.stats().underruns, 0, "counted when the stream resumes");
    s.arrive(100, 2070);
    s.arrive(101, 2070);
    let ops = s.pull();
    assert!(matches!(ops[0], Op::Decode(100) | Op::Accelerate { n: 100, .. } | Op::Expand(100)), "{ops:?}");
    assert_eq!(s.ctl.stats().skipped, 0);
    assert_eq!(s.ctl.stats().underruns, 1, "one run of empties counts once");
    assert!(s.ctl.target_ms() >= 60, "fast attack: {}", s.ctl.target_ms());
}

#[test]
fn after_an_outage_the_first_frame_back_plays_at_once() {
    let mut s = Sim::new();
    s.steady(0, 100, 0, &[]);
    // 2 s outage: frames 100..200 never arrive; the pulls go on.
    let mut ops = Vec::new();
    for _ in 0..100 {
        ops.extend(s.pull());
    }
    assert_eq!(ops.iter().filter(|o| matches!(o, Op::Conceal(_))).count(), 5, "PLC then silence");
    assert!(ops.iter().filter(|o| **o == Op::Idle).count() >= 90);
    assert!(s.ctl.is_idle());
    s.arrive(200, 4000);
    let ops = s.pull();
    assert!(matches!(ops[0], Op::Decode(200) | Op::Expand(200)), "{ops:?}");
    let st = s.ctl.stats();
    assert_eq!((st.skipped, st.underruns, st.concealed_ms), (100, 1, 100));
}

#[test]
fn a_queue_delivered_at_once_is_skipped_down_to_the_target() {
    let mut s = Sim::new();
    s.steady(0, 100, 0, &[]);
    // 1 s of frames arrive together (a queue released).
    for n in 100..150 {
        s.arrive(n, 2000);
    }
    let ops = s.pull();
    let st = s.ctl.stats();
    assert!(st.skipped >= 40, "{st:?} {ops:?}");
    assert!(s.ctl.held_len() <= 5, "{}", s.ctl.held_len());
}

#[test]
fn a_capture_time_jump_resets_the_estimator() {
    let mut s = Sim::new();
    for n in 0..300 {
        s.arrive(n, n * 20 + if n % 4 == 0 { 100 } else { 0 });
        s.pull();
    }
    assert!(s.ctl.target_ms() > 100);
    // Unhold: frame numbers continue, the capture clock jumped 5 s.
    assert!(s.ctl.on_object(300, Some(1_000_000 + 300 * 20_000 + 5_000_000), 11_000));
    assert_eq!(s.ctl.target_ms(), 40);
    assert_eq!(s.ctl.stats().resets, 1);
}

#[test]
fn a_sender_that_restarts_its_numbering_is_followed() {
    let mut s = Sim::new();
    s.steady(1000, 1100, 0, &[]);
    // Restart at 0 with a new capture clock: a discontinuity, and 0 is
    // behind: rebase on it.
    assert!(s.ctl.on_object(0, Some(50_000_000), 2000));
    assert!(matches!(s.pull()[0], Op::Decode(0) | Op::Expand(0)));
    // Without LOC times: ten strays in a row rebase too.
    let mut s = Sim::new();
    s.steady(1000, 1100, 0, &[]);
    for n in 0..9 {
        assert!(!s.ctl.on_object(n, None, 2000 + n));
    }
    assert!(s.ctl.on_object(9, None, 2009));
    assert!(s.ctl.holds(9));
}

#[test]
fn hostile_frame_numbers_never_panic_nor_grow_the_buffer() {
    let mut s = Sim::new();
    s.steady(0, 10, 0, &[]);
    for (i, n) in [u64::MAX, MAX_N + 1, MAX_N, 0, 5, 9, 10, 10, 1 << 40, 11].into_iter().enumerate() {
        s.ctl.on_object(n, Some(u64::MAX), 200 + i as u64);
        s.pull();
    }
    assert!(s.ctl.stats().refused >= 3);
    // A flood of distinct numbers ahead: bounded.
    for n in 100..10_000u64 {
        s.ctl.on_object(n, None, 300);
    }
    assert!(s.ctl.held_len() <= Config::default().buffer_frames);
    for _ in 0..10 {
        s.pull();
    }
    // Redundant copies are bounded too.
    for n in 0..10_000u64 {
        s.ctl.on_redundant(n, 0);
    }
    assert!(s.ctl.redundant_len() <= Config::default().buffer_frames);
}

#[test]
fn a_redundant_copy_fills_a_hole_before_fec_does() {
    let mut s = Sim::new();
    for n in [0, 1, 4, 5, 6] {
        s.arrive(n, 0);
    }
    assert!(s.ctl.on_redundant(2, 0));
    assert!(s.ctl.on_redundant(3, 0));
    assert!(!s.ctl.on_redundant(4, 0), "the primary is here");
    let ops: Vec<Op> = (0..5).flat_map(|_| s.pull()).collect();
    assert!(ops.contains(&Op::DecodeRedundant(2)) && ops.contains(&Op::DecodeRedundant(3)), "{ops:?}");
    assert_eq!(s.ctl.stats().redundant, 2);
}

#[test]
fn a_deep_level_accelerates_and_a_very_deep_one_accelerates_fast() {
    // The thresholds alone, unsmoothed (weight 1): the smoothing is the next test's.
    let cfg = Config { min_target_ms: 20, level_alpha: 1.0, ..Config::default() };
    let mut s = Sim { ctl: Controller::new(cfg), ops: Vec::new() };
    s.steady(0, 200, 0, &[]);
    assert_eq!(s.ctl.target_ms(), 20);
    // 300 ms arrive at once: the level passes 4 × high (140): fast, then
    // normal accelerates as it drains below 140.
    for n in 200..215 {
        s.arrive(n, 4000);
    }
    let mut all = Vec::new();
    for _ in 0..10 {
        all.extend(s.pull());
    }
    assert!(all.iter().any(|o| matches!(o, Op::Accelerate { fast: true, .. })), "{all:?}");
    assert!(all.iter().any(|o| matches!(o, Op::Accelerate { fast: false, .. })), "{all:?}");
    assert!(s.ctl.stats().accel_ms > 0);
}

/// The smoothed level moves by a stretch at once (NetEQ compensates its
/// filtered level the same way): otherwise it lags the FIFO the stretch has
/// just changed, and accelerate and expand undo each other.
#[test]
fn a_stretch_moves_the_smoothed_level_at_once() {
    let mut s = Sim::new();
    s.steady(0, 100, 0, &[]);
    let before = s.ctl.stats().level_ms;
    s.ctl.stretched(100, -480);
    assert_eq!(s.ctl.stats().level_ms, before - 10, "10 ms removed");
    s.ctl.stretched(100, 240);
    assert_eq!(s.ctl.stats().level_ms, before - 5, "5 ms added back");
}
