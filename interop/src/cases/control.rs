//! The runner's control-plane test cases (interop-test-cases.md):
//! session setup, namespace publishing and subscription handshakes.

use super::{check, close_all, Ctx, Expecting, Failure, TRACK};
use moq_client::{Error, SubscribeParams, TrackPublisher};
use moq_wire::coding::TrackNamespace;
use std::time::Duration;

/// `setup-only` (§3.3, §10.3): connect, exchange SETUP, close gracefully.
pub async fn setup_only(ctx: Ctx) -> Result<(), Failure> {
    let s = ctx.connect("").await?;
    if let Some(imp) = s.peer_implementation() {
        ctx.field("peer_implementation", imp);
    }
    close_all(vec![("client", s)]).await
}

/// `announce-only` (§6.2, §10.15, §10.5): PUBLISH_NAMESPACE answered by
/// REQUEST_OK within 2 s, then a graceful close.
pub async fn announce_only(ctx: Ctx) -> Result<(), Failure> {
    let s = ctx.connect("").await?;
    let ns = ctx.namespace();
    let handle = s.publish_namespace(&ns).await.expecting("PUBLISH_NAMESPACE_OK")?;
    ctx.step(format!("PUBLISH_NAMESPACE {} accepted", ns.to_utf8_path()));
    let r = close_all(vec![("client", s)]).await;
    drop(handle);
    r
}

/// `publish-namespace-done` (§6.2, §3.3.2): after REQUEST_OK, withdraw the
/// namespace by cancelling the request stream; the session must survive it.
pub async fn publish_namespace_done(ctx: Ctx) -> Result<(), Failure> {
    let s = ctx.connect("").await?;
    let handle = s.publish_namespace(&ctx.namespace()).await.expecting("PUBLISH_NAMESPACE_OK")?;
    handle.cancel();
    ctx.step("request stream cancelled");
    // Give the relay a moment to process the cancellation, and make sure it
    // did not treat it as a reason to end the session.
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.check_alive().expecting("session to stay open after the cancellation")?;
    close_all(vec![("client", s)]).await
}

/// `subscribe-error` (§5.1, §10.7, §10.6): SUBSCRIBE for a track nobody
/// publishes must be answered with REQUEST_ERROR.
pub async fn subscribe_error(ctx: Ctx) -> Result<(), Failure> {
    let s = ctx.connect("").await?;
    let ns = TrackNamespace::from_utf8_path(&format!("nonexistent/namespace-{}", ctx.run));
    match s.subscribe(&ns, TRACK, SubscribeParams::new()).await {
        Err(Error::Rejected(e)) => {
            ctx.field("error_code", format!("{:#x}", e.code));
            ctx.step(format!("received {e}"));
        }
        Ok(sub) => {
            return Err(Failure::new("REQUEST_ERROR", format!("SUBSCRIBE_OK (alias {})", sub.track_alias), "unexpected success"));
        }
        Err(e) => return Err(e).expecting("REQUEST_ERROR"),
    }
    close_all(vec![("client", s)]).await
}

/// Accepts the SUBSCRIBE the relay forwards for `ns`/`track` and answers
/// SUBSCRIBE_OK with `alias`.
pub async fn serve_subscribe(
    ctx: &Ctx,
    publisher: &moq_client::Session,
    ns: &TrackNamespace,
    alias: u64,
    properties: bytes::Bytes,
    timeout: Duration,
) -> Result<TrackPublisher, Failure> {
    let incoming = publisher.accept_subscribe(timeout).await.expecting("SUBSCRIBE forwarded to the publisher")?;
    let got = format!("{}/{}", incoming.namespace().to_utf8_path(), incoming.track_name());
    let want = format!("{}/{}", ns.to_utf8_path(), TRACK);
    check(got == want, format!("SUBSCRIBE for {want}"), format!("SUBSCRIBE for {got}"))?;
    ctx.step(format!("publisher received SUBSCRIBE (request {}), answering SUBSCRIBE_OK alias {alias}", incoming.request.id));
    incoming.accept_with(alias, Default::default(), properties).await.expecting("to send SUBSCRIBE_OK")
}

/// Subscribes from `subscriber` while `publisher` serves the SUBSCRIBE the
/// relay forwards. Fails as soon as either side fails, so a REQUEST_ERROR is
/// reported as such instead of as the publisher's wait timing out.
pub async fn subscribe_served(
    ctx: &Ctx,
    publisher: &moq_client::Session,
    subscriber: &moq_client::Session,
    params: SubscribeParams,
    alias: u64,
    properties: bytes::Bytes,
) -> Result<(TrackPublisher, moq_client::Subscription), Failure> {
    let ns = ctx.namespace();
    let serve = serve_subscribe(ctx, publisher, &ns, alias, properties, Duration::from_secs(3));
    let subscribe = subscriber.subscribe(&ns, TRACK, params);
    tokio::pin!(serve, subscribe);
    let (mut track, mut sub) = (None, None);
    while track.is_none() || sub.is_none() {
        tokio::select! {
            r = &mut serve, if track.is_none() => track = Some(r?),
            r = &mut subscribe, if sub.is_none() => sub = Some(r.expecting("SUBSCRIBE_OK")?),
        }
    }
    match (track, sub) {
        (Some(t), Some(s)) => Ok((t, s)),
        _ => unreachable!("loop ends when both are set"),
    }
}

/// `announce-subscribe` (§5.1, §6.2): the relay routes a SUBSCRIBE to the
/// publisher of the namespace, and the subscriber gets SUBSCRIBE_OK.
pub async fn announce_subscribe(ctx: Ctx) -> Result<(), Failure> {
    let publisher = ctx.connect("publisher").await?;
    let announced = publisher.publish_namespace(&ctx.namespace()).await.expecting("PUBLISH_NAMESPACE_OK")?;
    let subscriber = ctx.connect("subscriber").await?;
    let (track, sub) = subscribe_served(&ctx, &publisher, &subscriber, SubscribeParams::new(), 1, bytes::Bytes::new()).await?;
    ctx.step(format!("subscriber received SUBSCRIBE_OK (alias {})", sub.track_alias));
    let r = close_all(vec![("subscriber", subscriber), ("publisher", publisher)]).await;
    drop((track, sub, announced));
    r
}

/// `subscribe-before-announce` (§5.1, §6.2, §10.2 RENDEZVOUS_TIMEOUT): the
/// subscriber asks first; the publisher announces 500 ms later. Either a
/// SUBSCRIBE_OK (the relay held the request) or a REQUEST_ERROR passes.
pub async fn subscribe_before_announce(ctx: Ctx) -> Result<(), Failure> {
    let subscriber = ctx.connect("subscriber").await?;
    let ns = ctx.namespace();
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let subscribe = async {
        let params = SubscribeParams::new().rendezvous(Duration::from_millis(2500));
        let r = subscriber.subscribe_within(&ns, TRACK, params, Duration::from_millis(2900)).await;
        let _ = done_tx.send(true);
        r
    };
    let publish = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let publisher = ctx.connect("publisher").await?;
        let announced = publisher.publish_namespace(&ns).await.expecting("PUBLISH_NAMESPACE_OK")?;
        ctx.step("publisher announced the namespace");
        // Serve the SUBSCRIBE if the relay held it and forwards it now,
        // until the subscriber has its answer.
        let mut done = done_rx.clone();
        let served: Option<TrackPublisher> = tokio::select! {
            r = publisher.accept_subscribe(Duration::from_millis(2500)) => match r {
                Ok(incoming) => incoming.accept(1).await.ok(),
                Err(_) => None,
            },
            _ = async { let _ = done.wait_for(|d| *d).await.is_ok(); } => None,
        };
        Ok::<_, Failure>((publisher, announced, served))
    };
    let (sub, published) = tokio::join!(subscribe, publish);
    let (publisher, announced, served) = published?;
    let outcome = match &sub {
        Ok(s) => format!("SUBSCRIBE_OK (alias {})", s.track_alias),
        Err(Error::Rejected(e)) => e.to_string(),
        Err(e) => return Err(e.clone()).expecting("SUBSCRIBE_OK or REQUEST_ERROR"),
    };
    ctx.field("outcome", outcome.clone());
    ctx.step(format!("subscriber received {outcome}"));
    let r = close_all(vec![("subscriber", subscriber), ("publisher", publisher)]).await;
    drop((sub, served, announced));
    r
}
