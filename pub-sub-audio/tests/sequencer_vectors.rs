//! Runs the shared event-sequencer vectors (docs/vectors/sequencer.json),
//! the same file the web phone's TypeScript sequencer is tested against
//! (webapp/test/sequencer.test.ts): same deliveries, FETCHes, wake times and
//! next group after every step.

use bytes::Bytes;
use pub_sub_audio::call::sequencer::{self, EventSequencer, Output};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct File {
    timers: Timers,
    everything: u64,
    scenarios: Vec<Scenario>,
}

#[derive(Deserialize, Debug, PartialEq)]
struct Timers {
    gap_wait: u64,
    max_hole: u64,
    quiet_wait: u64,
}

#[derive(Deserialize)]
struct Scenario {
    name: String,
    start: Start,
    expect: StartExpect,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
struct Start {
    at: u64,
    joining: Option<u64>,
}

#[derive(Deserialize)]
struct StartExpect {
    fetches: Vec<Value>,
}

/// Exactly one of `object`, `fetched`, `step`.
#[derive(Deserialize)]
struct Step {
    at: u64,
    #[serde(default)]
    object: Option<(u64, String)>,
    #[serde(default)]
    fetched: Option<Fetched>,
    #[serde(default)]
    step: bool,
    expect: Expect,
}

#[derive(Deserialize)]
struct Fetched {
    from: u64,
    to: u64,
    objects: Vec<(u64, String)>,
}

#[derive(Deserialize)]
struct Expect {
    delivered: Vec<(u64, String)>,
    fetches: Vec<Value>,
    wake: Option<u64>,
    next: u64,
}

/// The outputs so far, as the vectors write them: deliveries and FETCHes
/// ("joining" or [from, to]). Skips are not in the vectors (the TypeScript
/// copy does not report them); `next` checks where a skip ended.
fn take(seq: &mut EventSequencer) -> (Vec<(u64, String)>, Vec<Value>) {
    let (mut delivered, mut fetches) = (Vec::new(), Vec::new());
    while let Some(o) = seq.poll_output() {
        match o {
            Output::Deliver { group, payload } => delivered.push((group, String::from_utf8(payload.to_vec()).unwrap())),
            Output::FetchJoining => fetches.push(json!("joining")),
            Output::FetchRange { from, to } => fetches.push(json!([from, to])),
            Output::Skipped { from, to } => assert!(from < to, "skipped an empty range {from}..{to}"),
        }
    }
    (delivered, fetches)
}

fn bytes(p: String) -> Bytes {
    Bytes::from(p.into_bytes())
}

#[test]
fn shared_vectors() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/vectors/sequencer.json")).unwrap();
    let file: File = serde_json::from_str(&text).unwrap();
    let timers = Timers { gap_wait: sequencer::GAP_WAIT_MS, max_hole: sequencer::MAX_HOLE_MS, quiet_wait: sequencer::QUIET_WAIT_MS };
    assert_eq!(file.timers, timers);
    assert_eq!(file.everything, sequencer::EVERYTHING);
    assert!(file.scenarios.len() >= 20);
    for s in file.scenarios {
        let mut seq = EventSequencer::new(s.start.joining, s.start.at);
        assert_eq!(take(&mut seq), (vec![], s.expect.fetches), "{}: start", s.name);
        for (i, step) in s.steps.into_iter().enumerate() {
            let wake = match (step.object, step.fetched, step.step) {
                (Some((g, p)), None, false) => seq.object(g, bytes(p), step.at),
                (None, Some(f), false) => seq.fetched(f.from, f.to, f.objects.into_iter().map(|(g, p)| (g, bytes(p))), step.at),
                (None, None, true) => seq.step(step.at),
                _ => panic!("{}: step {i} needs exactly one of object / fetched / step", s.name),
            };
            let what = format!("{}: step {i} at {} ms", s.name, step.at);
            assert_eq!(take(&mut seq), (step.expect.delivered, step.expect.fetches), "{what}");
            assert_eq!(wake, step.expect.wake, "{what}: wake");
            assert_eq!(seq.expected(), step.expect.next, "{what}: next");
        }
    }
}
