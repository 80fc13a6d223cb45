//! Stalled streams and messages (issue 20): a header, object or control
//! message that a peer begins and does not finish times out, with the code
//! draft-ietf-moq-transport-18 §3.5 names for it; a stream idle *between*
//! whole objects or messages is left alone.
//!
//! §3.5 DATA_STREAM_TIMEOUT (0x12): "the peer took too long to send data
//! expected on an open Data Stream (see {{data-streams}}). This includes
//! fields of a stream header or an object header within a data stream."
//! §3.5 CONTROL_MESSAGE_TIMEOUT (0x11): "the peer took too long to respond to
//! a control message" — here, to finish one on the control stream (§3.3) or
//! a request stream (§10).
//!
//! Each relay runs with a short `--stall-timeout-ms`, so no test waits long;
//! the tests wait on the close itself, never on a sleep, except the idle
//! one, which must outwait the timeout to show it does not fire.

mod common;
use common::{connect, probe, read_frame, session, setup_bytes, Relay};
use moq_wire::coding::{KeyValuePairs, TrackNamespace};
use moq_wire::control::{encode_request, Response};
use moq_wire::message::{Message, Publish, PublishNamespace, Subscribe};
use moq_wire::subgroup::{Event, SubgroupParser};
use moq_wire::varint;
use std::time::Duration;

const CONTROL_MESSAGE_TIMEOUT: u32 = 0x11;
const DATA_STREAM_TIMEOUT: u32 = 0x12;
/// Short, so the failing cases close fast; a failure to close is caught by
/// [`closed_with`]'s bound, far above it.
const STALL_MS: &str = "200";

fn relay() -> Relay {
    Relay::start(&["--stall-timeout-ms", STALL_MS])
}

/// With a handshake deadline far beyond any test: what closes a session
/// there is the stall timeout alone.
fn relay_without_handshake_deadline() -> Relay {
    Relay::start(&["--stall-timeout-ms", STALL_MS, "--handshake-timeout-ms", "600000"])
}

/// Waits for the relay to close `conn` and returns the application code.
/// The bound only turns "never closed" into a failure instead of a hang.
async fn closed_with(conn: &quinn::Connection) -> u32 {
    match tokio::time::timeout(Duration::from_secs(30), conn.closed()).await {
        Ok(quinn::ConnectionError::ApplicationClosed(c)) => u32::try_from(c.error_code.into_inner()).unwrap(),
        Ok(other) => panic!("expected an application close, got {other:?}"),
        Err(_) => panic!("the relay never closed the stalled session"),
    }
}

/// A session that does nothing wrong is still served.
async fn assert_served(conn: &quinn::Connection, request_id: u64) {
    match probe(conn, request_id).await {
        Response::RequestError { code, .. } => assert_eq!(code, 0x10, "DOES_NOT_EXIST expected"),
        other => panic!("bystander got {other:?}"),
    }
}

/// PUBLISHes track `stall/<name>` with `alias` (§10.10) and returns its request stream.
async fn publish(conn: &quinn::Connection, name: &str, alias: u64) -> (quinn::SendStream, quinn::RecvStream) {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let m = Message::Publish(Publish {
        id: 0,
        track_namespace: TrackNamespace::from_utf8_path(&format!("stall/{name}")),
        track_name: "t".into(),
        track_alias: alias,
        params: Default::default(),
        track_extensions: Default::default(),
    });
    send.write_all(&encode_request(&m).unwrap()).await.unwrap();
    let ok = read_frame(&mut recv).await.unwrap().response().unwrap();
    assert!(matches!(ok, Response::PublishOk(_)), "{ok:?}");
    (send, recv)
}

/// SUBGROUP_HEADER type 0x30 (§11.4.2: Subgroup ID 0, default priority, no
/// properties): type, Track Alias, Group ID.
fn subgroup_header(alias: u64, group: u64) -> Vec<u8> {
    let mut d = vec![0x30];
    varint::write(&mut d, alias);
    varint::write(&mut d, group);
    d
}

/// One object of a type-0x30 stream: Object ID Delta, length, payload.
fn object(delta: u64, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    varint::write(&mut d, delta);
    varint::write(&mut d, payload.len() as u64);
    d.extend_from_slice(payload);
    d
}

/// Writes `bytes` on a new uni stream of a fresh session and waits for the
/// relay's verdict on that session; a bystander is served throughout.
async fn stalled_uni(relay: &Relay, publish_alias: Option<u64>, bytes: &[u8]) -> u32 {
    let (bystander, _c1, _r1) = session(relay).await;
    let (conn, _ctl, _r2) = session(relay).await;
    let _req = match publish_alias {
        Some(a) => Some(publish(&conn, &format!("uni{a}"), a).await),
        None => None,
    };
    let mut uni = conn.open_uni().await.unwrap();
    uni.write_all(bytes).await.unwrap();
    let code = closed_with(&conn).await;
    assert_served(&bystander, 0).await;
    code
}

/// §3.5 DATA_STREAM_TIMEOUT, "fields of a stream header": a SUBGROUP_HEADER
/// with its Track Alias and without its Group ID.
#[tokio::test]
async fn half_a_subgroup_header_closes_with_data_stream_timeout() {
    let relay = relay();
    let mut half = vec![0x30];
    varint::write(&mut half, 5);
    assert_eq!(stalled_uni(&relay, None, &half).await, DATA_STREAM_TIMEOUT);
    assert_eq!(relay.metric("moq_relay_errors_total{code=\"data_stream_timeout\"}"), Some(1.0));
}

/// §3.5 DATA_STREAM_TIMEOUT, "fields of ... an object header": a whole
/// header for a published track, then an Object ID Delta without its length.
#[tokio::test]
async fn half_an_object_header_closes_with_data_stream_timeout() {
    let relay = relay();
    let mut d = subgroup_header(5, 0);
    varint::write(&mut d, 0);
    assert_eq!(stalled_uni(&relay, Some(5), &d).await, DATA_STREAM_TIMEOUT);
    assert_eq!(relay.metric("moq_relay_errors_total{code=\"data_stream_timeout\"}"), Some(1.0));
}

/// §3.5 DATA_STREAM_TIMEOUT, "data expected on an open Data Stream": an
/// object whose header promised 100 payload bytes and sent 10.
#[tokio::test]
async fn half_an_object_payload_closes_with_data_stream_timeout() {
    let relay = relay();
    let mut d = subgroup_header(6, 0);
    let whole = object(0, &[9u8; 100]);
    d.extend_from_slice(&whole[..12]);
    assert_eq!(stalled_uni(&relay, Some(6), &d).await, DATA_STREAM_TIMEOUT);
}

/// §3.4: every uni stream starts with its type, the first field of its
/// header; a two-byte vi64 type (§1.4.1) cut after one byte is a header
/// that never completes (§3.5 DATA_STREAM_TIMEOUT), not an unknown type.
#[tokio::test]
async fn half_a_stream_type_closes_with_data_stream_timeout() {
    let relay = relay();
    assert_eq!(stalled_uni(&relay, None, &[0x80]).await, DATA_STREAM_TIMEOUT);
}

/// §10: a request stream's first message (here SUBSCRIBE claiming 20 bytes
/// of payload and sending 3) that never completes: §3.5
/// CONTROL_MESSAGE_TIMEOUT, and the session, not only the stream, goes.
#[tokio::test]
async fn half_a_first_request_message_closes_with_control_message_timeout() {
    let relay = relay_without_handshake_deadline();
    let (bystander, _c1, _r1) = session(&relay).await;
    let (conn, _ctl, _r2) = session(&relay).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(&[0x03, 0x00, 0x14, 0x01, 0x02, 0x03]).await.unwrap();
    assert_eq!(closed_with(&conn).await, CONTROL_MESSAGE_TIMEOUT);
    assert_eq!(relay.metric("moq_relay_errors_total{code=\"control_message_timeout\"}"), Some(1.0));
    assert_served(&bystander, 0).await;
}

/// §10.9 REQUEST_UPDATE on a live PUBLISH_NAMESPACE stream (§10.15), cut
/// after its length: §3.5 CONTROL_MESSAGE_TIMEOUT. The request stream sat
/// idle before it, which is not a stall.
#[tokio::test]
async fn half_a_later_request_message_closes_with_control_message_timeout() {
    let relay = relay();
    let (bystander, _c1, _r1) = session(&relay).await;
    let (conn, _ctl, _r2) = session(&relay).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let m = Message::PublishNamespace(PublishNamespace {
        id: 0,
        track_namespace: TrackNamespace::from_utf8_path("stall/ns"),
        params: KeyValuePairs::new(),
    });
    send.write_all(&encode_request(&m).unwrap()).await.unwrap();
    assert!(matches!(read_frame(&mut recv).await.unwrap().response().unwrap(), Response::RequestOk(_)));
    send.write_all(&[0x02, 0x00, 0x10, 0x02]).await.unwrap();
    assert_eq!(closed_with(&conn).await, CONTROL_MESSAGE_TIMEOUT);
    assert_served(&bystander, 0).await;
}

/// §3.3: after SETUP only GOAWAY may come on the control stream; one cut
/// after its length is §3.5 CONTROL_MESSAGE_TIMEOUT.
#[tokio::test]
async fn half_a_goaway_on_the_control_stream_closes_with_control_message_timeout() {
    let relay = relay();
    let (bystander, _c1, _r1) = session(&relay).await;
    let (conn, mut ctl, _r2) = session(&relay).await;
    ctl.write_all(&[0x10, 0x00, 0x05, 0x00]).await.unwrap();
    assert_eq!(closed_with(&conn).await, CONTROL_MESSAGE_TIMEOUT);
    assert_served(&bystander, 0).await;
}

/// §10.18 SUBSCRIBE_NAMESPACE: a REQUEST_UPDATE cut half-way times out even
/// while NAMESPACE notices (§10.16) keep waking the relay's watch loop —
/// every 50 ms, against a 200 ms stall timeout — because the deadline
/// belongs to the partial message, not to one wait for it.
#[tokio::test]
async fn half_a_message_stalls_while_notices_flow() {
    let relay = relay();
    let (watcher, _c1, _r1) = session(&relay).await;
    let (mut send, mut recv) = watcher.open_bi().await.unwrap();
    let m = Message::SubscribeNamespace(moq_wire::message::SubscribeNamespace {
        id: 0,
        track_namespace_prefix: moq_wire::coding::TrackNamespacePrefix::from_utf8_path("stall/w"),
        params: Default::default(),
    });
    send.write_all(&encode_request(&m).unwrap()).await.unwrap();
    assert!(matches!(read_frame(&mut recv).await.unwrap().response().unwrap(), Response::RequestOk(_)));
    send.write_all(&[0x02, 0x00, 0x10, 0x02]).await.unwrap();

    let (publ, _c2, _r2) = session(&relay).await;
    let driver = tokio::spawn(async move {
        let mut streams = Vec::new();
        for i in 0u64.. {
            let (mut s, r) = publ.open_bi().await.unwrap();
            let m = Message::PublishNamespace(PublishNamespace {
                id: 2 * i,
                track_namespace: TrackNamespace::from_utf8_path(&format!("stall/w/{i}")),
                params: KeyValuePairs::new(),
            });
            s.write_all(&encode_request(&m).unwrap()).await.unwrap();
            streams.push((s, r));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    assert_eq!(closed_with(&watcher).await, CONTROL_MESSAGE_TIMEOUT);
    driver.abort();
}

/// §3.3 SETUP cut half-way closes with §3.5 CONTROL_MESSAGE_TIMEOUT after
/// the stall timeout, not the handshake deadline (was PROTOCOL_VIOLATION).
#[tokio::test]
async fn half_a_setup_closes_with_control_message_timeout() {
    let relay = relay_without_handshake_deadline();
    let conn = connect(&relay).await;
    let mut ctl = conn.open_uni().await.unwrap();
    ctl.write_all(&setup_bytes()[..3]).await.unwrap();
    assert_eq!(closed_with(&conn).await, CONTROL_MESSAGE_TIMEOUT);
    assert_eq!(relay.metric("moq_relay_errors_total{code=\"setup_timeout\"}"), None, "the stall, not the handshake deadline");
}

/// §3.5 lets an endpoint time out "waiting for a new object header on an
/// open subgroup stream", but a call's publisher may pause for any time
/// between objects: the relay does not. After a pause longer than the stall
/// timeout the next object on the same stream still reaches the subscriber,
/// and neither session (nor their idle request streams) was closed.
#[tokio::test]
async fn idle_subgroup_stream_between_objects_is_not_timed_out() {
    let relay = relay();
    let (publ, _c1, _r1) = session(&relay).await;
    let _req = publish(&publ, "idle", 7).await;
    let (sub, _c2, _r2) = session(&relay).await;
    let (mut s, mut r) = sub.open_bi().await.unwrap();
    let m = Message::Subscribe(Subscribe {
        id: 0,
        track_namespace: TrackNamespace::from_utf8_path("stall/idle"),
        track_name: "t".into(),
        params: Default::default(),
    });
    s.write_all(&encode_request(&m).unwrap()).await.unwrap();
    let ok = read_frame(&mut r).await.unwrap().response().unwrap();
    assert!(matches!(ok, Response::SubscribeOk { .. }), "{ok:?}");

    let mut up = publ.open_uni().await.unwrap();
    let mut d = subgroup_header(7, 0);
    d.extend_from_slice(&object(0, b"before"));
    up.write_all(&d).await.unwrap();
    let mut down = sub.accept_uni().await.unwrap();
    let mut parser = SubgroupParser::new(1 << 16);
    assert_eq!(next_payload(&mut down, &mut parser).await, b"before");

    // The behaviour under test is the absence of a timeout: outwait it.
    tokio::time::sleep(Duration::from_millis(3 * STALL_MS.parse::<u64>().unwrap())).await;
    up.write_all(&object(0, b"after")).await.unwrap();
    assert_eq!(next_payload(&mut down, &mut parser).await, b"after");
    assert!(publ.close_reason().is_none() && sub.close_reason().is_none());
    assert_eq!(relay.metric("moq_relay_errors_total{code=\"data_stream_timeout\"}"), None);
    assert_eq!(relay.metric("moq_relay_errors_total{code=\"control_message_timeout\"}"), None);
}

/// §10.12 FETCH answered from the cache on a FETCH_HEADER stream (§11.4.3)
/// that the subscriber's QUIC never gives room for (a 4 KB stream window,
/// never read): after the stall timeout the relay resets it with
/// TOO_FAR_BEHIND (§3.3.3, "exceeded the publisher's resource limits"),
/// ends the request, and the session goes on.
#[tokio::test]
async fn fetch_stream_never_read_is_reset_and_session_survives() {
    let relay = relay();
    let (publ, _c1, _r1) = session(&relay).await;
    let _req = publish(&publ, "fetch", 8).await;
    let mut up = publ.open_uni().await.unwrap();
    let mut d = subgroup_header(8, 0);
    d.extend_from_slice(&object(0, &[3u8; 40_000]));
    up.write_all(&d).await.unwrap();
    up.finish().unwrap();
    relay.wait_objects_in(1).await;

    let mut transport = quinn::TransportConfig::default();
    transport.stream_receive_window(4096u32.into());
    let (conn, _c2, _r2) = common::session_with(&relay, transport).await;
    let (mut s, mut r) = conn.open_bi().await.unwrap();
    let fetch = Message::Fetch(moq_wire::message::Fetch {
        id: 0,
        fetch_type: moq_wire::message::FetchType::Standalone,
        standalone_fetch: Some(moq_wire::message::StandaloneFetch {
            track_namespace: TrackNamespace::from_utf8_path("stall/fetch"),
            track_name: "t".into(),
            start_location: moq_wire::coding::Location::new(0, 0),
            end_location: moq_wire::coding::Location::new(1, 0),
        }),
        joining_fetch: None,
        params: KeyValuePairs::new(),
    });
    s.write_all(&encode_request(&fetch).unwrap()).await.unwrap();
    let ok = read_frame(&mut r).await.unwrap().response().unwrap();
    assert!(matches!(ok, Response::FetchOk { .. }), "{ok:?}");
    // The relay ends the request (FIN) once it gave up on the data stream.
    let end = tokio::time::timeout(Duration::from_secs(30), read_frame(&mut r)).await;
    assert!(end.expect("the relay never ended the FETCH request").is_none(), "nothing after FETCH_OK");
    let mut data = conn.accept_uni().await.unwrap();
    let code = loop {
        match data.read_chunk(65536, true).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the FETCH stream ended normally: it was never stalled"),
            Err(quinn::ReadError::Reset(code)) => break code,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(code, 5u32.into(), "TOO_FAR_BEHIND");
    assert_eq!(relay.metric("moq_relay_errors_total{code=\"fetch_stream_stalled\"}"), Some(1.0));
    assert_served(&conn, 2).await;
}

/// The next object's payload on a forwarded subgroup stream.
async fn next_payload(down: &mut quinn::RecvStream, parser: &mut SubgroupParser) -> Vec<u8> {
    loop {
        while let Some(e) = parser.next().unwrap() {
            if let Event::Object(o) = e {
                return o.payload().to_vec();
            }
        }
        let chunk = down.read_chunk(65536, true).await.unwrap().expect("the forwarded stream ended early");
        parser.push(&chunk.bytes);
    }
}
