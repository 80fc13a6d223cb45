//! The FETCH_HEADER stream vectors of docs/vectors/wire.json, read back by
//! moq-wire's one fetch stream parser (`fetch::FetchParser`): every stream in
//! the "fetch" section (what `FetchWriter` writes and the elided-field / End
//! of Range serializations it never writes), whole and byte by byte, and every
//! "malformed" entry whose parser is "fetch". (tests/vectors.rs checks the
//! writer against the same section.)

use moq_wire::coding::Location;
use moq_wire::fetch::{FetchItem, FetchParser};
use moq_wire::WireError;
use serde_json::Value as J;

fn vectors() -> J {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/vectors/wire.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read wire.json")).expect("parse wire.json")
}

fn hex(v: &J) -> Vec<u8> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a hex string: {v}"));
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn int(v: &J) -> u64 {
    match v {
        J::Number(n) => n.as_u64().expect("u64"),
        J::String(s) => s.parse().expect("u64"),
        _ => panic!("not an integer: {v}"),
    }
}

/// Object Properties as wire bytes, encoded by moq-wire's properties codec.
fn props(v: &J) -> Vec<u8> {
    let pairs: Vec<_> = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    let t = int(&p["type"]);
                    match (p.get("int"), p.get("hex"), p.get("text")) {
                        (Some(i), _, _) => (t, moq_wire::properties::Value::Int(int(i))),
                        (_, Some(h), _) => (t, moq_wire::properties::Value::Bytes(hex(h))),
                        (_, _, Some(s)) => (t, moq_wire::properties::Value::Bytes(s.as_str().expect("text").as_bytes().to_vec())),
                        _ => panic!("bad property {p}"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    moq_wire::properties::encode(&pairs, &mut out);
    out
}

fn parse(bytes: &[u8], byte_by_byte: bool) -> Result<(u64, Vec<FetchItem>), WireError> {
    let mut p = FetchParser::new(1 << 20);
    let mut items = Vec::new();
    let chunks: Vec<&[u8]> = if byte_by_byte { bytes.chunks(1).collect() } else { vec![bytes] };
    for c in chunks {
        p.push(c);
        while let Some(i) = p.next()? {
            items.push(i);
        }
    }
    p.finish()?;
    Ok((p.header()?.expect("header"), items))
}

#[test]
fn fetch_streams_parse_to_their_items() {
    let v = vectors();
    let all = v["fetch"].as_array().expect("fetch");
    assert!(all.iter().any(|e| e["writer"].as_bool() == Some(false)), "no vector with elided fields");
    for e in all {
        let n = e["name"].as_str().unwrap_or("?");
        let bytes = hex(&e["hex"]);
        for byte_by_byte in [false, true] {
            let (request_id, items) = parse(&bytes, byte_by_byte).unwrap_or_else(|err| panic!("{n}: {err}"));
            assert_eq!(request_id, int(&e["request_id"]), "{n}: request id");
            let want = e["items"].as_array().expect("items");
            assert_eq!(items.len(), want.len(), "{n}: item count");
            for (got, w) in items.iter().zip(want) {
                match got {
                    FetchItem::EndOfRange { end, unknown } => {
                        let r = w["end_of_range"].as_array().unwrap_or_else(|| panic!("{n}: unexpected end of range"));
                        assert_eq!(*end, Location::new(int(&r[0]), int(&r[1])), "{n}");
                        assert_eq!(*unknown, w["unknown"].as_bool().expect("unknown"), "{n}");
                    }
                    FetchItem::Object(o) => {
                        assert_eq!((o.group_id, o.object_id), (int(&w["group_id"]), int(&w["object_id"])), "{n}");
                        assert_eq!(o.subgroup_id, (!w["subgroup_id"].is_null()).then(|| int(&w["subgroup_id"])), "{n}: subgroup");
                        assert_eq!(u64::from(o.publisher_priority), int(&w["publisher_priority"]), "{n}: priority");
                        assert_eq!(o.properties.to_vec(), props(&w["properties"]), "{n}: properties");
                        let payload = match w.get("payload_text") {
                            Some(t) => t.as_str().expect("payload_text").as_bytes().to_vec(),
                            None => hex(&w["payload"]),
                        };
                        assert_eq!(o.payload.to_vec(), payload, "{n}: payload");
                    }
                }
            }
        }
    }
}

#[test]
fn malformed_fetch_streams_are_refused() {
    let v = vectors();
    let mut seen = 0;
    for e in v["malformed"].as_array().expect("malformed").iter().filter(|e| e["parser"] == "fetch") {
        let n = e["name"].as_str().unwrap_or("?");
        let err = parse(&hex(&e["hex"]), false).expect_err(n);
        let kind = match err {
            WireError::InvalidType(_) => "InvalidType",
            WireError::Truncated => "Truncated",
            WireError::TooLarge(_) => "TooLarge",
            WireError::InvalidStatus(_) => "InvalidStatus",
            WireError::PropertiesOnStatus => "PropertiesOnStatus",
            WireError::ObjectIdOverflow => "ObjectIdOverflow",
            WireError::Malformed(..) => "Malformed",
        };
        assert_eq!(kind, e["error"].as_str().expect("error"), "{n}: {err}");
        seen += 1;
    }
    assert!(seen >= 3);
}
