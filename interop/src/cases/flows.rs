//! The alternative flows: namespace discovery with SUBSCRIBE_NAMESPACE
//! (§6.1, §10.18) and publisher-initiated subscriptions with PUBLISH
//! (§5.1, §10.10).

use super::{check, close_all, Ctx, Expecting, Failure, TRACK};
use moq_client::{NamespaceEvent, SubgroupSpec, SubscribeParams};
use moq_wire::coding::{Location, TrackNamespacePrefix, TupleField};
use std::time::Duration;

fn show(e: &NamespaceEvent) -> String {
    match e {
        NamespaceEvent::Namespace(s) => format!("NAMESPACE {}", s.to_utf8_path()),
        NamespaceEvent::Done(s) => format!("NAMESPACE_DONE {}", s.to_utf8_path()),
    }
}

/// `subscribe-namespace`: SUBSCRIBE_NAMESPACE lists a namespace announced
/// before it (NAMESPACE), reports one announced after it, and reports each
/// withdrawal (NAMESPACE_DONE). Suffixes are relative to the prefix (§10.16).
pub async fn subscribe_namespace(ctx: Ctx) -> Result<(), Failure> {
    let prefix = ctx.prefix();
    let under = |leaf: &str| {
        let mut ns = ctx.namespace();
        ns.add(TupleField::from_utf8(leaf));
        ns
    };
    let suffix = |leaf: &str| TrackNamespacePrefix::from_utf8_path(leaf);
    let t = Duration::from_secs(2);

    let publisher = ctx.connect("publisher").await?;
    let a = publisher.publish_namespace(&under("a")).await.expecting("PUBLISH_NAMESPACE_OK for a")?;
    let subscriber = ctx.connect("subscriber").await?;
    let mut watch = subscriber.subscribe_namespace(&prefix).await.expecting("REQUEST_OK (SUBSCRIBE_NAMESPACE_OK)")?;

    let mut expect = async |want: NamespaceEvent| -> Result<(), Failure> {
        let got = watch.next(t).await.expecting(&show(&want))?;
        ctx.step(format!("subscriber received {}", show(&got)));
        check(got == want, show(&want), show(&got))
    };
    expect(NamespaceEvent::Namespace(suffix("a"))).await?;
    let b = publisher.publish_namespace(&under("b")).await.expecting("PUBLISH_NAMESPACE_OK for b")?;
    expect(NamespaceEvent::Namespace(suffix("b"))).await?;
    a.cancel();
    expect(NamespaceEvent::Done(suffix("a"))).await?;
    if publisher.version() == moq_wire::Version::Draft18 {
        // Draft-18: closing the stream with FIN withdraws too.
        b.finish();
    } else {
        // Draft-22: a FIN only ends the publisher's messages; a reset withdraws.
        b.cancel();
    }
    expect(NamespaceEvent::Done(suffix("b"))).await?;
    close_all(vec![("subscriber", subscriber), ("publisher", publisher)]).await
}

/// `publish-direct`: the publisher PUBLISHes a track without announcing a
/// namespace and sends group 0; a subscriber then SUBSCRIBEs (Largest Object
/// filter), learns Largest Object 0/2, receives exactly group 1, and finally
/// PUBLISH_DONE when the publisher ends the track.
pub async fn publish_direct(ctx: Ctx) -> Result<(), Failure> {
    const PER: u64 = 3;
    let ns = ctx.namespace();
    let publisher = ctx.connect("publisher").await?;
    let track = publisher.publish(&ns, TRACK, 9).await.expecting("PUBLISH_OK")?;
    ctx.step("publisher received PUBLISH_OK");
    let send_group = |g: u64| {
        let track = &track;
        let ctx = &ctx;
        async move {
            let mut w = track
                .open_subgroup(SubgroupSpec { end_of_group: true, ..SubgroupSpec::new(g, 0) })
                .await
                .expecting("to open a subgroup")?;
            for o in 0..PER {
                w.write(o, &ctx.payload(g, o, 500)).await.expecting("to write an object")?;
            }
            w.finish();
            Ok::<_, Failure>(())
        }
    };
    send_group(0).await?;
    // Let group 0 reach the relay before the subscriber asks.
    tokio::time::sleep(Duration::from_millis(50)).await;

    let subscriber = ctx.connect("subscriber").await?;
    let mut sub = subscriber.subscribe(&ns, TRACK, SubscribeParams::new().largest_object()).await.expecting("SUBSCRIBE_OK")?;
    ctx.settle().await;
    let largest = sub.largest().map(|l| format!("{}/{}", l.group_id, l.object_id)).unwrap_or_else(|| "absent".into());
    check(sub.largest() == Some(Location::new(0, PER - 1)), format!("LARGEST_OBJECT 0/{}", PER - 1), format!("LARGEST_OBJECT {largest}"))?;

    send_group(1).await?;
    let got = sub.objects(PER as usize, Duration::from_secs(3)).await.expecting("group 1")?;
    for (o, obj) in got.iter().enumerate() {
        let o = o as u64;
        check((obj.group_id, obj.object_id) == (1, o), format!("object 1/{o}"), format!("object {}/{}", obj.group_id, obj.object_id))?;
        check(obj.payload == ctx.payload(1, o, 500), format!("payload of 1/{o}"), "different bytes")?;
    }

    track.done(moq_client::publisher::done_status::TRACK_ENDED, "test over").await.expecting("to send PUBLISH_DONE")?;
    let (status, streams, reason) = sub.done(Duration::from_secs(3)).await.expecting("PUBLISH_DONE")?;
    ctx.field("publish_done", format!("status {status:#x}, {streams} streams, {reason:?}"));
    check(streams == 1, "PUBLISH_DONE Stream Count 1", format!("Stream Count {streams}"))?;
    check(sub.try_next().is_none(), "no objects beyond group 1", "more objects")?;
    close_all(vec![("subscriber", subscriber), ("publisher", publisher)]).await
}
