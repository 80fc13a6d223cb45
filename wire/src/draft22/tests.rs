//! Draft-22 vectors. The byte strings were produced with aiomoqt 0.13.3's
//! draft-22 codec (docs/DRAFT22.md), so they check this codec against a
//! foreign one, not against itself.

use super::*;
use crate::control::take_frame_as;
use crate::Version;
use moq_transport::coding::{TrackNamespace, Value};
use moq_transport::message::FilterType;

fn frame(bytes: &[u8]) -> Frame {
    let mut buf = BytesMut::from(bytes);
    let f = take_frame_as(&mut buf, Version::Draft22).unwrap().unwrap();
    assert!(buf.is_empty());
    f
}

use bytes::BytesMut;

#[test]
fn goaway_has_no_request_id() {
    let g = GoAway { uri: String::new(), timeout_ms: 0, request_id: Some(1) };
    assert_eq!(&g.encode_as(Version::Draft22)[..], &[0x10, 0x00, 0x02, 0x00, 0x00]);
    assert_eq!(&g.encode_as(Version::Draft18)[..], &[0x10, 0x00, 0x03, 0x00, 0x00, 0x01]);
    assert!(frame(&[0x10, 0x00, 0x03, 0x00, 0x00, 0x01]).goaway().is_err());
    assert_eq!(frame(&[0x10, 0x00, 0x02, 0x00, 0x00]).goaway().unwrap().request_id, None);
}

#[test]
fn publish_ok_is_a_request_ok_with_expires_only() {
    let mut params = KeyValuePairs::new();
    params.set_intvalue(param::FORWARD, 1);
    params.set_intvalue(param::GROUP_ORDER, 1);
    assert_eq!(&Response::PublishOk(params.clone()).encode_as(Version::Draft22)[..], &[0x07, 0x00, 0x01, 0x00]);
    params.set_intvalue(param::EXPIRES, 5);
    assert_eq!(&Response::PublishOk(params).encode_as(Version::Draft22)[..], &[0x07, 0x00, 0x03, 0x01, 0x08, 0x05]);
}

#[test]
fn subscribe_ok_leaves_out_what_draft22_does_not_allow_there() {
    let mut params = KeyValuePairs::new();
    params.set_intvalue(param::GROUP_ORDER, 1);
    params.set_intvalue(param::EXPIRES, 0);
    params.set_bytesvalue(param::LARGEST_OBJECT, vec![0x03, 0x04]);
    let r = Response::SubscribeOk { alias: 2, params, properties: Bytes::new() };
    // Alias 2, two parameters: EXPIRES 0, LARGEST_OBJECT {3, 4}.
    let bytes = r.encode_as(Version::Draft22);
    assert_eq!(&bytes[..], &[0x04, 0x00, 0x07, 0x02, 0x02, 0x08, 0x00, 0x01, 0x03, 0x04]);
    match frame(&bytes).response().unwrap() {
        Response::SubscribeOk { alias: 2, params, .. } => assert_eq!(params.0.len(), 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_reply_with_a_parameter_out_of_scope_is_refused() {
    // SUBSCRIBE_OK alias 1 carrying GROUP_ORDER 1.
    assert!(frame(&[0x04, 0x00, 0x04, 0x01, 0x01, 0x22, 0x01]).response().is_err());
    // FETCH_OK with one parameter.
    assert!(frame(&[0x18, 0x00, 0x06, 0x00, 0x05, 0x04, 0x01, 0x08, 0x00]).response().is_err());
}

#[test]
fn publish_state_notify() {
    let f = frame(&[0x22, 0x00, 0x06, 0x02, 0x09, 0x03, 0x04, 0x07, 0x00]);
    match f.response().unwrap() {
        Response::PublishStateNotify(p) => {
            assert_eq!(p.0.len(), 2);
            assert_eq!(p.0[1].key, param::FORWARD);
        }
        other => panic!("{other:?}"),
    }
    assert!(Response::PublishStateNotify(KeyValuePairs::new()).encode().is_empty());
}

#[test]
fn fetch_of_a_whole_group() {
    let bytes = [0x16, 0x00, 0x0d, 0x04, 0x01, 0x02, b'n', b's', 0x01, b't', 0x01, 0x21, 0x03, 0x05, 0x00, 0x00];
    let msg = frame(&bytes).request().unwrap();
    let Message::Fetch(m) = &msg else { panic!("{msg:?}") };
    let sf = m.standalone_fetch.as_ref().unwrap();
    assert_eq!((m.id, m.fetch_type), (4, FetchType::Standalone));
    assert_eq!((sf.start_location, sf.end_location), (Location::new(5, 0), Location::new(5, 0)));
    assert_eq!(&encode_request(&msg).unwrap()[..], &bytes);
    assert_eq!(unsupported(&msg), None);
}

#[test]
fn fetch_with_no_filter_is_the_whole_track_and_a_relative_one_is_refused() {
    let msg = frame(&[0x16, 0x00, 0x07, 0x00, 0x01, 0x01, b'n', 0x01, b't', 0x00]).request().unwrap();
    let Message::Fetch(m) = &msg else { panic!() };
    assert_eq!(m.standalone_fetch.as_ref().unwrap().start_location, Location::new(0, 0));
    let msg = frame(&[0x16, 0x00, 0x09, 0x00, 0x01, 0x01, b'n', 0x01, b't', 0x01, 0x21, 0x05]).request().unwrap();
    assert_eq!(unsupported(&msg).map(|(c, _)| c), Some(0x3));
}

#[test]
fn fetch_ok_end_is_inclusive() {
    let r = Response::FetchOk {
        end_of_track: false,
        end_location: Location::new(5, 5),
        params: KeyValuePairs::new(),
        properties: Bytes::new(),
    };
    assert_eq!(&r.encode_as(Version::Draft22)[..], &[0x18, 0x00, 0x04, 0x00, 0x05, 0x04, 0x00]);
    assert_eq!(&r.encode_as(Version::Draft18)[..], &[0x18, 0x00, 0x04, 0x00, 0x05, 0x05, 0x00]);
    match frame(&[0x18, 0x00, 0x04, 0x00, 0x05, 0x04, 0x00]).response().unwrap() {
        Response::FetchOk { end_location, .. } => assert_eq!(end_location, Location::new(5, 5)),
        other => panic!("{other:?}"),
    }
}

fn filter_of(msg: &Message) -> Option<SubscriptionFilterView> {
    let Message::Subscribe(m) = msg else { panic!() };
    m.params.0.iter().find(|p| p.key == param::SUBSCRIPTION_FILTER).map(|p| match &p.value {
        Value::BytesValue(v) => {
            let f = crate::request::subscription_filter(v).unwrap();
            (f.filter_type, f.start_location, f.end_group_id)
        }
        _ => panic!(),
    })
}

type SubscriptionFilterView = (FilterType, Option<Location>, Option<u64>);

#[test]
fn location_filters_map_onto_draft18_filters() {
    // SUBSCRIBE id 0, ns "ns", name "t", one LOCATION_FILTER.
    let sub = |lf: &[u8]| {
        let mut b = vec![0x00, 0x01, 0x02, b'n', b's', 0x01, b't', 0x01, 0x21];
        b.extend_from_slice(lf);
        let mut out = vec![0x03, 0x00, b.len() as u8];
        out.extend_from_slice(&b);
        frame(&out).request().unwrap()
    };
    assert_eq!(filter_of(&sub(&[0x05])), Some((FilterType::LargestObject, None, None)));
    assert_eq!(filter_of(&sub(&[0x01, 0x00])), Some((FilterType::NextGroupStart, None, None)));
    assert_eq!(filter_of(&sub(&[0x02, 0x05, 0x01])), Some((FilterType::AbsoluteStart, Some(Location::new(5, 1)), None)));
    assert_eq!(filter_of(&sub(&[0x03, 0x05, 0x01, 0x02])), Some((FilterType::AbsoluteRange, Some(Location::new(5, 1)), Some(2))));
    assert_eq!(filter_of(&sub(&[0x00])), None);
    // No draft-18 form: refused with NOT_SUPPORTED, not served differently.
    for lf in [&[0x01, 0x02][..], &[0x04, 0x05, 0x01, 0x02, 0x03][..]] {
        let m = sub(lf);
        assert_eq!(filter_of(&m), None);
        assert_eq!(unsupported(&m).map(|(c, _)| c), Some(0x3), "{lf:?}");
    }
    // An unknown type is a PROTOCOL_VIOLATION.
    let mut buf = BytesMut::from(&[0x03, 0x00, 0x0a, 0x00, 0x01, 0x02, b'n', b's', 0x01, b't', 0x01, 0x21, 0x06][..]);
    let f = take_frame_as(&mut buf, Version::Draft22).unwrap().unwrap();
    assert_eq!(crate::request::decode(&f).unwrap_err().code, crate::session_error::PROTOCOL_VIOLATION);
}

#[test]
fn subscribe_round_trips_with_the_filter_re_encoded() {
    let mut params = KeyValuePairs::new();
    let f = moq_transport::message::SubscriptionFilter {
        filter_type: FilterType::AbsoluteRange,
        start_location: Some(Location::new(5, 1)),
        end_group_id: Some(2),
    };
    let mut v = Vec::new();
    f.encode(&mut v).unwrap();
    params.set_bytesvalue(param::SUBSCRIPTION_FILTER, v);
    params.set_intvalue(param::FORWARD, 1);
    let msg = Message::Subscribe(message::Subscribe {
        id: 2,
        track_namespace: TrackNamespace::from_utf8_path("ns"),
        track_name: "t".into(),
        params,
    });
    let bytes = encode_request(&msg).unwrap();
    // Two parameters: FORWARD 1 (0x10), then LOCATION_FILTER (delta 0x11)
    // ABSOLUTE_GROUP_END 5.1 + 2.
    assert_eq!(&bytes[3..], &[0x02, 0x01, 0x02, b'n', b's', 0x01, b't', 0x02, 0x10, 0x01, 0x11, 0x03, 0x05, 0x01, 0x02]);
    assert_eq!(filter_of(&frame(&bytes).request().unwrap()), Some((FilterType::AbsoluteRange, Some(Location::new(5, 1)), Some(2))));
}

#[test]
fn a_join_subscribe_decodes_and_its_fill_is_reported() {
    // aiomoqt's join: NEXT_OBJECT, FILL_PARAMETERS {LOCATION_FILTER RELATIVE_START 2}.
    let bytes = [0x03, 0x00, 0x10, 0x00, 0x01, 0x02, b'n', b's', 0x01, b't', 0x02, 0x21, 0x05, 0x02, 0x04, 0x01, 0x21, 0x01, 0x02];
    let msg = frame(&bytes).request().unwrap();
    assert_eq!(filter_of(&msg), Some((FilterType::LargestObject, None, None)));
    let Message::Subscribe(m) = &msg else { panic!() };
    assert!(m.params.0.iter().any(|p| p.key == param::FILL_PARAMETERS));
}

#[test]
fn unknown_and_repeated_parameters_close_the_session() {
    // SUBSCRIBE with parameter 0x24 (unregistered).
    let mut buf = BytesMut::from(&[0x03, 0x00, 0x0a, 0x00, 0x01, 0x02, b'n', b's', 0x01, b't', 0x01, 0x24, 0x00][..]);
    let f = take_frame_as(&mut buf, Version::Draft22).unwrap().unwrap();
    assert!(crate::request::decode(&f).is_err());
    // FORWARD twice.
    let mut buf = BytesMut::from(&[0x03, 0x00, 0x0c, 0x00, 0x01, 0x02, b'n', b's', 0x01, b't', 0x02, 0x10, 0x01, 0x00, 0x01][..]);
    let f = take_frame_as(&mut buf, Version::Draft22).unwrap().unwrap();
    assert!(crate::request::decode(&f).is_err());
    // A Range Filter is well-formed, and refused with INVALID_FILTER.
    let msg = frame(&[0x03, 0x00, 0x0c, 0x00, 0x01, 0x02, b'n', b's', 0x01, b't', 0x01, 0x25, 0x02, 0x00, 0x00]).request().unwrap();
    assert_eq!(unsupported(&msg).map(|(c, _)| c), Some(request_error::INVALID_FILTER));
}

#[test]
fn a_fill_resolves_against_the_largest_object() {
    use fill::Fill;
    let largest = Some(Location::new(7, 3));
    // aiomoqt's join: RELATIVE_START 2 from the group before the Largest Object's.
    let f = Fill::decode(&[0x01, 0x21, 0x01, 0x02]).unwrap();
    assert_eq!(f.range(Some(LocationFilter::NextObject), largest), Some((Location::new(6, 0), Location::new(7, 3))));
    // RELATIVE_START 0 is the next group: nothing to fill.
    assert_eq!(Fill::decode(&[0x01, 0x21, 0x01, 0x00]).unwrap().range(None, largest), None);
    // No filter of its own: the subscription's (here none: the whole track).
    assert_eq!(Fill::decode(&[0x00]).unwrap().range(None, largest), Some((Location::new(0, 0), Location::new(7, 3))));
    // An end beyond the Largest Object is capped; nothing published, no fill.
    let f = Fill::decode(&[0x01, 0x21, 0x03, 0x05, 0x00, 0x09]).unwrap();
    assert_eq!(f.range(None, largest), Some((Location::new(5, 0), Location::new(7, 3))));
    assert_eq!(f.range(None, None), None);
    // Only the parameters a fill may carry: FORWARD is a PROTOCOL_VIOLATION.
    assert!(Fill::decode(&[0x01, 0x10, 0x01]).is_err());
    // Range Filters inside a fill are refused with INVALID_FILTER.
    let mut p = KeyValuePairs::new();
    p.set_bytesvalue(param::FILL_PARAMETERS, vec![0x01, 0x25, 0x02, 0x00, 0x00]);
    let msg = Message::Subscribe(message::Subscribe {
        id: 0,
        track_namespace: TrackNamespace::from_utf8_path("ns"),
        track_name: "t".into(),
        params: p,
    });
    assert_eq!(unsupported(&msg).map(|(c, _)| c), Some(request_error::INVALID_FILTER));
}
