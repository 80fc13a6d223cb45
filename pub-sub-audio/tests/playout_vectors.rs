//! Runs the shared playout-controller vectors (docs/vectors/playout.json),
//! the same file the web phone's `webapp/src/media/playout.ts` is tested
//! against (docs/design/quality.md §3.3).
//!
//! # Format of playout.json
//! ```text
//! { "about": "...",
//!   "config": { ...every field of playout::Config with its default... },
//!   "scenarios": [ {
//!     "name": "...",
//!     "stretch": {"accelerate": -240, "fast": -480, "expand": 240},  // optional, these defaults
//!     "arrivals": [[n, ms], [n, ms, capture_ms], ...],               // optional
//!     "generate": [{"from": 0, "count": 500, "start_ms": 0, "jitter_ms": 60, "seed": 7,
//!                   "lose": [12, 13], "capture_ms": 1000}],           // optional
//!     "redundant": [[n, ms], ...],                                  // optional: REDUNDANT_FRAME copies
//!     "pulls": {"from": 1, "until": 10000},                          // a pull every 20 ms, both ends included
//!     "checks": [ {"at": 500, "ops": "E0 E1 D2 ...", "stats": {"underruns": 0, "target_ms": [20, 80]}} ] } ] }
//! ```
//! A generated arrival: frame `n = from + i` (i < count, unless listed in
//! `lose`) arrives at `start_ms + 20·i + floor(jitter_ms·u)`, `u` drawn once
//! per frame (lost ones too) from xorshift64 (state `seed·0x9E3779B97F4A7C15 | 1`
//! wrapping; `s ^= s<<13; s ^= s>>7; s ^= s<<17; u = (s>>11)/2^53`, as in
//! bench/src/link.rs), with LOC capture time `capture_ms + 20·i` if
//! `capture_ms` is given. A capture time is passed to the controller in µs
//! (ms·1000). Frame numbers above 2^53 may appear: both runners must refuse
//! them (the TypeScript JSON parser rounds them, still above 2^53).
//!
//! All events are sorted by time, stably: explicit arrivals, then generated
//! ones, then redundant copies, then pulls (so at the same ms arrivals come
//! first). A pull is the shell's loop: while the controller's FIFO holds
//! fewer than 960 samples, take `next()`; log it; `Idle` ends the loop;
//! `Accelerate`/`Expand` are answered with `stretched(n, delta)` from
//! `stretch`; then `pulled(960)`.
//!
//! A check at `at` runs after every event at or before `at`. `ops` (optional)
//! is the log since the previous check, space-separated: `D5` decode, `A5`
//! accelerate, `A5+` fast accelerate, `E5` expand, `F5` frame 5 from 6's FEC,
//! `R5` redundant copy, `C5` conceal, `I` idle. `stats` lists some fields of
//! `playout::Stats` (including `target_ms`, `level_ms`): a number is exact,
//! `[lo, hi]` an inclusive range.

use pub_sub_audio::audio::playout::{Config, Controller, Op, Stats};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct File {
    config: ConfigJson,
    scenarios: Vec<Scenario>,
}

#[derive(Deserialize, Debug, PartialEq)]
struct ConfigJson {
    start_target_ms: u64,
    min_target_ms: u64,
    max_target_ms: u64,
    margin_ms: u64,
    discontinuity_ms: u64,
    level_alpha: f64,
    max_excess_ms: u64,
    hold_conceal_frames: u64,
    buffer_frames: usize,
    far_frames: u64,
    stale_frames: u64,
    stray_run: u32,
}

#[derive(Deserialize)]
struct Scenario {
    name: String,
    #[serde(default)]
    stretch: Option<Stretch>,
    #[serde(default)]
    arrivals: Vec<Vec<u64>>,
    #[serde(default)]
    generate: Vec<Generate>,
    #[serde(default)]
    redundant: Vec<(u64, u64)>,
    pulls: Pulls,
    checks: Vec<Check>,
}

#[derive(Deserialize, Clone, Copy)]
struct Stretch {
    accelerate: i64,
    fast: i64,
    expand: i64,
}

#[derive(Deserialize)]
struct Generate {
    from: u64,
    count: u64,
    start_ms: u64,
    #[serde(default)]
    jitter_ms: u64,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    lose: Vec<u64>,
    #[serde(default)]
    capture_ms: Option<u64>,
}

#[derive(Deserialize)]
struct Pulls {
    from: u64,
    until: u64,
}

#[derive(Deserialize)]
struct Check {
    at: u64,
    #[serde(default)]
    ops: Option<String>,
    #[serde(default)]
    stats: BTreeMap<String, Value>,
}

enum Ev {
    Object(u64, Option<u64>),
    Redundant(u64),
    Pull,
}

fn token(op: Op) -> String {
    match op {
        Op::Decode(n) => format!("D{n}"),
        Op::Accelerate { n, fast: false } => format!("A{n}"),
        Op::Accelerate { n, fast: true } => format!("A{n}+"),
        Op::Expand(n) => format!("E{n}"),
        Op::DecodeFec { lost, .. } => format!("F{lost}"),
        Op::DecodeRedundant(n) => format!("R{n}"),
        Op::Conceal(n) => format!("C{n}"),
        Op::Idle => "I".into(),
    }
}

fn field(s: &Stats, name: &str) -> u64 {
    match name {
        "played" => s.played,
        "fec" => s.fec,
        "redundant" => s.redundant,
        "concealed" => s.concealed,
        "concealed_ms" => s.concealed_ms,
        "underruns" => s.underruns,
        "late" => s.late,
        "skipped" => s.skipped,
        "refused" => s.refused,
        "resets" => s.resets,
        "accel_ms" => s.accel_ms,
        "expand_ms" => s.expand_ms,
        "target_ms" => s.target_ms,
        "level_ms" => s.level_ms,
        f => panic!("unknown stats field {f}"),
    }
}

fn events(s: &Scenario) -> Vec<(u64, Ev)> {
    let mut ev = Vec::new();
    for a in &s.arrivals {
        assert!(a.len() == 2 || a.len() == 3, "{}: arrival {a:?}", s.name);
        ev.push((a[1], Ev::Object(a[0], a.get(2).map(|c| c * 1000))));
    }
    for g in &s.generate {
        let mut x = g.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for i in 0..g.count {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            let n = g.from + i;
            if !g.lose.contains(&n) {
                let t = g.start_ms + 20 * i + (g.jitter_ms as f64 * u) as u64;
                ev.push((t, Ev::Object(n, g.capture_ms.map(|c| (c + 20 * i) * 1000))));
            }
        }
    }
    for &(n, t) in &s.redundant {
        ev.push((t, Ev::Redundant(n)));
    }
    let mut t = s.pulls.from;
    while t <= s.pulls.until {
        ev.push((t, Ev::Pull));
        t += 20;
    }
    ev.sort_by_key(|e| e.0);
    ev
}

#[test]
fn shared_vectors() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/vectors/playout.json")).unwrap();
    let file: File = serde_json::from_str(&text).unwrap();
    let c = Config::default();
    let ours = ConfigJson {
        start_target_ms: c.start_target_ms,
        min_target_ms: c.min_target_ms,
        max_target_ms: c.max_target_ms,
        margin_ms: c.margin_ms,
        discontinuity_ms: c.discontinuity_ms,
        level_alpha: c.level_alpha,
        max_excess_ms: c.max_excess_ms,
        hold_conceal_frames: c.hold_conceal_frames,
        buffer_frames: c.buffer_frames,
        far_frames: c.far_frames,
        stale_frames: c.stale_frames,
        stray_run: c.stray_run,
    };
    assert_eq!(file.config, ours, "the vectors pin the defaults: change both");
    assert!(file.scenarios.len() >= 12);
    let mut failed = Vec::new();
    for s in &file.scenarios {
        let st = s.stretch.unwrap_or(Stretch { accelerate: -240, fast: -480, expand: 240 });
        let mut ctl = Controller::new(c);
        let mut log: Vec<String> = Vec::new();
        let mut ev = events(s).into_iter().peekable();
        for chk in &s.checks {
            while let Some((t, e)) = ev.next_if(|(t, _)| *t <= chk.at) {
                match e {
                    Ev::Object(n, cap) => {
                        ctl.on_object(n, cap, t);
                    }
                    Ev::Redundant(n) => {
                        ctl.on_redundant(n, t);
                    }
                    Ev::Pull => {
                        while ctl.fifo_samples() < 960 {
                            let op = ctl.next();
                            log.push(token(op));
                            match op {
                                Op::Idle => break,
                                Op::Accelerate { n, fast } => ctl.stretched(n, if fast { st.fast } else { st.accelerate }),
                                Op::Expand(n) => ctl.stretched(n, st.expand),
                                _ => {}
                            }
                        }
                        ctl.pulled(960);
                    }
                }
            }
            let stats = ctl.stats();
            let mut bad = Vec::new();
            if let Some(ops) = &chk.ops {
                let got = log.join(" ");
                if *ops != got {
                    bad.push(format!("ops: want \"{ops}\" got \"{got}\""));
                }
            }
            for (k, v) in &chk.stats {
                let got = field(&stats, k);
                let ok = match v {
                    Value::Number(x) => x.as_u64() == Some(got),
                    Value::Array(r) if r.len() == 2 => (r[0].as_u64().unwrap()..=r[1].as_u64().unwrap()).contains(&got),
                    _ => panic!("{}: bad stats value {k}: {v}", s.name),
                };
                if !ok {
                    bad.push(format!("{k}: want {v} got {got}"));
                }
            }
            if !bad.is_empty() {
                failed.push(format!("{} @ {} ms: {}\n    stats {stats:?}\n    ops {}", s.name, chk.at, bad.join("; "), log.join(" ")));
            }
            log.clear();
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
