//! Runs docs/vectors/adapt.json — the listener's loss meter and the sender's
//! adaptation policy (docs/design/quality.md §4.1, §4.2) — against
//! audio/feedback.rs and audio/adapt.rs. The web phone runs the same file
//! (webapp/test/adapt_vectors.test.ts).

use pub_sub_audio::audio::adapt::{adapt, AdaptState, EncoderSettings};
use pub_sub_audio::audio::feedback::{LossMeter, Report};
use pub_sub_audio::audio::playout::Stats;
use serde_json::Value as J;

fn vectors() -> J {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/vectors/adapt.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read adapt.json")).expect("parse adapt.json")
}

fn u(v: &J) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

fn settings(v: &J) -> EncoderSettings {
    EncoderSettings {
        loss_perc: u(&v["loss_perc"]) as u8,
        bitrate: u(&v["bitrate"]) as u32,
        fec: v["fec"].as_bool().expect("fec"),
        k: u(&v["k"]) as u8,
    }
}

#[test]
fn initial_settings() {
    assert_eq!(EncoderSettings::default(), settings(&vectors()["initial"]));
}

#[test]
fn loss_meter() {
    let v = vectors();
    let cases = v["meter"].as_array().expect("meter");
    assert!(cases.len() >= 10);
    for c in cases {
        let name = c["name"].as_str().unwrap_or("?");
        let mut m = LossMeter::new();
        for e in c["events"].as_array().expect("events") {
            if let Some(a) = e.get("arrive") {
                for x in a.as_array().expect("arrive") {
                    m.on_arrival(u(&x[0]), u(&x[1]));
                }
                continue;
            }
            let s = &e["stats"];
            let stats = Stats {
                late: u(&s["late"]),
                fec: u(&s["fec"]),
                redundant: u(&s["redundant"]),
                concealed_ms: u(&s["concealed_ms"]),
                target_ms: u(&s["target_ms"]),
                ..Stats::default()
            };
            let want: Option<Report> = serde_json::from_value(e["expect"].clone()).expect("expect");
            assert_eq!(m.report(&stats, u(&e["at"])), want, "{name} at {}", e["at"]);
        }
    }
}

#[test]
fn policy() {
    let v = vectors();
    let cases = v["adapt"].as_array().expect("adapt");
    assert!(cases.len() >= 10);
    for c in cases {
        let name = c["name"].as_str().unwrap_or("?");
        let mut st = AdaptState::default();
        for s in c["steps"].as_array().expect("steps") {
            let rx = Report { loss: u(&s["rx"]["loss"]), burst: u(&s["rx"]["burst"]), ..Report::default() };
            assert_eq!(adapt(&rx, &mut st, u(&s["at"])), settings(&s["expect"]), "{name} at {}", s["at"]);
        }
    }
}
