//! Routing behaviour end to end with raw draft-18 clients: shared upstream
//! subscriptions, fan-out, PUBLISH_DONE, rendezvous, forward state, datagrams.

mod common;
use common::{read_frame, session, Relay};
use moq_wire::coding::{KeyValuePairs, TrackNamespace};
use moq_wire::control::{encode_request, Response};
use moq_wire::message::{Message, PublishNamespace, Subscribe};
use moq_wire::varint;

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

async fn subscribe(
    conn: &quinn::Connection,
    id: u64,
    path: &str,
    params: KeyValuePairs,
) -> (quinn::SendStream, quinn::RecvStream, Response) {
    let (mut s, mut r) = conn.open_bi().await.unwrap();
    let m = Message::Subscribe(Subscribe { id, track_namespace: ns(path), track_name: "t".into(), params });
    s.write_all(&encode_request(&m).unwrap()).await.unwrap();
    let resp = read_frame(&mut r).await.unwrap().response().unwrap();
    (s, r, resp)
}

/// The publisher side of a forwarded SUBSCRIBE: answer SUBSCRIBE_OK with `alias`.
async fn accept_subscribe(conn: &quinn::Connection, alias: u64) -> (quinn::SendStream, quinn::RecvStream) {
    let (mut s, mut r) = conn.accept_bi().await.unwrap();
    let f = read_frame(&mut r).await.unwrap();
    assert!(matches!(f.request().unwrap(), Message::Subscribe(_)), "relay should forward SUBSCRIBE");
    s.write_all(&Response::SubscribeOk { alias, params: KeyValuePairs::new(), properties: Default::default() }.encode()).await.unwrap();
    (s, r)
}

/// One subgroup stream (type 0x14: explicit subgroup id, priority) with `n` objects.
async fn send_group(conn: &quinn::Connection, alias: u64, group: u64, n: u64) {
    let mut d = vec![0x14];
    for v in [alias, group, 0] {
        varint::write(&mut d, v);
    }
    d.push(0x80);
    for o in 0..n {
        varint::write(&mut d, 0);
        let payload = format!("g{group}o{o}");
        varint::write(&mut d, payload.len() as u64);
        d.extend_from_slice(payload.as_bytes());
    }
    let mut uni = conn.open_uni().await.unwrap();
    uni.write_all(&d).await.unwrap();
    uni.finish().unwrap();
}

/// Reads one whole subgroup stream: (alias, group, payloads).
async fn recv_group(conn: &quinn::Connection) -> (u64, u64, Vec<String>) {
    let mut uni = conn.accept_uni().await.unwrap();
    let data = uni.read_to_end(1 << 20).await.unwrap();
    let mut p = moq_wire::subgroup::SubgroupParser::new(1 << 20);
    p.push(&data);
    let mut header = None;
    let mut payloads = Vec::new();
    while let Some(e) = p.next().unwrap() {
        match e {
            moq_wire::subgroup::Event::Header(h) => header = Some(h),
            moq_wire::subgroup::Event::Object(o) => payloads.push(String::from_utf8(o.payload().to_vec()).unwrap()),
        }
    }
    p.finish().unwrap();
    let h = header.unwrap();
    (h.track_alias, h.group_id, payloads)
}

#[tokio::test]
async fn one_upstream_subscription_feeds_every_subscriber_until_publish_done() {
    let relay = Relay::start(&[]);
    let (publ, _c0, _r0) = session(&relay).await;
    let _ann = announce(&publ, "route/shared").await;
    let (a, _ca, _ra) = session(&relay).await;
    let (b, _cb, _rb) = session(&relay).await;

    let sub_a = tokio::spawn({
        let a = a.clone();
        async move { subscribe(&a, 0, "route/shared", KeyValuePairs::new()).await }
    });
    let (mut up_send, _up_recv) = accept_subscribe(&publ, 42).await;
    let (_sa, mut ra, resp_a) = sub_a.await.unwrap();
    let Response::SubscribeOk { alias: alias_a, .. } = resp_a else { panic!("{resp_a:?}") };
    // The second subscriber is answered without a second upstream SUBSCRIBE:
    // the publisher never answers another one, so this would hang otherwise.
    let (_sb, mut rb, resp_b) = subscribe(&b, 0, "route/shared", KeyValuePairs::new()).await;
    let Response::SubscribeOk { alias: alias_b, .. } = resp_b else { panic!("{resp_b:?}") };

    send_group(&publ, 42, 5, 3).await;
    let want = vec!["g5o0".to_string(), "g5o1".into(), "g5o2".into()];
    assert_eq!(recv_group(&a).await, (alias_a, 5, want.clone()));
    assert_eq!(recv_group(&b).await, (alias_b, 5, want));

    // The publisher ends the track: both subscribers get PUBLISH_DONE.
    up_send.write_all(&Response::PublishDone { status: 2, stream_count: 1, reason: "done".into() }.encode()).await.unwrap();
    up_send.finish().unwrap();
    for r in [&mut ra, &mut rb] {
        match read_frame(r).await.unwrap().response().unwrap() {
            Response::PublishDone { status, stream_count, .. } => assert_eq!((status, stream_count), (2, 1)),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn subscribe_waits_for_a_late_publisher_within_rendezvous_timeout() {
    let relay = Relay::start(&[]);
    let (sub, _c, _r) = session(&relay).await;
    let mut params = KeyValuePairs::new();
    params.set_rendezvous_timeout(10_000);
    let pending = tokio::spawn(async move { subscribe(&sub, 0, "route/late", params).await.2 });
    let (publ, _c0, _r0) = session(&relay).await;
    let _ann = announce(&publ, "route/late").await;
    let _up = accept_subscribe(&publ, 1).await;
    assert!(matches!(pending.await.unwrap(), Response::SubscribeOk { .. }));
}

#[tokio::test]
async fn forward_zero_receives_nothing_until_updated() {
    let relay = Relay::start(&[]);
    let (publ, _c0, _r0) = session(&relay).await;
    let _ann = announce(&publ, "route/fwd").await;
    let (s, _c, _r) = session(&relay).await;
    let mut params = KeyValuePairs::new();
    params.set_forward(false);
    let pending = tokio::spawn({
        let s = s.clone();
        async move { subscribe(&s, 0, "route/fwd", params).await }
    });
    let _up = accept_subscribe(&publ, 7).await;
    let (mut ss, mut sr, resp) = pending.await.unwrap();
    assert!(matches!(resp, Response::SubscribeOk { .. }));
    send_group(&publ, 7, 0, 1).await;
    // REQUEST_UPDATE to Forward State 1 (§10.9.1); its REQUEST_OK orders it
    // after group 0 was handled, so group 1 is the first we may see.
    let mut upd = KeyValuePairs::new();
    upd.set_forward(true);
    // Make sure group 0 reached the relay before the update.
    let _ = relay.wait_objects_in(1).await;
    ss.write_all(&Response::RequestUpdate { id: 2, params: upd }.encode()).await.unwrap();
    assert!(matches!(read_frame(&mut sr).await.unwrap().response().unwrap(), Response::RequestOk(_)));
    send_group(&publ, 7, 1, 1).await;
    let (_, group, _) = recv_group(&s).await;
    assert_eq!(group, 1, "group 0 was sent while Forward State was 0");
}

#[tokio::test]
async fn datagrams_are_forwarded_with_the_subscribers_alias_and_properties() {
    let relay = Relay::start(&[]);
    let (publ, _c0, _r0) = session(&relay).await;
    let _ann = announce(&publ, "route/dgram").await;
    let (s, _c, _r) = session(&relay).await;
    let pending = tokio::spawn({
        let s = s.clone();
        async move { subscribe(&s, 0, "route/dgram", KeyValuePairs::new()).await }
    });
    let _up = accept_subscribe(&publ, 9).await;
    let (_ss, _sr, resp) = pending.await.unwrap();
    let Response::SubscribeOk { alias, .. } = resp else { panic!() };
    // type 0x01: properties; alias 9, group 3, object 4, priority, properties, payload.
    let d = bytes::Bytes::from_static(&[0x01, 0x09, 0x03, 0x04, 0x80, 0x02, 0x0a, 0x01, b'h', b'i']);
    publ.send_datagram(d).unwrap();
    let got = s.read_datagram().await.unwrap();
    let parsed = moq_wire::datagram::Datagram::parse(got).unwrap();
    assert_eq!((parsed.track_alias, parsed.group_id, parsed.object_id), (alias, 3, 4));
    assert_eq!(&parsed.properties()[..], &[0x0a, 0x01]);
    assert_eq!(&parsed.payload()[..], b"hi");
}

/// Objects the publisher sends right after its SUBSCRIBE_OK — possibly before
/// the relay has answered the subscriber — still reach the subscriber.
#[tokio::test]
async fn objects_sent_right_after_subscribe_ok_are_not_lost() {
    let relay = Relay::start(&[]);
    let (publ, _c0, _r0) = session(&relay).await;
    let _ann = announce(&publ, "route/eager").await;
    let (s, _c, _r) = session(&relay).await;
    let pending = tokio::spawn({
        let s = s.clone();
        async move { subscribe(&s, 0, "route/eager", KeyValuePairs::new()).await }
    });
    let _up = accept_subscribe(&publ, 3).await;
    send_group(&publ, 3, 0, 2).await;
    let (_ss, _sr, resp) = pending.await.unwrap();
    let Response::SubscribeOk { alias, .. } = resp else { panic!("{resp:?}") };
    let (got_alias, group, payloads) = recv_group(&s).await;
    assert_eq!((got_alias, group), (alias, 0));
    assert_eq!(payloads, vec!["g0o0".to_string(), "g0o1".into()]);
}
