//! Runs the shared data-channel vectors (docs/vectors/datachannel.json), the
//! file the web phone's `session/rtc_stream.ts` runs too: same inputs, same
//! outputs in the same order.
//!
//! After each input the runner drains `poll_output`; while the scenario has
//! said `["full"]`, every `Send` it sees is handed back with `refused`, until
//! `["writable"]`. Bytes are hex strings or `{"fill": byte, "len": n}`.
//! A violation's reason is for people: only `["violation"]` is compared.

use super::streams::*;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct File {
    max_message: usize,
    recv_budget: usize,
    max_peer_streams: usize,
    scenarios: Vec<Scenario>,
}

#[derive(Deserialize)]
struct Scenario {
    name: String,
    #[serde(default)]
    limits: Option<VLimits>,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
struct VLimits {
    recv_budget: usize,
    max_peer_streams: usize,
}

#[derive(Deserialize)]
struct Step {
    #[serde(rename = "in")]
    input: Vec<Value>,
    out: Vec<Value>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn bytes(v: &Value) -> Bytes {
    if let Some(s) = v.as_str() {
        assert!(s.len() % 2 == 0, "odd hex {s}");
        return (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect::<Vec<_>>().into();
    }
    let fill = v["fill"].as_u64().expect("fill") as u8;
    Bytes::from(vec![fill; v["len"].as_u64().expect("len") as usize])
}

fn id(v: &Value) -> ChannelId {
    v.as_u64().expect("channel id")
}

fn code(v: &Value) -> u32 {
    u32::try_from(v.as_u64().expect("code")).expect("u32 code")
}

fn kind(k: Kind) -> &'static str {
    match k {
        Kind::Uni => "uni",
        Kind::Bi => "bi",
        Kind::Gateway => "gw",
        Kind::Datagrams => "dgram",
    }
}

fn by(o: Opener) -> &'static str {
    match o {
        Opener::Us => "us",
        Opener::Them => "them",
    }
}

fn output(o: Output) -> Value {
    match o {
        Output::Opened { id, kind: k, by: b } => json!(["opened", id, kind(k), by(b)]),
        Output::Data { id, bytes } => json!(["data", id, hex(&bytes)]),
        Output::Fin { id } => json!(["fin", id]),
        Output::Reset { id, code } => json!(["reset", id, code]),
        Output::Stopped { id, code } => json!(["stopped", id, code]),
        Output::Datagram(b) => json!(["datagram", hex(&b)]),
        Output::Gateway(m) => json!(["gw", serde_json::from_str::<Value>(&m.to_text()).unwrap()]),
        Output::Closed { id } => json!(["closed", id]),
        Output::Send { id, msg: Message::Binary(b) } => json!(["send", id, hex(&b)]),
        Output::Send { id, msg: Message::Text(t) } => json!(["send-text", id, t]),
        Output::Close { id } => json!(["close", id]),
        Output::Violation(_) => json!(["violation"]),
    }
}

/// The expected outputs with bytes as hex and violations without reasons.
fn normalise(v: &Value) -> Value {
    let a = v.as_array().expect("output is an array");
    match a[0].as_str().expect("output tag") {
        "data" | "send" => json!([a[0], a[1], hex(&bytes(&a[2]))]),
        "datagram" => json!([a[0], hex(&bytes(&a[1]))]),
        "violation" => json!(["violation"]),
        _ => v.clone(),
    }
}

fn error(e: LocalError) -> Value {
    let name = match e {
        LocalError::Unknown => "unknown",
        LocalError::Direction => "direction",
        LocalError::Ended => "ended",
        LocalError::Closed => "closed",
    };
    json!(["error", name])
}

fn apply(s: &mut Streams, full: &mut bool, i: &[Value]) -> Option<LocalError> {
    let local = match i[0].as_str().expect("input tag") {
        "open" => {
            let opener = if i[4] == "us" { Opener::Us } else { Opener::Them };
            s.opened(id(&i[1]), i[2].as_str().unwrap(), i[3].as_str().unwrap(), opener);
            Ok(())
        }
        "binary" => {
            s.received(id(&i[1]), Message::Binary(bytes(&i[2])));
            Ok(())
        }
        "text" => {
            s.received(id(&i[1]), Message::Text(i[2].as_str().unwrap().to_owned()));
            Ok(())
        }
        "closed" => {
            s.closed(id(&i[1]));
            Ok(())
        }
        "write" => s.write(id(&i[1]), bytes(&i[2])),
        "finish" => s.finish(id(&i[1])),
        "reset" => s.reset(id(&i[1]), code(&i[2])),
        "stop" => s.stop(id(&i[1]), code(&i[2])),
        "datagram" => s.send_datagram(bytes(&i[1])),
        "gw" => s.send_gateway(&GwMessage::parse(&i[1].to_string()).expect("a valid gw message")),
        "consumed" => {
            s.consumed(i[1].as_u64().unwrap() as usize);
            Ok(())
        }
        "full" => {
            *full = true;
            Ok(())
        }
        "writable" => {
            *full = false;
            s.writable();
            Ok(())
        }
        t => panic!("unknown input {t}"),
    };
    local.err()
}

#[test]
fn shared_vectors() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/vectors/datachannel.json")).unwrap();
    let file: File = serde_json::from_str(&text).unwrap();
    assert_eq!((file.max_message, file.recv_budget, file.max_peer_streams), (MAX_MESSAGE, RECV_BUDGET, MAX_PEER_STREAMS));
    assert!(file.scenarios.len() >= 20);
    for sc in file.scenarios {
        let limits =
            sc.limits.map_or_else(Limits::default, |l| Limits { recv_budget: l.recv_budget, max_peer_streams: l.max_peer_streams });
        let mut s = Streams::new(limits);
        let mut full = false;
        for (n, step) in sc.steps.iter().enumerate() {
            let mut got = Vec::new();
            if let Some(e) = apply(&mut s, &mut full, &step.input) {
                got.push(error(e));
            }
            while let Some(o) = s.poll_output() {
                let refuse = match &o {
                    Output::Send { id, msg } if full => Some((*id, msg.clone())),
                    _ => None,
                };
                got.push(output(o));
                if let Some((id, msg)) = refuse {
                    s.refused(id, msg);
                }
            }
            let want: Vec<Value> = step.out.iter().map(normalise).collect();
            assert_eq!(got, want, "{}: step {n} {:?}", sc.name, step.input);
        }
    }
}
