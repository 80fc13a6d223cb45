//! Runs the shared time-stretch vectors (docs/vectors/stretch.json), the
//! same file the web phone's `webapp/src/media/stretch.ts` is tested against
//! (docs/design/quality.md §3.3 "Stretcher").
//!
//! # Format of stretch.json
//! ```text
//! { "about": "...",
//!   "constants": { "decimate": 12, "min_lag_4k": 10, "max_lag_4k": 60, "refine": 6, "min_fade": 60,
//!                  "accelerate_corr": 0.85, "expand_corr": 0.6, "noise_frames": 250,
//!                  "noise_min_frames": 25, "noise_factor": 2.0, "silence_rms": 0.0003 },
//!   "tolerance": { "sample": 1e-5, "sum": 1e-4, "corr": 1e-6 },
//!   "cases": [ {
//!     "name": "...",
//!     "history": [ {"signal": <recipe>, "frames": 30}, ... ],   // optional: frames observed first
//!     "signal": <recipe>,                                        // the frame to stretch
//!     "kind": "accelerate" | "fast_accelerate" | "expand",
//!     "expect": { "lag": 240, "delta": -240, "len": 720, "background": false,
//!                 "corr": 0.9999, "sum": 0.12, "energy": 89.9,
//!                 "samples": [[index, value], ...] } } ] }
//! ```
//! A recipe `{"n": 960, "sines": [[freq_hz, amp, phase_rad], ...], "noise": {"seed": 7, "amp": 0.3}}`
//! (sines and noise optional) is the f32 frame whose sample `i` is, in f64,
//! `Σ amp·sin(2π·freq·i/48000 + phase) + amp_noise·(2u − 1)` with `u` drawn per
//! sample from xorshift64 (state `seed·0x9E3779B97F4A7C15 | 1` wrapping;
//! `s ^= s<<13; s ^= s>>7; s ^= s<<17; u = (s>>11)/2^53`, the generator of
//! bench/src/link.rs). In a history entry, frame `j` (0-based) of `frames`
//! uses noise seed `seed + j`. `sum` = Σ out, `energy` = Σ out², in f64 in
//! index order; `corr` is the correlation the stretcher measured; `lag` is 0
//! when the frame was too short to analyse.

use pub_sub_audio::audio::stretch::{self, Kind, Stretcher};
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    constants: Constants,
    tolerance: Tolerance,
    cases: Vec<Case>,
}

#[derive(Deserialize, Debug, PartialEq)]
struct Constants {
    decimate: usize,
    min_lag_4k: usize,
    max_lag_4k: usize,
    refine: usize,
    min_fade: usize,
    accelerate_corr: f64,
    expand_corr: f64,
    noise_frames: usize,
    noise_min_frames: usize,
    noise_factor: f64,
    silence_rms: f64,
}

#[derive(Deserialize)]
struct Tolerance {
    sample: f64,
    sum: f64,
    corr: f64,
}

#[derive(Deserialize, Clone)]
struct Recipe {
    n: usize,
    #[serde(default)]
    sines: Vec<(f64, f64, f64)>,
    #[serde(default)]
    noise: Option<Noise>,
}

#[derive(Deserialize, Clone, Copy)]
struct Noise {
    seed: u64,
    amp: f64,
}

#[derive(Deserialize)]
struct History {
    signal: Recipe,
    frames: u64,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    #[serde(default)]
    history: Vec<History>,
    signal: Recipe,
    kind: String,
    expect: Expect,
}

#[derive(Deserialize)]
struct Expect {
    lag: usize,
    delta: i32,
    len: usize,
    background: bool,
    corr: f64,
    sum: f64,
    energy: f64,
    samples: Vec<(usize, f64)>,
}

fn make(r: &Recipe) -> Vec<f32> {
    let mut s = r.noise.map(|n| n.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1).unwrap_or(1);
    (0..r.n)
        .map(|i| {
            let mut v = 0.0f64;
            for &(f, a, p) in &r.sines {
                v += a * (2.0 * std::f64::consts::PI * f * i as f64 / 48_000.0 + p).sin();
            }
            if let Some(n) = r.noise {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                v += n.amp * (2.0 * u - 1.0);
            }
            v as f32
        })
        .collect()
}

#[test]
fn shared_vectors() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/vectors/stretch.json")).unwrap();
    let file: File = serde_json::from_str(&text).unwrap();
    let ours = Constants {
        decimate: stretch::DECIMATE,
        min_lag_4k: stretch::MIN_LAG_4K,
        max_lag_4k: stretch::MAX_LAG_4K,
        refine: stretch::REFINE,
        min_fade: stretch::MIN_FADE,
        accelerate_corr: stretch::ACCELERATE_CORR,
        expand_corr: stretch::EXPAND_CORR,
        noise_frames: stretch::NOISE_FRAMES,
        noise_min_frames: stretch::NOISE_MIN_FRAMES,
        noise_factor: stretch::NOISE_FACTOR,
        silence_rms: stretch::SILENCE_RMS,
    };
    assert_eq!(file.constants, ours, "the vectors pin these values: change both");
    assert!(file.cases.len() >= 10);
    let tol = file.tolerance;
    let mut failed = Vec::new();
    for c in file.cases {
        let mut st = Stretcher::new();
        for h in &c.history {
            for j in 0..h.frames {
                let mut r = h.signal.clone();
                if let Some(n) = r.noise.as_mut() {
                    n.seed += j;
                }
                st.observe(&make(&r));
            }
        }
        let kind = match c.kind.as_str() {
            "accelerate" => Kind::Accelerate,
            "fast_accelerate" => Kind::FastAccelerate,
            "expand" => Kind::Expand,
            k => panic!("{}: unknown kind {k}", c.name),
        };
        let (out, o) = st.stretch(&make(&c.signal), kind);
        let sum: f64 = out.iter().map(|&v| v as f64).sum();
        let energy: f64 = out.iter().map(|&v| v as f64 * v as f64).sum();
        let actual = serde_json::json!({
            "lag": o.lag, "delta": o.delta, "len": out.len(), "background": o.background, "corr": o.corr,
            "sum": sum, "energy": energy,
            "samples": c.expect.samples.iter().map(|&(i, _)| (i, out.get(i).copied())).collect::<Vec<_>>(),
        });
        let e = &c.expect;
        let close = |a: f64, b: f64, t: f64| (a - b).abs() <= t;
        let ok = (o.lag, o.delta, out.len(), o.background) == (e.lag, e.delta, e.len, e.background)
            && close(o.corr, e.corr, tol.corr)
            && close(sum, e.sum, tol.sum)
            && close(energy, e.energy, tol.sum)
            && e.samples.iter().all(|&(i, v)| out.get(i).is_some_and(|&g| close(g as f64, v, tol.sample)));
        if !ok {
            failed.push(format!("{}: got {actual}", c.name));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
