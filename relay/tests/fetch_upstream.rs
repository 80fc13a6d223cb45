//! A Standalone FETCH for a track the relay has nothing of goes to the
//! track's publisher (draft-ietf-moq-transport-18 §9.1, §9.5) — the way a
//! foreign subscriber reads a call's `catalog`, which no phone subscribes to.

mod common;
use common::{read_frame, session, Relay};
use moq_wire::coding::{KeyValuePairs, Location, TrackNamespace};
use moq_wire::control::{encode_request, Response};
use moq_wire::fetch::{header, FetchItem, FetchObject, FetchParser, FetchWriter};
use moq_wire::message::{Fetch, FetchType, Message, PublishNamespace, StandaloneFetch};

fn ns(p: &str) -> TrackNamespace {
    TrackNamespace::from_utf8_path(p)
}

async fn announce(conn: &quinn::Connection, path: &str) -> (quinn::SendStream, quinn::RecvStream) {
    let (mut s, mut r) = conn.open_bi().await.unwrap();
    let m = Message::PublishNamespace(PublishNamespace { id: 0, track_namespace: ns(path), params: KeyValuePairs::new() });
    s.write_all(&encode_request(&m).unwrap()).await.unwrap();
    assert!(matches!(read_frame(&mut r).await.unwrap().response().unwrap(), Response::RequestOk(_)));
    (s, r)
}

/// Sends FETCH of `path`/`track` [0/0, end) and returns the request stream.
async fn fetch(conn: &quinn::Connection, path: &str, track: &str, end: Location) -> (quinn::SendStream, quinn::RecvStream) {
    let (mut s, r) = conn.open_bi().await.unwrap();
    let m = Message::Fetch(Fetch {
        id: 0,
        fetch_type: FetchType::Standalone,
        standalone_fetch: Some(StandaloneFetch {
            track_namespace: ns(path),
            track_name: track.into(),
            start_location: Location::new(0, 0),
            end_location: end,
        }),
        joining_fetch: None,
        params: KeyValuePairs::new(),
    });
    s.write_all(&encode_request(&m).unwrap()).await.unwrap();
    (s, r)
}

/// The publisher side: the FETCH the relay forwards, as (stream, request).
async fn accept_fetch(conn: &quinn::Connection) -> (quinn::SendStream, quinn::RecvStream, Fetch) {
    let (s, mut r) = conn.accept_bi().await.unwrap();
    let f = read_frame(&mut r).await.unwrap();
    let Message::Fetch(m) = f.request().unwrap() else { panic!("the relay should forward the FETCH") };
    (s, r, m)
}

#[tokio::test]
async fn an_uncached_track_is_fetched_from_its_publisher() {
    let relay = Relay::start(&[]);
    let (publisher, _pc, _pr) = session(&relay).await;
    let _ns = announce(&publisher, "f/call").await;
    let (subscriber, _sc, _sr) = session(&relay).await;
    let (_req, mut resp) = fetch(&subscriber, "f/call", "catalog", Location::new(1, 0)).await;

    let (mut ps, _pr, m) = accept_fetch(&publisher).await;
    let sf = m.standalone_fetch.expect("a Standalone FETCH");
    assert_eq!((sf.track_namespace, sf.track_name.to_string_lossy().into_owned()), (ns("f/call"), "catalog".to_string()));
    assert_eq!((sf.start_location, sf.end_location), (Location::new(0, 0), Location::new(1, 0)), "the range travels unchanged");
    let props = bytes::Bytes::from_static(&[0x02, 0x07]);
    ps.write_all(
        &Response::FetchOk {
            end_of_track: false,
            end_location: Location::new(0, 2),
            params: KeyValuePairs::new(),
            properties: props.clone(),
        }
        .encode(),
    )
    .await
    .unwrap();
    let mut data = Vec::new();
    header(m.id, &mut data);
    let mut w = FetchWriter::default();
    for (o, payload) in [b"{\"version\":\"draft-01\"}".as_slice(), b"second"].into_iter().enumerate() {
        let obj = FetchObject { group_id: 0, object_id: o as u64, subgroup_id: Some(0), priority: 0, properties: &[], payload };
        w.object(&obj, &mut data);
    }
    let mut uni = publisher.open_uni().await.unwrap();
    uni.write_all(&data).await.unwrap();
    uni.finish().unwrap();

    match read_frame(&mut resp).await.unwrap().response().unwrap() {
        Response::FetchOk { end_location, properties, end_of_track, .. } => {
            assert_eq!((end_location, end_of_track), (Location::new(0, 2), false));
            assert_eq!(properties, props, "FETCH_OK's Track Properties come from the publisher");
        }
        other => panic!("expected FETCH_OK, got {other:?}"),
    }
    let mut stream = subscriber.accept_uni().await.unwrap();
    let bytes = stream.read_to_end(1 << 20).await.unwrap();
    let mut p = FetchParser::new(1 << 20);
    p.push(&bytes);
    assert_eq!(p.header().unwrap(), Some(0), "re-headed with the subscriber's Request ID");
    let mut got = Vec::new();
    while let Some(FetchItem::Object(o)) = p.next().unwrap() {
        got.push((o.group_id, o.object_id, o.payload));
    }
    p.finish().unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].0, got[0].1, &got[0].2[..]), (0, 0, &b"{\"version\":\"draft-01\"}"[..]));
    assert_eq!((got[1].0, got[1].1, &got[1].2[..]), (0, 1, &b"second"[..]));
}

#[tokio::test]
async fn the_publishers_refusal_reaches_the_subscriber() {
    let relay = Relay::start(&[]);
    let (publisher, _pc, _pr) = session(&relay).await;
    let _ns = announce(&publisher, "f/refuse").await;
    let (subscriber, _sc, _sr) = session(&relay).await;
    let (_req, mut resp) = fetch(&subscriber, "f/refuse", "catalog", Location::new(1, 0)).await;
    let (mut ps, _pr, _m) = accept_fetch(&publisher).await;
    ps.write_all(&Response::RequestError { code: 0x10, retry_interval: 0, reason: "no such track here".into() }.encode()).await.unwrap();
    match read_frame(&mut resp).await.unwrap().response().unwrap() {
        Response::RequestError { code, reason, .. } => assert_eq!((code, reason.as_str()), (0x10, "no such track here")),
        other => panic!("expected REQUEST_ERROR, got {other:?}"),
    }
}

#[tokio::test]
async fn a_fetch_with_no_publisher_is_refused() {
    let relay = Relay::start(&[]);
    let (subscriber, _sc, _sr) = session(&relay).await;
    let (_req, mut resp) = fetch(&subscriber, "f/nobody", "catalog", Location::new(1, 0)).await;
    match read_frame(&mut resp).await.unwrap().response().unwrap() {
        Response::RequestError { code, .. } => assert_eq!(code, 0x10, "DOES_NOT_EXIST"),
        other => panic!("expected REQUEST_ERROR, got {other:?}"),
    }
}

/// A publisher that never answers the FETCH it was passed (a phone that
/// reads no requests it did not expect) does not hold the subscriber's FETCH
/// for the relay's whole upstream timeout: the relay cancels upstream and
/// answers with what it has — here nothing, so DOES_NOT_EXIST.
#[tokio::test]
async fn a_publisher_that_never_answers_leaves_the_answer_to_the_relay() {
    let relay = Relay::start(&[]);
    let (publisher, _pc, _pr) = session(&relay).await;
    let _ns = announce(&publisher, "f/silent").await;
    let (subscriber, _sc, _sr) = session(&relay).await;
    let (_req, mut resp) = fetch(&subscriber, "f/silent", "catalog", Location::new(1, 0)).await;
    let (_ps, mut pr, _m) = accept_fetch(&publisher).await;
    match read_frame(&mut resp).await.unwrap().response().unwrap() {
        Response::RequestError { code, .. } => assert_eq!(code, 0x10, "DOES_NOT_EXIST"),
        other => panic!("expected REQUEST_ERROR, got {other:?}"),
    }
    // The upstream request was cancelled (§3.3.2): its stream is reset.
    let mut buf = [0u8; 16];
    assert!(matches!(pr.read(&mut buf).await, Err(quinn::ReadError::Reset(_))), "the relay should cancel the upstream FETCH");
}
