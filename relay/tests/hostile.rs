//! Hostile input against a real relay process: each misbehaving session is
//! closed with the right code (or only its stream is stopped), a bystander
//! session keeps being served, and memory stays bounded.

mod common;
use common::{probe, read_frame, session, setup_bytes, Relay};
use moq_wire::control::Response;
use moq_wire::varint;

const PROTOCOL_VIOLATION: u32 = 0x3;

/// Waits for the relay to close `conn` and returns the application code.
async fn closed_with(conn: &quinn::Connection) -> u32 {
    match conn.closed().await {
        quinn::ConnectionError::ApplicationClosed(c) => u32::try_from(c.error_code.into_inner()).unwrap(),
        other => panic!("expected an application close, got {other:?}"),
    }
}

async fn assert_served(conn: &quinn::Connection, id: u64) {
    match probe(conn, id).await {
        Response::RequestError { code, .. } => assert_eq!(code, 0x10, "DOES_NOT_EXIST expected"),
        other => panic!("bystander got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_on_control_stream_closes_only_that_session() {
    let relay = Relay::start(&[]);
    let (bystander, _c1, _r1) = session(&relay).await;
    let (conn, mut ctl, _r2) = session(&relay).await;
    ctl.write_all(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02]).await.unwrap();
    assert_eq!(closed_with(&conn).await, PROTOCOL_VIOLATION);
    assert_served(&bystander, 0).await;
}

#[tokio::test]
async fn unknown_message_type_on_request_stream_is_a_protocol_violation() {
    let relay = Relay::start(&[]);
    let (bystander, _c1, _r1) = session(&relay).await;
    let (conn, _ctl, _r2) = session(&relay).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    // Message type 0x3f does not exist (§10): type, length 1, one byte.
    send.write_all(&[0x3f, 0x00, 0x01, 0x00]).await.unwrap();
    assert_eq!(closed_with(&conn).await, PROTOCOL_VIOLATION);
    assert_served(&bystander, 0).await;
}

#[tokio::test]
async fn oversize_control_length_and_truncated_message_are_rejected() {
    let relay = Relay::start(&[]);
    let (bystander, _c1, _r1) = session(&relay).await;
    let (conn, _ctl, _r2) = session(&relay).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    // SUBSCRIBE claiming 65535 payload bytes, then FIN after 3.
    send.write_all(&[0x03, 0xff, 0xff, 0x00, 0x01, 0x02]).await.unwrap();
    send.finish().unwrap();
    assert_eq!(closed_with(&conn).await, PROTOCOL_VIOLATION);
    assert_served(&bystander, 0).await;
}

#[tokio::test]
async fn unknown_uni_stream_type_closes_session() {
    let relay = Relay::start(&[]);
    let (bystander, _c1, _r1) = session(&relay).await;
    let (conn, _ctl, _r2) = session(&relay).await;
    let mut uni = conn.open_uni().await.unwrap();
    let mut b = Vec::new();
    varint::write(&mut b, 0x0f); // not a stream type (§3.4)
    uni.write_all(&b).await.unwrap();
    assert_eq!(closed_with(&conn).await, PROTOCOL_VIOLATION);
    assert_served(&bystander, 0).await;
}

#[tokio::test]
async fn setup_never_sent_times_out() {
    let relay = Relay::start(&["--handshake-timeout-ms", "300"]);
    // A session that did send SETUP is not affected.
    let (served, _ctl, _theirs) = common::session(&relay).await;
    let conn = common::connect(&relay).await;
    assert_eq!(closed_with(&conn).await, 0x11, "CONTROL_MESSAGE_TIMEOUT expected");
    assert_eq!(relay.metric("moq_relay_errors_total{code=\"setup_timeout\"}"), Some(1.0));
    assert_served(&served, 0).await;
}

/// Streams that reach the relay with no byte at all are stopped (CANCELLED,
/// §3.3.1, §3.3.3) after the handshake timeout and the session survives: an
/// empty stream is no stalled message. (A partial first message or stream
/// type is one: relay/tests/stalls.rs.)
#[tokio::test]
async fn streams_opened_and_never_written_are_stopped_and_session_survives() {
    let relay = Relay::start(&["--handshake-timeout-ms", "300"]);
    let (conn, _ctl, _r) = session(&relay).await;
    // Streams the client opens and never writes. A stream reaches the peer
    // with its first frame, or when a higher-numbered one does: QUIC opens
    // every lower-numbered stream of the kind with it (RFC 9000 §3.2). So a
    // last stream of each kind is written, and the empty ones arrive empty.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(conn.open_bi().await.unwrap());
    }
    let idle_uni = conn.open_uni().await.unwrap();
    let mut padding = conn.open_uni().await.unwrap();
    let mut b = Vec::new();
    varint::write(&mut b, 0x132B3E28); // PADDING stream type (§11.5.1)
    padding.write_all(&b).await.unwrap();
    assert_served(&conn, 0).await;
    for (send, _) in idle.iter_mut() {
        assert_eq!(send.stopped().await.unwrap(), Some(1u32.into()), "idle request stream must be stopped (CANCELLED)");
    }
    assert_eq!(idle_uni.stopped().await.unwrap(), Some(1u32.into()));
    assert_served(&conn, 2).await;
}

#[tokio::test]
async fn oversize_object_stops_the_stream_not_the_session() {
    use moq_wire::message::{Message, Publish};
    let relay = Relay::start(&["--max-object-size", "1000"]);
    let (conn, _ctl, _r) = session(&relay).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let publish = Message::Publish(Publish {
        id: 0,
        track_namespace: moq_wire::coding::TrackNamespace::from_utf8_path("hostile/big"),
        track_name: "t".into(),
        track_alias: 5,
        params: Default::default(),
        track_extensions: Default::default(),
    });
    send.write_all(&moq_wire::control::encode_request(&publish).unwrap()).await.unwrap();
    let ok = read_frame(&mut recv).await.unwrap().response().unwrap();
    assert!(matches!(ok, Response::PublishOk(_)), "{ok:?}");
    let mut data = vec![0x30]; // subgroup, zero id, default priority
    varint::write(&mut data, 5);
    varint::write(&mut data, 0);
    varint::write(&mut data, 0); // object id delta
    varint::write(&mut data, 1 << 40); // payload length: 1 TiB
    let mut uni = conn.open_uni().await.unwrap();
    uni.write_all(&data).await.unwrap();
    assert_eq!(uni.stopped().await.unwrap(), Some(9u32.into()), "EXCESSIVE_LOAD expected");
    assert_served(&conn, 2).await;
    assert!(relay.metric("moq_relay_errors_total{code=\"object_too_large\"}").unwrap() >= 1.0);
}

/// A subscriber that never reads: the publisher and a reading subscriber are
/// unaffected, and the relay's queues and memory stay bounded.
#[tokio::test]
async fn subscriber_that_never_reads_is_bounded() {
    use moq_wire::message::{Message, Publish, Subscribe};
    let relay = Relay::start(&["--session-queue-bytes", "262144"]);
    let (pubc, _c, _r) = session(&relay).await;
    let (mut psend, mut precv) = pubc.open_bi().await.unwrap();
    let ns = moq_wire::coding::TrackNamespace::from_utf8_path("hostile/slow");
    let publish = Message::Publish(Publish {
        id: 0,
        track_namespace: ns.clone(),
        track_name: "t".into(),
        track_alias: 1,
        params: Default::default(),
        track_extensions: Default::default(),
    });
    psend.write_all(&moq_wire::control::encode_request(&publish).unwrap()).await.unwrap();
    assert!(matches!(read_frame(&mut precv).await.unwrap().response().unwrap(), Response::PublishOk(_)));

    // Two subscribers: one never touches its data streams, one reads everything.
    let mut subs = Vec::new();
    for _ in 0..2 {
        let (c, ctl, r) = session(&relay).await;
        let (mut s, mut rcv) = c.open_bi().await.unwrap();
        let sub = Message::Subscribe(Subscribe { id: 0, track_namespace: ns.clone(), track_name: "t".into(), params: Default::default() });
        s.write_all(&moq_wire::control::encode_request(&sub).unwrap()).await.unwrap();
        let r0 = read_frame(&mut rcv).await.unwrap().response().unwrap();
        assert!(matches!(r0, Response::SubscribeOk { .. }), "{r0:?}");
        subs.push((c, ctl, r, s, rcv));
    }
    let reader = subs[1].0.clone();
    // 200 groups of 50 KB = 10 MB through the relay. The publisher sends the
    // next group once the reading subscriber has the previous one, so the
    // reader never falls behind while the stuck subscriber does.
    let groups = 200u64;
    let (got_tx, mut got_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(mut uni) = reader.accept_uni().await {
            let Ok(data) = uni.read_to_end(1 << 20).await else { continue };
            // Header: type, alias, group.
            let (_, n) = varint::read(&data).unwrap();
            let (_, m) = varint::read(&data[n..]).unwrap();
            let (g, _) = varint::read(&data[n + m..]).unwrap();
            // The whole payload, at the end of the stream. (A group cached
            // before this subscriber attached comes by catch-up, whose
            // header spells out the subgroup: a few bytes longer.)
            let whole = data.len() >= 50_000 && data[data.len() - 50_000..].iter().all(|b| *b == 7);
            let _ = got_tx.send((g, whole));
        }
    });
    let payload = vec![7u8; 50_000];
    for g in 0..groups {
        let mut data = vec![0x30];
        varint::write(&mut data, 1);
        varint::write(&mut data, g);
        varint::write(&mut data, 0);
        varint::write(&mut data, payload.len() as u64);
        data.extend_from_slice(&payload);
        let mut uni = pubc.open_uni().await.unwrap();
        uni.write_all(&data).await.unwrap();
        uni.finish().unwrap();
        let (got, whole) = got_rx.recv().await.expect("reading subscriber lost its session");
        assert_eq!((got, whole), (g, true), "reading subscriber must get every group, whole");
    }
    let queued = relay.metric("moq_relay_queued_bytes").unwrap();
    assert!(queued <= 262_144.0 + 100_000.0, "queued {queued} bytes beyond the per-session bound");
    assert!(relay.metric("moq_relay_evicted_objects_total").unwrap() >= 1.0, "the stuck subscriber must have lost objects");
    let rss = relay.metric("moq_relay_resident_memory_bytes").unwrap();
    assert!(rss < 200.0 * 1024.0 * 1024.0, "relay RSS {rss} after 10 MB through a stuck subscriber");
}

#[tokio::test]
async fn setup_is_a_well_formed_frame() {
    // Guards the helper the other tests rely on: SETUP is type 0x2F00 as vi64.
    let b = setup_bytes();
    assert_eq!(&b[..2], &[0xaf, 0x00]);
}
