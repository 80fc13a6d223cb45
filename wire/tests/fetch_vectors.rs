//! The FETCH_HEADER stream vectors of docs/vectors/wire.json, read back by
//! moq-wire's one fetch stream parser (`fetch::FetchParser`): every stream in
//! the "fetch" section (what `FetchWriter` writes and the elided-field / End
//! of Range serializations it never writes), whole and byte by byte, and every
//! "malformed" entry whose parser is "fetch". (tests/vectors.rs checks the
//! writer against the same section.)

use moq_wire::coding::Location;
use moq_wire::fetch::{FetchItem, FetchParser};
use moq_wire::WireError;

mod common;
use common::*;

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
                        assert_eq!(o.properties.to_vec(), props_bytes(&w["properties"]), "{n}: properties");
                        assert_eq!(o.payload.to_vec(), payload_of(w), "{n}: payload");
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
        assert_eq!(kind(&err), e["error"].as_str().expect("error"), "{n}: {err}");
        seen += 1;
    }
    assert!(seen >= 3);
}
