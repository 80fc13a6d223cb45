//! Data-plane tests: objects published by one session reach subscribers of
//! another through the relay (draft-ietf-moq-transport-18 §9, §11).

use super::control::subscribe_served;
use super::{app_int_property, app_properties, check, close_all, Ctx, Expecting, Failure, APP_INT_PROPERTY, TRACK};
use bytes::Bytes;
use moq_client::{
    Carrier, DatagramSpec, FetchedObject, Object, RequestHandle, Session, SubgroupSpec, SubscribeParams, Subscription, TrackPublisher,
};
use moq_wire::coding::Location;
use std::time::Duration;
use tokio::sync::oneshot;

/// Track Alias the publishers in these tests choose (§11.1).
const ALIAS: u64 = 5;

/// Value of the application Track Property the publisher sets.
const TRACK_PROPERTY: u64 = 7;

/// Gap between groups, so groups on different streams arrive in order.
const GROUP_GAP: Duration = Duration::from_millis(20);

/// A publisher that announced the test namespace and serves one forwarded
/// SUBSCRIBE, and a subscriber whose SUBSCRIBE it answered.
struct PubSub {
    publisher: Session,
    _announced: RequestHandle,
    track: TrackPublisher,
    subscriber: Session,
    sub: Subscription,
}

async fn pub_sub(ctx: &Ctx, params: SubscribeParams) -> Result<PubSub, Failure> {
    let publisher = ctx.connect("publisher").await?;
    let ns = ctx.namespace();
    let announced = publisher.publish_namespace(&ns).await.expecting("PUBLISH_NAMESPACE_OK")?;
    let subscriber = ctx.connect("subscriber").await?;
    let properties = app_properties(TRACK_PROPERTY, b"track");
    let (track, sub) = subscribe_served(ctx, &publisher, &subscriber, params, ALIAS, properties).await?;
    ctx.step(format!("subscribed: relay alias {}", sub.track_alias));
    // §9.6: a relay includes the track's properties in SUBSCRIBE_OK; unknown
    // ones are forwarded unchanged (§2.5).
    let got = app_int_property(&sub.properties);
    check(
        got == Some(TRACK_PROPERTY),
        format!("Track Property {APP_INT_PROPERTY:#x}={TRACK_PROPERTY} in SUBSCRIBE_OK"),
        format!("{got:?} in {} bytes of Track Properties", sub.properties.len()),
    )?;
    ctx.settle().await;
    Ok(PubSub { publisher, _announced: announced, track, subscriber, sub })
}

/// Payload size of object `(g, o)` in these tests: varied, some > 1 packet.
fn size(g: u64, o: u64) -> usize {
    [40, 1500, 300, 3000, 7][((g + o) % 5) as usize]
}

fn loc(l: Location) -> String {
    format!("{}/{}", l.group_id, l.object_id)
}

/// Checks an object received on a subscription against what was sent.
fn expect_object(ctx: &Ctx, got: &Object, g: u64, o: u64, len: usize) -> Result<(), Failure> {
    check((got.group_id, got.object_id) == (g, o), format!("object {g}/{o}"), format!("object {}", loc(got.location())))?;
    check(got.status == 0, "status Normal (0x0)", format!("status {:#x}", got.status))?;
    let want = ctx.payload(g, o, len);
    check(
        got.payload == want,
        format!("{}-byte payload of {g}/{o}", want.len()),
        format!("{} bytes that differ from what was sent", got.payload.len()),
    )
}

/// Sends groups `groups` of `per_group` objects, one subgroup stream each.
async fn send_groups(ctx: &Ctx, track: &TrackPublisher, groups: std::ops::Range<u64>, per_group: u64) -> Result<(), Failure> {
    for g in groups {
        let mut w =
            track.open_subgroup(SubgroupSpec { end_of_group: true, ..SubgroupSpec::new(g, 0) }).await.expecting("to open a subgroup")?;
        for o in 0..per_group {
            w.write(o, &ctx.payload(g, o, size(g, o))).await.expecting("to write an object")?;
        }
        w.finish();
        tokio::time::sleep(GROUP_GAP).await;
    }
    Ok(())
}

/// `single-object`: one object, byte-exact, on a subgroup stream.
pub async fn single_object(ctx: Ctx) -> Result<(), Failure> {
    let mut p = pub_sub(&ctx, SubscribeParams::new()).await?;
    let payload = ctx.payload(0, 0, 4000);
    let properties = app_properties(42, b"object");
    let spec = SubgroupSpec { properties: true, ..SubgroupSpec::new(0, 0) };
    let mut w = p.track.open_subgroup(spec).await.expecting("to open a subgroup")?;
    w.write_with_properties(0, &properties, &payload).await.expecting("to write the object")?;
    w.finish();
    ctx.step("publisher sent object 0/0");
    let got = p.sub.next_object(Duration::from_secs(3)).await.expecting("object 0/0")?;
    expect_object(&ctx, &got, 0, 0, 4000)?;
    // §9.7: Object fields, unknown properties included, are not modified.
    check(
        got.properties == properties,
        format!("{} bytes of Object Properties, unchanged", properties.len()),
        format!("{} bytes that differ", got.properties.len()),
    )?;
    check(got.subgroup_id == Some(0), "subgroup 0", format!("subgroup {:?}", got.subgroup_id))?;
    check(got.publisher_priority == Some(128), "publisher priority 128", format!("priority {:?}", got.publisher_priority))?;
    check(matches!(got.carrier, Carrier::Stream(_)), "a subgroup stream", "a datagram")?;
    close_all(vec![("subscriber", p.subscriber), ("publisher", p.publisher)]).await
}

/// `multiple-groups`: 3 groups of 4 objects, all received, in order, each
/// group on its own stream.
pub async fn multiple_groups(ctx: Ctx) -> Result<(), Failure> {
    let mut p = pub_sub(&ctx, SubscribeParams::new()).await?;
    let (sent, got) = tokio::join!(send_groups(&ctx, &p.track, 0..3, 4), p.sub.objects(12, Duration::from_secs(4)));
    sent?;
    let got = got.expecting("12 objects")?;
    let mut i = 0;
    for g in 0..3 {
        for o in 0..4 {
            expect_object(&ctx, &got[i], g, o, size(g, o))?;
            i += 1;
        }
        let streams: Vec<_> = got.iter().filter(|x| x.group_id == g).map(|x| x.carrier).collect();
        check(streams.windows(2).all(|w| w[0] == w[1]), format!("group {g} on one stream"), format!("{streams:?}"))?;
    }
    // The publisher ends the track; the relay passes PUBLISH_DONE on with the
    // number of streams it opened for this subscriber (§10.11).
    p.track.done(moq_client::publisher::done_status::TRACK_ENDED, "done").await.expecting("to send PUBLISH_DONE")?;
    let (status, streams, _) = p.sub.done(Duration::from_secs(3)).await.expecting("PUBLISH_DONE")?;
    ctx.field("publish_done", format!("status {status:#x}, {streams} streams"));
    check(streams == 3, "PUBLISH_DONE Stream Count 3", format!("Stream Count {streams}"))?;
    close_all(vec![("subscriber", p.subscriber), ("publisher", p.publisher)]).await
}

/// `late-subscriber`: a second subscriber joins in the middle of group 1
/// and receives only the objects after the join point, in order, from an
/// object or group boundary on, through the end.
pub async fn late_subscriber(ctx: Ctx) -> Result<(), Failure> {
    const GROUPS: u64 = 4;
    const PER: u64 = 5;
    let PubSub { publisher, _announced, track, subscriber, mut sub } = pub_sub(&ctx, SubscribeParams::new()).await?;
    let (joined_tx, joined_rx) = oneshot::channel::<()>();
    let (eight_tx, eight_rx) = oneshot::channel::<()>();

    let publish = async {
        send_groups(&ctx, &track, 0..1, PER).await?;
        let mut w =
            track.open_subgroup(SubgroupSpec { end_of_group: true, ..SubgroupSpec::new(1, 0) }).await.expecting("to open a subgroup")?;
        for o in 0..3 {
            w.write(o, &ctx.payload(1, o, size(1, o))).await.expecting("to write an object")?;
        }
        // Hold group 1 open until the late subscriber has joined; if it gave
        // up, its own error explains the failure.
        if joined_rx.await.is_err() {
            return Ok(());
        }
        for o in 3..PER {
            w.write(o, &ctx.payload(1, o, size(1, o))).await.expecting("to write an object")?;
        }
        w.finish();
        tokio::time::sleep(GROUP_GAP).await;
        send_groups(&ctx, &track, 2..GROUPS, PER).await
    };

    let first = async {
        let mut got = Vec::new();
        let mut eight_tx = Some(eight_tx);
        while got.len() < (GROUPS * PER) as usize {
            got.push(sub.next_object(Duration::from_secs(4)).await.expecting(&format!("object {} for the first subscriber", got.len()))?);
            if got.len() == 8 {
                if let Some(tx) = eight_tx.take() {
                    let _ = tx.send(());
                }
            }
        }
        Ok::<_, Failure>(got)
    };

    let late = async {
        eight_rx.await.map_err(|_| Failure::new("8 objects at the first subscriber", "fewer", "the first subscriber failed"))?;
        let s = ctx.connect("subscriber_2").await?;
        let sub = s.subscribe(&ctx.namespace(), TRACK, SubscribeParams::new().largest_object()).await.expecting("SUBSCRIBE_OK");
        ctx.settle().await;
        let _ = joined_tx.send(());
        let mut late = sub?;
        let largest = late.largest();
        ctx.field("join_largest_object", largest.map(loc).unwrap_or_else(|| "absent".into()));
        let mut got = Vec::new();
        loop {
            let o = late.next_object(Duration::from_secs(4)).await.expecting("objects up to the last one at the late subscriber")?;
            let last = (o.group_id, o.object_id) == (GROUPS - 1, PER - 1);
            got.push(o);
            if last {
                break;
            }
        }
        Ok::<_, Failure>((s, largest, got, late))
    };

    let (published, first, late) = tokio::join!(publish, first, late);
    // Report the cause, not its consequences: the late subscriber waits for
    // the first one, the publisher for the late one.
    published?;
    let first = first?;
    let (second, largest, got, _sub) = late?;

    let mut i = 0;
    for g in 0..GROUPS {
        for o in 0..PER {
            expect_object(&ctx, &first[i], g, o, size(g, o))?;
            i += 1;
        }
    }
    let largest =
        largest.ok_or_else(|| Failure::new("LARGEST_OBJECT 1/2 in SUBSCRIBE_OK", "no LARGEST_OBJECT", "missing Largest Object"))?;
    check(largest == Location::new(1, 2), "LARGEST_OBJECT 1/2", format!("LARGEST_OBJECT {}", loc(largest)))?;
    let start = got[0].location();
    ctx.field("late_first_object", loc(start));
    check(
        start == Location::new(1, 3) || start == Location::new(2, 0),
        "first object 1/3 (object boundary) or 2/0 (group boundary)",
        format!("first object {}", loc(start)),
    )?;
    let mut expect = (start.group_id, start.object_id);
    for o in &got {
        expect_object(&ctx, o, expect.0, expect.1, size(expect.0, expect.1))?;
        expect = if expect.1 + 1 == PER { (expect.0 + 1, 0) } else { (expect.0, expect.1 + 1) };
    }
    close_all(vec![("subscriber_2", second), ("subscriber", subscriber), ("publisher", publisher)]).await
}

/// Answers FETCHes the relay forwards to the publisher (a relay without the
/// range cached asks upstream, §9.5) from the `groups` x `per_group` objects
/// these tests publish. Joining fetches are refused.
fn serve_fetches(ctx: &Ctx, publisher: &Session, groups: u64, per_group: u64) -> tokio::task::JoinHandle<()> {
    let (ctx, publisher) = (ctx.clone(), publisher.clone());
    tokio::spawn(async move {
        while let Ok(f) = publisher.accept_fetch(Duration::from_secs(10)).await {
            let Some((start, end)) = f.range() else {
                let _ = f.reject(0x3, "joining FETCH not supported by this publisher").await;
                continue;
            };
            ctx.step(format!("publisher serving FETCH {}..{}", loc(start), loc(end)));
            let last = if end.object_id == 0 { (end.group_id, u64::MAX) } else { (end.group_id, end.object_id - 1) };
            let objects: Vec<FetchedObject> = (0..groups)
                .flat_map(|g| (0..per_group).map(move |o| (g, o)))
                .filter(|&(g, o)| (g, o) >= (start.group_id, start.object_id) && (g, o) <= last)
                .map(|(g, o)| FetchedObject {
                    group_id: g,
                    subgroup_id: Some(0),
                    object_id: o,
                    publisher_priority: 128,
                    properties: Bytes::new(),
                    payload: ctx.payload(g, o, size(g, o)),
                })
                .collect();
            let end = objects.last().map(|o| Location::new(o.group_id, o.object_id + 1)).unwrap_or(start);
            let _ = f.respond(end, app_properties(TRACK_PROPERTY, b"track"), &objects).await;
        }
    })
}

/// `fetch`: after 3 groups were forwarded, a standalone FETCH of group 1
/// returns its objects via FETCH_OK and a FETCH_HEADER stream.
pub async fn fetch(ctx: Ctx) -> Result<(), Failure> {
    let mut p = pub_sub(&ctx, SubscribeParams::new()).await?;
    let server = serve_fetches(&ctx, &p.publisher, 3, 4);
    let (sent, got) = tokio::join!(send_groups(&ctx, &p.track, 0..3, 4), p.sub.objects(12, Duration::from_secs(3)));
    sent?;
    got.expecting("12 objects")?;
    // End Location is "last object plus one" (§10.12.1): 1/4 = up to 1/3.
    let fetched = p
        .subscriber
        .fetch(&ctx.namespace(), TRACK, Location::new(1, 0), Location::new(1, 4))
        .await
        .expecting("FETCH_OK and the fetch stream")?;
    ctx.field("fetch_end_location", loc(fetched.end_location));
    check(fetched.end_location == Location::new(1, 4), "FETCH_OK End Location 1/4", format!("End Location {}", loc(fetched.end_location)))?;
    check(!fetched.end_of_track, "End Of Track 0", "End Of Track 1")?;
    let prop = app_int_property(&fetched.properties);
    check(
        prop == Some(TRACK_PROPERTY),
        format!("Track Property {APP_INT_PROPERTY:#x}={TRACK_PROPERTY} in FETCH_OK"),
        format!("{prop:?} in {} bytes of Track Properties", fetched.properties.len()),
    )?;
    let objects = fetched.objects();
    let ids: Vec<String> = objects.iter().map(|o| loc(o.location())).collect();
    check(objects.len() == 4, "objects 1/0..1/3", format!("objects {ids:?}"))?;
    for (o, got) in objects.iter().enumerate() {
        let o = o as u64;
        check(got.location() == Location::new(1, o), format!("object 1/{o}"), format!("object {}", loc(got.location())))?;
        let want = ctx.payload(1, o, size(1, o));
        check(got.payload == want, format!("{}-byte payload of 1/{o}", want.len()), format!("{} bytes that differ", got.payload.len()))?;
        check(got.subgroup_id == Some(0), "subgroup 0", format!("subgroup {:?}", got.subgroup_id))?;
        check(got.publisher_priority == 128, "publisher priority 128", format!("priority {}", got.publisher_priority))?;
    }
    server.abort();
    close_all(vec![("subscriber", p.subscriber), ("publisher", p.publisher)]).await
}

/// `datagrams`: objects sent as OBJECT_DATAGRAMs arrive as datagrams, with
/// their Object IDs and priorities intact.
pub async fn datagrams(ctx: Ctx) -> Result<(), Failure> {
    const N: u64 = 5;
    let mut p = pub_sub(&ctx, SubscribeParams::new()).await?;
    let specs: Vec<DatagramSpec> = (0..N)
        .map(|o| DatagramSpec {
            // Alternate explicit and default priority; object 0 uses ZERO_OBJECT_ID.
            priority: if o % 2 == 0 { Some(64) } else { None },
            end_of_group: o == N - 1,
            ..DatagramSpec::new(0, o, ctx.payload(0, o, 200))
        })
        .collect();
    let send = async {
        for s in &specs {
            p.track.send_datagram(s).expecting("to send a datagram")?;
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        Ok::<_, Failure>(())
    };
    let (sent, got) = tokio::join!(send, p.sub.objects(N as usize, Duration::from_secs(3)));
    sent?;
    let mut got = got.expecting(&format!("{N} datagram objects"))?;
    got.sort_by_key(|o| o.object_id);
    for (s, o) in specs.iter().zip(&got) {
        expect_object(&ctx, o, 0, s.object_id, 200)?;
        check(o.carrier == Carrier::Datagram, "a datagram", "a subgroup stream")?;
        // DEFAULT_PRIORITY means the track's priority: 128, as the track has
        // no DEFAULT PUBLISHER PRIORITY property (§12.4).
        let (want, got) = (s.priority.unwrap_or(128), o.publisher_priority.unwrap_or(128));
        check(want == got, format!("priority {want}"), format!("priority {got}"))?;
    }
    close_all(vec![("subscriber", p.subscriber), ("publisher", p.publisher)]).await
}

/// `joining-fetch`: a subscriber joining mid-group uses a Relative Joining
/// FETCH (§10.12.2) to get the previous group and the current one up to the
/// Joining Location, then the subscription continues without gap or overlap.
pub async fn joining_fetch(ctx: Ctx) -> Result<(), Failure> {
    let PubSub { publisher, _announced, track, subscriber, mut sub } = pub_sub(&ctx, SubscribeParams::new()).await?;
    let server = serve_fetches(&ctx, &publisher, 2, 4);
    // Group 0 complete, group 1 up to object 1, its stream left open.
    send_groups(&ctx, &track, 0..1, 4).await?;
    let mut w =
        track.open_subgroup(SubgroupSpec { end_of_group: true, ..SubgroupSpec::new(1, 0) }).await.expecting("to open a subgroup")?;
    for o in 0..2 {
        w.write(o, &ctx.payload(1, o, size(1, o))).await.expecting("to write an object")?;
    }
    sub.objects(6, Duration::from_secs(3)).await.expecting("6 objects at the first subscriber")?;

    let late = ctx.connect("subscriber_2").await?;
    let mut joined = late.subscribe(&ctx.namespace(), TRACK, SubscribeParams::new().largest_object()).await.expecting("SUBSCRIBE_OK")?;
    ctx.settle().await;
    let largest = joined.largest().map(loc).unwrap_or_else(|| "absent".into());
    check(joined.largest() == Some(Location::new(1, 1)), "LARGEST_OBJECT 1/1", format!("LARGEST_OBJECT {largest}"))?;
    // Draft-18: a Relative Joining FETCH; draft-22: the same range asked
    // for as a backfill (FILL_PARAMETERS) of the subscription.
    let fetched = joined.join(1, true).await.expecting("FETCH_OK and the fetch stream")?;
    ctx.field("fetch_end_location", loc(fetched.end_location));
    let ids: Vec<String> = fetched.objects().iter().map(|o| loc(o.location())).collect();
    let want: Vec<String> = (0..4).map(|o| format!("0/{o}")).chain((0..2).map(|o| format!("1/{o}"))).collect();
    check(ids == want, format!("objects {want:?}"), format!("objects {ids:?}"))?;
    for o in fetched.objects() {
        let want = ctx.payload(o.group_id, o.object_id, size(o.group_id, o.object_id));
        check(o.payload == want, format!("payload of {}", loc(o.location())), "different bytes")?;
    }

    // The rest of group 1 arrives on the subscription.
    for o in 2..4 {
        w.write(o, &ctx.payload(1, o, size(1, o))).await.expecting("to write an object")?;
    }
    w.finish();
    let rest = joined.objects(2, Duration::from_secs(3)).await.expecting("objects 1/2 and 1/3")?;
    expect_object(&ctx, &rest[0], 1, 2, size(1, 2))?;
    expect_object(&ctx, &rest[1], 1, 3, size(1, 3))?;
    drop(joined);
    server.abort();
    close_all(vec![("subscriber_2", late), ("subscriber", subscriber), ("publisher", publisher)]).await
}
