//! Track interleavings, driven step by step without I/O or timers.

use super::*;
use crate::routing::outbound::Action;
use crate::wire::subgroup::{Event, SubgroupParser};
use crate::wire::varint;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

struct NoDatagrams;
impl DatagramSink for NoDatagrams {
    fn send(&self, _: Bytes) {}
}

/// Polls a future exactly once: no timers, no scheduling, no sleeps.
fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(Waker::noop()))
}

fn subscriber(id: u64, outbound: &Arc<Outbound>) -> Subscriber {
    Subscriber::new(id, id, Window::UNFILTERED, outbound.clone(), Arc::new(NoDatagrams))
}

/// Feeds one upstream subgroup stream (group `group`, `n` objects) through
/// the track the way `session::data::subgroup` does, FIN included.
fn upstream_group(track: &Track, serial: u64, group: u64, n: u64) {
    let mut d = vec![0x14];
    for v in [42, group, 0] {
        varint::write(&mut d, v);
    }
    d.push(0x80);
    for o in 0..n {
        let payload = format!("g{group}o{o}");
        varint::write(&mut d, 0);
        varint::write(&mut d, payload.len() as u64);
        d.extend_from_slice(payload.as_bytes());
    }
    let mut parser = SubgroupParser::new(1 << 20);
    parser.push(&d);
    let mut stream = None;
    while let Some(ev) = parser.next().unwrap() {
        match ev {
            Event::Header(header) => {
                track.on_stream_start();
                stream = Some(UpstreamStream { serial, header, first_object: None });
            }
            Event::Object(o) => {
                let up = stream.as_mut().unwrap();
                if up.first_object.is_none() {
                    up.first_object = Some(o.object_id);
                    up.header.subgroup_id = parser.subgroup_id();
                }
                track.on_object(up, &o, 128);
            }
        }
    }
    parser.finish().unwrap();
    track.on_stream_end(serial, None);
}

fn drain(q: &Outbound) -> Vec<Item> {
    let mut out = Vec::new();
    assert_eq!(q.try_drain(&mut out), Some(true), "nothing queued");
    out.into_iter()
        .map(|a| match a {
            Action::Item(i) => i,
            Action::Broken(k) => panic!("stream {k:?} broken"),
        })
        .collect()
}

/// The interleaving behind the flaky routing test: subscriber B's
/// SUBSCRIBE_OK is on the wire, the publisher sends a group and
/// PUBLISH_DONE, and the relay ends the track — all before B's handler
/// resumes to attach. B must still get the group (catch-up) and learn
/// that the track ended, so it can send PUBLISH_DONE with Stream Count 1.
#[test]
fn subscriber_attached_after_the_track_ended_still_sees_the_end() {
    let name = FullName { namespace: TrackNamespace::from_utf8_path("route/shared"), name: "t".into() };
    let track = Track::new(name, Phase::Active { properties: Bytes::new(), default_priority: 128 }, 32, 1 << 20);
    let (qa, qb) = (Arc::new(Outbound::new(1 << 20, Default::default())), Arc::new(Outbound::new(1 << 20, Default::default())));

    // A is attached and already waiting for the end.
    track.attach_with_catchup(subscriber(1, &qa));
    let mut a_ended = pin!(track.ended());
    assert!(poll_once(a_ended.as_mut()).is_pending());

    // The group, then PUBLISH_DONE {status 2, stream_count 1}: the stream
    // it counts is already finished, so draining does not wait.
    upstream_group(&track, 7, 5, 3);
    assert_eq!(track.publish_done(2, "done".into(), 1, Instant::now()), None, "drained at once");
    assert_eq!(poll_once(a_ended.as_mut()), Poll::Ready(Phase::Done { status: 2, reason: "done".into() }));
    assert_eq!(track.detach(1, false), 1);

    // Only now does B's handler attach. A receiver made at this point has
    // already seen `Done`: waiting for a change on it would hang forever
    // (the bug); `ended` sees the end that came first.
    track.attach_with_catchup(subscriber(2, &qb));
    assert_eq!(poll_once(pin!(track.ended())), Poll::Ready(Phase::Done { status: 2, reason: "done".into() }));
    assert_eq!(track.detach(2, false), 1, "PUBLISH_DONE Stream Count for B");

    // Both got the whole group on one finished stream.
    for q in [&qa, &qb] {
        let items = drain(q);
        assert!(matches!(items.first(), Some(Item::Open { .. })), "{items:?}");
        assert!(matches!(items.last(), Some(Item::Fin { .. })), "{items:?}");
        assert_eq!(items.iter().filter(|i| matches!(i, Item::Open { .. })).count(), 1);
    }
}

/// The interleaving behind another flaky routing test: a subscriber
/// attaches between two objects of one upstream stream. It must get the
/// subgroup on one stream — cached first object, then the live one — that
/// is finished with the upstream stream, not a finished catch-up stream
/// plus a second stream for the rest.
#[test]
fn subscriber_attached_mid_stream_gets_the_subgroup_on_one_stream() {
    let name = FullName { namespace: TrackNamespace::from_utf8_path("route/eager"), name: "t".into() };
    let track = Track::new(name, Phase::Active { properties: Bytes::new(), default_priority: 128 }, 32, 1 << 20);
    let q = Arc::new(Outbound::new(1 << 20, Default::default()));
    let mut d = vec![0x14];
    for v in [42, 5, 0] {
        varint::write(&mut d, v);
    }
    d.push(0x80);
    for payload in ["g5o0", "g5o1"] {
        varint::write(&mut d, 0);
        varint::write(&mut d, payload.len() as u64);
        d.extend_from_slice(payload.as_bytes());
    }
    let mut parser = SubgroupParser::new(1 << 20);
    parser.push(&d);
    let Some(Event::Header(header)) = parser.next().unwrap() else { panic!("no header") };
    track.on_stream_start();
    let mut up = UpstreamStream { serial: 9, header, first_object: None };
    for step in 0..2 {
        let Some(Event::Object(o)) = parser.next().unwrap() else { panic!("no object") };
        if up.first_object.is_none() {
            up.first_object = Some(o.object_id);
            up.header.subgroup_id = parser.subgroup_id();
        }
        track.on_object(&up, &o, 128);
        if step == 0 {
            track.attach_with_catchup(subscriber(1, &q));
        }
    }
    track.on_stream_end(9, None);

    let items = drain(&q);
    let keys: std::collections::HashSet<_> = items.iter().map(Item::key).collect();
    assert_eq!(keys.len(), 1, "one downstream stream: {items:?}");
    assert!(matches!(items.first(), Some(Item::Open { .. })) && matches!(items.last(), Some(Item::Fin { .. })), "{items:?}");
    let mut wire = Vec::new();
    for i in &items {
        match i {
            Item::Open { header, .. } => wire.extend_from_slice(header),
            Item::Data { bytes, .. } => wire.extend_from_slice(bytes),
            _ => {}
        }
    }
    let mut p = SubgroupParser::new(1 << 20);
    p.push(&wire);
    let mut payloads = Vec::new();
    while let Some(e) = p.next().unwrap() {
        if let Event::Object(o) = e {
            payloads.push(String::from_utf8(o.payload().to_vec()).unwrap());
        }
    }
    p.finish().unwrap();
    assert_eq!(payloads, ["g5o0", "g5o1"]);
    assert_eq!(track.detach(1, false), 1);
}

#[test]
fn ended_reports_failure_and_ignores_non_terminal_changes() {
    let name = FullName { namespace: TrackNamespace::from_utf8_path("a"), name: "t".into() };
    let track = Track::new(name, Phase::Pending, 4, 1 << 16);
    let mut ended = pin!(track.ended());
    assert!(poll_once(ended.as_mut()).is_pending());
    track.set_phase(Phase::Active { properties: Bytes::new(), default_priority: 128 });
    assert!(poll_once(ended.as_mut()).is_pending());
    track.set_phase(Phase::Failed { code: 4, reason: "gone".into() });
    assert_eq!(poll_once(ended.as_mut()), Poll::Ready(Phase::Failed { code: 4, reason: "gone".into() }));
}

fn active(path: &str) -> Arc<Track> {
    let name = FullName { namespace: TrackNamespace::from_utf8_path(path), name: "t".into() };
    Track::new(name, Phase::Active { properties: Bytes::new(), default_priority: 128 }, 32, 1 << 20)
}

/// PUBLISH_DONE overtook its last stream (§10.11): the track stays active
/// until that stream has been forwarded and finished, then ends at once —
/// no timer involved.
#[test]
fn publish_done_waits_for_the_streams_it_counts() {
    let track = active("drain/late");
    let q = Arc::new(Outbound::new(1 << 20, Default::default()));
    track.attach_with_catchup(subscriber(1, &q));
    let t0 = Instant::now();
    upstream_group(&track, 1, 0, 2);
    // Counts two streams; only one has been seen.
    let deadline = track.publish_done(0, "bye".into(), 2, t0).expect("must wait for the second stream");
    assert_eq!(deadline, t0 + DRAIN_TIMEOUT);
    assert_eq!(track.poll_timeout(), Some(deadline));
    let mut ended = pin!(track.ended());
    assert!(poll_once(ended.as_mut()).is_pending());
    // Before the deadline, time alone changes nothing.
    track.handle_timeout(deadline - Duration::from_millis(1));
    assert!(poll_once(ended.as_mut()).is_pending());
    // The second stream arrives, is forwarded, and ends: the track ends now.
    upstream_group(&track, 2, 1, 1);
    assert_eq!(poll_once(ended.as_mut()), Poll::Ready(Phase::Done { status: 0, reason: "bye".into() }));
    assert_eq!(track.poll_timeout(), None);
    assert_eq!(track.detach(1, false), 2, "both streams reached the subscriber");
}

/// A stream that PUBLISH_DONE counts but that never arrives does not hold
/// the track open: it ends when the routing core is told the deadline passed.
#[test]
fn publish_done_gives_up_on_missing_streams_at_its_deadline() {
    let track = active("drain/lost");
    let t0 = Instant::now();
    track.on_stream_start(); // open, never finished
    let deadline = track.publish_done(3, "end".into(), 1, t0).expect("a stream is still open");
    let mut ended = pin!(track.ended());
    track.handle_timeout(t0 + Duration::from_millis(1999));
    assert!(poll_once(ended.as_mut()).is_pending());
    track.handle_timeout(deadline);
    assert_eq!(poll_once(ended.as_mut()), Poll::Ready(Phase::Done { status: 3, reason: "end".into() }));
}
