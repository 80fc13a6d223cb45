use super::*;

const M: usize = 960;

fn sine(freq: f64, amp: f64, n: usize) -> Vec<f32> {
    (0..n).map(|i| (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / 48_000.0).sin()) as f32).collect()
}

/// xorshift64 noise in [-amp, amp).
fn noise(seed: u64, amp: f64, n: usize) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (amp * (2.0 * ((s >> 11) as f64 / (1u64 << 53) as f64) - 1.0)) as f32
        })
        .collect()
}

/// Largest step between neighbouring samples: a splice that clicks shows
/// up as a step far above the signal's own.
fn max_step(x: &[f32]) -> f32 {
    x.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max)
}

#[test]
fn expand_inserts_one_pitch_period_of_a_voiced_frame_without_a_click() {
    // 200 Hz: a period of 240 samples (5 ms).
    let x = sine(200.0, 0.5, M);
    let (out, o) = Stretcher::new().stretch(&x, Kind::Expand);
    assert_eq!(o.lag, 240);
    assert_eq!(o.delta, 240);
    assert_eq!(out.len(), M + 240);
    assert!(o.corr > 0.999, "{o:?}");
    assert!(!o.background);
    assert!(max_step(&out) <= max_step(&x) * 1.01, "{} vs {}", max_step(&out), max_step(&x));
    // The frame still ends with its own last samples: the next frame joins on.
    assert_eq!(out[out.len() - 100..], x[M - 100..]);
}

#[test]
fn accelerate_removes_one_period_and_fast_accelerate_two() {
    let x = sine(200.0, 0.5, M);
    let (out, o) = Stretcher::new().stretch(&x, Kind::Accelerate);
    assert_eq!((o.delta, out.len()), (-240, M - 240));
    assert!(max_step(&out) <= max_step(&x) * 1.01);
    let (out, o) = Stretcher::new().stretch(&x, Kind::FastAccelerate);
    assert_eq!((o.delta, o.lag, out.len()), (-480, 240, M - 480));
    assert!(max_step(&out) <= max_step(&x) * 1.01);
}

#[test]
fn fast_accelerate_falls_back_to_one_period_when_two_do_not_fit() {
    // 80 Hz: a 600-sample period; two (1200) exceed the frame.
    let x = sine(80.0, 0.5, M);
    let (out, o) = Stretcher::new().stretch(&x, Kind::FastAccelerate);
    assert_eq!(o.lag, 600);
    assert_eq!((o.delta, out.len()), (-600, M - 600));
}

#[test]
fn loud_noise_is_not_periodic_and_is_declined_until_it_is_the_background() {
    let mut st = Stretcher::new();
    let x = noise(7, 0.3, M);
    let (out, o) = st.stretch(&x, Kind::Accelerate);
    assert_eq!((o.delta, o.background), (0, false), "{o:?}");
    assert_eq!(out, x, "declined: the frame is unchanged");
    let (_, o) = st.stretch(&x, Kind::Expand);
    assert_eq!(o.delta, 0, "{o:?}");
    // After 0.5 s of the same level it is the background: any period goes.
    for seed in 0..NOISE_MIN_FRAMES as u64 {
        st.observe(&noise(100 + seed, 0.3, M));
    }
    let (out, o) = st.stretch(&x, Kind::Accelerate);
    assert!(o.background);
    assert!(o.delta < 0 && out.len() as i32 == M as i32 + o.delta, "{o:?}");
}

#[test]
fn speech_loud_above_the_background_needs_correlation() {
    let mut st = Stretcher::new();
    for seed in 0..50 {
        st.observe(&noise(seed, 0.001, M));
    }
    assert!(st.background().unwrap() < 0.001);
    // Loud noise (40 dB above): not background, not periodic.
    let (_, o) = st.stretch(&noise(9, 0.3, M), Kind::Expand);
    assert_eq!((o.delta, o.background), (0, false));
    // A loud vowel-like tone: periodic, so it goes.
    let (_, o) = st.stretch(&sine(150.0, 0.3, M), Kind::Expand);
    assert_eq!(o.delta, 320, "{o:?}");
}

#[test]
fn silence_is_always_stretchable() {
    let x = vec![0.0f32; M];
    let mut st = Stretcher::new();
    let (out, o) = st.stretch(&x, Kind::Expand);
    assert!(o.background && o.delta > 0, "{o:?}");
    assert!(out.iter().all(|&v| v == 0.0));
    let (out, o) = st.stretch(&x, Kind::Accelerate);
    assert!(o.delta < 0 && out.len() as i32 == M as i32 + o.delta);
}

#[test]
fn short_or_odd_frames_never_panic() {
    let mut st = Stretcher::new();
    for n in [0, 1, 11, 12, 100, 359, 360, 361, 479, 960, 1000] {
        for kind in [Kind::Accelerate, Kind::FastAccelerate, Kind::Expand] {
            let x = sine(200.0, 0.5, n);
            let (out, o) = st.stretch(&x, kind);
            assert_eq!(out.len() as i64, n as i64 + o.delta as i64, "n {n} {kind:?}");
        }
    }
    let (out, o) = st.stretch(&[], Kind::Expand);
    assert_eq!((out.len(), o.delta), (0, 0));
}

#[test]
fn background_is_the_tenth_percentile_of_five_seconds() {
    let mut st = Stretcher::new();
    assert_eq!(st.background(), None);
    // 300 frames at levels 1..=300 (scaled): only the last 250 count.
    for i in 1..=300 {
        st.observe(&[i as f32 / 1000.0; 48]);
    }
    // Kept: 51..=300; sorted index 25 → 76.
    assert!((st.background().unwrap() - 0.076).abs() < 1e-7, "{:?}", st.background());
}
