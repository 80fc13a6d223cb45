//! Runs the shared call-model vectors (docs/vectors/calls.json), the same
//! file the web phone's TypeScript state machine is tested against.

use pub_sub_audio::call::{Call, Input, Output, Timers};
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    timers: Timers,
    scenarios: Vec<Scenario>,
}

#[derive(Deserialize)]
struct Start {
    role: String,
    sid: String,
    me: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    display: String,
    #[serde(default)]
    busy: bool,
    at: u64,
}

#[derive(Deserialize)]
struct Step {
    at: u64,
    #[serde(default)]
    input: Option<Input>,
    #[serde(default)]
    timeout: bool,
    expect: Vec<Output>,
}

#[derive(Deserialize)]
struct Scenario {
    name: String,
    start: Start,
    expect: Vec<Output>,
    steps: Vec<Step>,
}

#[test]
fn shared_vectors() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/vectors/calls.json")).unwrap();
    let file: File = serde_json::from_str(&text).unwrap();
    assert!(file.scenarios.len() >= 10);
    for s in file.scenarios {
        let st = &s.start;
        let (mut call, out) = match st.role.as_str() {
            "caller" => Call::outgoing(&st.sid, &st.me, &st.to, &st.display, file.timers, st.at),
            _ => Call::incoming(&st.sid, &st.me, st.busy, file.timers, st.at),
        };
        assert_eq!(out, s.expect, "{}: start", s.name);
        for (i, step) in s.steps.into_iter().enumerate() {
            let out = match (step.input, step.timeout) {
                (Some(input), false) => call.handle(input, step.at),
                (None, true) => {
                    assert!(call.poll_timeout().is_some_and(|t| t <= step.at), "{}: step {i}: no timer due at {}", s.name, step.at);
                    call.handle_timeout(step.at)
                }
                _ => panic!("{}: step {i} needs exactly one of input / timeout", s.name),
            };
            assert_eq!(out, step.expect, "{}: step {i} at {} ms", s.name, step.at);
        }
    }
}
