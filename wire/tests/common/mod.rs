//! Reading docs/vectors/wire.json: the helpers both vector test files share.
#![allow(dead_code)]

use moq_wire::properties::{self, Value};
use moq_wire::WireError;
use serde_json::Value as J;

pub fn vectors() -> J {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/vectors/wire.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read wire.json")).expect("parse wire.json")
}

pub fn section<'a>(v: &'a J, name: &str) -> &'a Vec<J> {
    v[name].as_array().unwrap_or_else(|| panic!("wire.json has no array {name}"))
}

pub fn hex(v: &J) -> Vec<u8> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a hex string: {v}"));
    assert_eq!(s.len() % 2, 0, "odd hex length: {s}");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex {s}"))).collect()
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// JSON numbers up to 2^53-1, decimal strings above.
pub fn int(v: &J) -> u64 {
    match v {
        J::Number(n) => n.as_u64().unwrap_or_else(|| panic!("not a u64: {v}")),
        J::String(s) => s.parse().unwrap_or_else(|_| panic!("not a u64: {v}")),
        _ => panic!("not an integer: {v}"),
    }
}

pub fn opt_int(v: &J) -> Option<u64> {
    (!v.is_null()).then(|| int(v))
}

pub fn name(e: &J) -> String {
    e["name"].as_str().unwrap_or("?").to_string()
}

/// {type, int} | {type, hex} | {type, text}
pub fn kvp(v: &J) -> (u64, Value) {
    let t = int(&v["type"]);
    if let Some(i) = v.get("int") {
        (t, Value::Int(int(i)))
    } else if let Some(h) = v.get("hex") {
        (t, Value::Bytes(hex(h)))
    } else if let Some(s) = v.get("text") {
        (t, Value::Bytes(s.as_str().expect("text").as_bytes().to_vec()))
    } else {
        panic!("bad key-value pair {v}")
    }
}

pub fn kvps(v: &J) -> Vec<(u64, Value)> {
    v.as_array().map(|a| a.iter().map(kvp).collect()).unwrap_or_default()
}

pub fn props_bytes(v: &J) -> Vec<u8> {
    let mut out = Vec::new();
    properties::encode(&kvps(v), &mut out);
    out
}

pub fn payload_of(o: &J) -> Vec<u8> {
    match o.get("payload_text") {
        Some(t) => t.as_str().expect("payload_text").as_bytes().to_vec(),
        None => hex(&o["payload"]),
    }
}

pub fn kind(e: &WireError) -> &'static str {
    match e {
        WireError::InvalidType(_) => "InvalidType",
        WireError::Truncated => "Truncated",
        WireError::TooLarge(_) => "TooLarge",
        WireError::InvalidStatus(_) => "InvalidStatus",
        WireError::PropertiesOnStatus => "PropertiesOnStatus",
        WireError::ObjectIdOverflow => "ObjectIdOverflow",
        WireError::Malformed(..) => "Malformed",
    }
}
