//! Control framing and message round trips (split from control.rs).

use super::*;
use moq_transport::coding::TrackNamespace;

#[test]
fn frames_split_across_pushes() {
    let bytes = Response::error(message::RequestErrorCode::DoesNotExist, 0, "no such track").encode();
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&bytes[..3]);
    assert_eq!(take_frame(&mut buf).unwrap(), None);
    buf.extend_from_slice(&bytes[3..]);
    let f = take_frame(&mut buf).unwrap().unwrap();
    assert_eq!(f.kind, kind::REQUEST_ERROR);
    match f.response().unwrap() {
        Response::RequestError { code, retry_interval, reason } => {
            assert_eq!((code, retry_interval, reason.as_str()), (0x10, 0, "no such track"))
        }
        other => panic!("{other:?}"),
    }
    assert!(buf.is_empty());
}

#[test]
fn request_error_vector() {
    // Type 0x5, length 4, code 0x10, retry 0, reason length 1 "x".
    let bytes = Response::error(message::RequestErrorCode::DoesNotExist, 0, "x").encode();
    assert_eq!(&bytes[..], &[0x05, 0x00, 0x04, 0x10, 0x00, 0x01, b'x']);
}

#[test]
fn subscribe_ok_round_trip_keeps_raw_properties() {
    let mut params = KeyValuePairs::new();
    params.set_intvalue(0x08, 0); // EXPIRES
    let r = Response::SubscribeOk { alias: 9, params, properties: Bytes::from_static(&[0x0e, 0x40]) };
    let mut buf = BytesMut::from(&r.encode()[..]);
    let f = take_frame(&mut buf).unwrap().unwrap();
    match f.response().unwrap() {
        Response::SubscribeOk { alias, properties, .. } => {
            assert_eq!(alias, 9);
            assert_eq!(&properties[..], &[0x0e, 0x40]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn subscribe_request_decodes_with_request_id() {
    let msg = Message::Subscribe(message::Subscribe {
        id: 4,
        track_namespace: TrackNamespace::from_utf8_path("moq-test/interop"),
        track_name: "test-track".into(),
        params: KeyValuePairs::default(),
    });
    let bytes = encode_request(&msg).unwrap();
    let mut buf = BytesMut::from(&bytes[..]);
    let f = take_frame(&mut buf).unwrap().unwrap();
    assert_eq!(f.kind, kind::SUBSCRIBE);
    match f.request().unwrap() {
        Message::Subscribe(s) => {
            assert_eq!(s.id, 4);
            assert_eq!(s.track_namespace, TrackNamespace::from_utf8_path("moq-test/interop"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn redirect_error_is_accepted() {
    let mut payload = vec![0x34, 0x00, 0x00];
    payload.extend_from_slice(&[0x00, 0x00, 0x00]); // an empty Redirect structure
    let f = Frame { kind: kind::REQUEST_ERROR, payload: Bytes::from(payload), version: Version::Draft18 };
    assert!(matches!(f.response().unwrap(), Response::RequestError { code: 0x34, .. }));
    assert_eq!(f.request_error().unwrap().redirect, Some(Redirect::default()));
    let f = Frame { kind: kind::REQUEST_ERROR, payload: Bytes::from_static(&[0x10, 0x00, 0x00, 0x01]), version: Version::Draft18 };
    assert!(f.response().is_err(), "trailing bytes after a non-REDIRECT error");
    let f = Frame { kind: kind::REQUEST_ERROR, payload: Bytes::from_static(&[0x34, 0x00, 0x00]), version: Version::Draft18 };
    assert!(f.response().is_err(), "REDIRECT without its Redirect");
}

#[test]
fn redirect_round_trips() {
    let e = RequestError {
        code: RequestErrorCode::Redirect as u64,
        retry_interval: 1,
        reason: "moved".into(),
        redirect: Some(Redirect {
            connect_uri: "https://relay2.example/moq".into(),
            namespace: TrackNamespacePrefix::from_utf8_path("a/b"),
            track_name: "t".into(),
        }),
    };
    let mut buf = BytesMut::from(&e.encode()[..]);
    assert_eq!(take_frame(&mut buf).unwrap().unwrap().request_error().unwrap(), e);
    // Response::RequestError has no Redirect: REDIRECT gets an empty one, never a malformed message.
    let bytes = Response::error(RequestErrorCode::Redirect, 0, "").encode();
    assert_eq!(&bytes[..], &[0x05, 0x00, 0x06, 0x34, 0x00, 0x00, 0x00, 0x00, 0x00]);
}

#[test]
fn goaway_request_id_round_trips() {
    let g = GoAway { uri: String::new(), timeout_ms: 3000, request_id: Some(4) };
    let b = g.encode();
    assert_eq!(&b[..], &[0x10, 0x00, 0x04, 0x00, 0x8b, 0xb8, 0x04]);
    let mut buf = BytesMut::from(&b[..]);
    let f = take_frame(&mut buf).unwrap().unwrap();
    assert_eq!(f.goaway().unwrap(), g);
    assert!(matches!(f.response().unwrap(), Response::GoAway { timeout_ms: 3000, .. }));
    assert!(matches!(f.request_error(), Err(WireError::InvalidType(kind::GOAWAY))));
}

#[test]
fn goaway_vector() {
    let b = Response::GoAway { uri: String::new(), timeout_ms: 5000 }.encode();
    assert_eq!(&b[..], &[0x10, 0x00, 0x03, 0x00, 0x93, 0x88]);
    let mut buf = BytesMut::from(&b[..]);
    match take_frame(&mut buf).unwrap().unwrap().response().unwrap() {
        Response::GoAway { uri, timeout_ms } => assert_eq!((uri.as_str(), timeout_ms), ("", 5000)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for kind in [kind::REQUEST_OK, kind::SUBSCRIBE_OK, kind::PUBLISH_DONE, kind::FETCH_OK, kind::NAMESPACE, 0x3f] {
        let f = Frame { kind, payload: Bytes::from_static(&[0xff, 0xff, 0xff]), version: Version::Draft18 };
        assert!(f.response().is_err());
    }
    let f = Frame { kind: kind::SUBSCRIBE, payload: Bytes::from_static(&[0x01]), version: Version::Draft18 };
    assert!(f.request().is_err());
}
