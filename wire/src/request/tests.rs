//! Draft-18 conformance of request decoding: each test cites the section
//! whose MUST it pins.

use super::*;
use crate::session_error::{KEY_VALUE_FORMATTING_ERROR, PROTOCOL_VIOLATION};
use bytes::Bytes;

fn frame(kind: u64, payload: &[u8]) -> Frame {
    Frame { kind, payload: Bytes::copy_from_slice(payload), version: crate::Version::Draft18 }
}

/// SUBSCRIBE, Request ID 0, namespace ("a"), name "b", then `params`
/// (count first).
fn subscribe(params: &[u8]) -> Frame {
    let mut p = vec![0x00, 0x01, 0x01, b'a', 0x01, b'b'];
    p.extend_from_slice(params);
    frame(kind::SUBSCRIBE, &p)
}

fn code(f: &Frame) -> u32 {
    decode(f).expect_err("must be rejected").code
}

#[test]
fn empty_namespace_is_well_formed_s2_4_1() {
    // §2.4.1: "between 0 and 32 Track Namespace Fields".
    let f = frame(kind::SUBSCRIBE, &[0x00, 0x00, 0x01, b't', 0x00]);
    match decode(&f).unwrap() {
        Message::Subscribe(s) => assert!(s.track_namespace.fields.is_empty()),
        other => panic!("{other:?}"),
    }
    for (k, p) in [
        (kind::PUBLISH_NAMESPACE, &[0x02, 0x00, 0x00][..]),
        (kind::TRACK_STATUS, &[0x02, 0x00, 0x00, 0x00][..]),
        (kind::PUBLISH, &[0x02, 0x00, 0x01, b't', 0x05, 0x00][..]),
        (kind::FETCH, &[0x02, 0x01, 0x00, 0x01, b't', 0x00, 0x00, 0x01, 0x00, 0x00][..]),
    ] {
        decode(&frame(k, p)).unwrap_or_else(|e| panic!("{k:#x}: {e}"));
    }
    // Still at most 32 fields, none empty.
    assert_eq!(code(&frame(kind::SUBSCRIBE, &[0x00, 0x01, 0x00, 0x01, b't', 0x00])), PROTOCOL_VIOLATION);
}

#[test]
fn unknown_parameter_is_a_protocol_violation_s10_2() {
    // Type 0x0C is not defined by draft-18: it cannot be skipped.
    assert_eq!(code(&subscribe(&[0x01, 0x0c, 0x00])), PROTOCOL_VIOLATION);
    assert_eq!(code(&subscribe(&[0x01, 0x7f, 0x01, 0x00])), PROTOCOL_VIOLATION);
}

#[test]
fn parameter_outside_its_messages_is_a_protocol_violation_s10_2_1() {
    // FORWARD in TRACK_STATUS; EXPIRES in SUBSCRIBE.
    assert_eq!(code(&frame(kind::TRACK_STATUS, &[0x00, 0x01, 0x01, b'a', 0x01, b'b', 0x01, 0x10, 0x01])), PROTOCOL_VIOLATION);
    assert_eq!(code(&subscribe(&[0x01, 0x08, 0x00])), PROTOCOL_VIOLATION);
}

#[test]
fn repeated_parameter_is_a_protocol_violation_but_tokens_may_repeat_s10_2() {
    assert_eq!(code(&subscribe(&[0x02, 0x10, 0x01, 0x00, 0x01])), PROTOCOL_VIOLATION);
    // AUTHORIZATION TOKEN twice (USE_VALUE, type 0, "x"), delta 0 (§10.2.2).
    decode(&subscribe(&[0x02, 0x03, 0x03, 0x03, 0x00, b'x', 0x00, 0x03, 0x03, 0x00, b'y'])).unwrap();
}

#[test]
fn group_order_outside_1_2_is_a_protocol_violation_s10_2_8() {
    for v in [0u8, 3, 255] {
        assert_eq!(code(&subscribe(&[0x01, 0x22, v])), PROTOCOL_VIOLATION, "GROUP_ORDER {v}");
    }
    decode(&subscribe(&[0x01, 0x22, 0x02])).unwrap();
}

#[test]
fn forward_outside_0_1_is_a_protocol_violation_s10_2_12() {
    assert_eq!(code(&subscribe(&[0x01, 0x10, 0x02])), PROTOCOL_VIOLATION);
}

#[test]
fn unknown_filter_type_is_a_protocol_violation_s5_1_2() {
    for t in [0u8, 5, 0x3f] {
        assert_eq!(code(&subscribe(&[0x01, 0x21, 0x01, t])), PROTOCOL_VIOLATION, "filter type {t}");
    }
    // A known type whose fields are missing or followed by more: §1.4.3.
    assert_eq!(code(&subscribe(&[0x01, 0x21, 0x01, 0x03])), KEY_VALUE_FORMATTING_ERROR);
    assert_eq!(code(&subscribe(&[0x01, 0x21, 0x02, 0x02, 0x00])), KEY_VALUE_FORMATTING_ERROR);
    // AbsoluteRange whose End Group is beyond 2^64-1.
    let mut p = vec![0x01, 0x21, 0x0c, 0x04, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x01];
    assert_eq!(code(&subscribe(&p)), PROTOCOL_VIOLATION);
    p[13..].copy_from_slice(&[0x00, 0x00]);
    decode(&subscribe(&p)).unwrap();
}

#[test]
fn key_value_limits_are_protocol_violations_s1_4_3() {
    // Length 2^16 (vi64 0xc1 0x00 0x00), and a Type beyond 2^64-1.
    assert_eq!(code(&subscribe(&[0x01, 0x03, 0xc1, 0x00, 0x00])), PROTOCOL_VIOLATION);
    // FORWARD (0x10), then a delta of 2^64-1 on top of it.
    let mut p = vec![0x02, 0x10, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];
    let r = decode(&subscribe(&p)).unwrap_err();
    assert_eq!((r.code, r.reason.as_str()), (PROTOCOL_VIOLATION, "parameter type beyond 2^64-1"));
    p.truncate(1);
    assert_eq!(code(&subscribe(&p)), PROTOCOL_VIOLATION, "ends inside the parameters");
}

#[test]
fn request_update_reads_track_namespace_prefix_as_a_namespace_s10_2_14() {
    // REQUEST_UPDATE id 4, one parameter: 0x34 = ("a", "bc").
    let f = frame(kind::REQUEST_UPDATE, &[0x04, 0x01, 0x34, 0x02, 0x01, b'a', 0x02, b'b', b'c']);
    match f.response().unwrap() {
        crate::control::Response::RequestUpdate { id, params } => {
            assert_eq!(id, 4);
            check_params(Scope::Update(Updated::NamespaceSubscription), &params).unwrap();
            assert_eq!(check_params(Scope::Update(Updated::Subscription), &params).unwrap_err().code, PROTOCOL_VIOLATION);
        }
        other => panic!("{other:?}"),
    }
    // EXPIRES is never sent in REQUEST_UPDATE (§10.2.10: REQUEST_UPDATE_OK only).
    assert!(frame(kind::REQUEST_UPDATE, &[0x04, 0x01, 0x08, 0x00]).response().is_err());
}

#[test]
fn reserved_namespaces_s3_2() {
    assert!(is_reserved_unknown(Some(b".")));
    assert!(is_reserved_unknown(Some(b".session")));
    assert!(!is_reserved_unknown(Some(b".other")), "unrecognized reserved namespaces go to the application (§3.2.1)");
    assert!(!is_reserved_unknown(None));
}

#[test]
fn empty_namespace_requests_round_trip_s2_4_1() {
    let sub = Message::Subscribe(message::Subscribe {
        id: 6,
        track_namespace: TrackNamespace::new(),
        track_name: "t".into(),
        params: KeyValuePairs::default(),
    });
    let b = crate::control::encode_request(&sub).unwrap();
    assert_eq!(&b[..], &[0x03, 0x00, 0x05, 0x06, 0x00, 0x01, b't', 0x00]);
    let mut buf = bytes::BytesMut::from(&b[..]);
    let f = crate::control::take_frame(&mut buf).unwrap().unwrap();
    assert_eq!(format!("{:?}", f.request().unwrap()), format!("{sub:?}"));
}
