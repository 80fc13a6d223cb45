//! SUBSCRIBE at the relay (draft-ietf-moq-transport-18 §5.1, §9.4, §10.7):
//! a downstream subscription attaches to the one shared [`Track`]; the first
//! one for a track opens the upstream SUBSCRIBE to the publisher of the
//! longest matching namespace.

use super::handle::{Established, SessionHandle};
use super::io::{reply, FrameReader, StreamError};
use super::transport::SendStream;
use super::upstream;
use crate::routing::router::Subscribed;
use crate::routing::track::{FullName, Phase, Subscriber, Track, Window};
use crate::state::Relay;
use crate::wire::control::Response;
use crate::wire::{PublishDoneCode, RequestErrorCode};
use moq_wire::coding::KeyValuePairs;
use moq_wire::message;
use moq_wire::request::Updated;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Finds the track, creating it (and its upstream subscription) when a
/// publisher serves its namespace, or waits up to `rendezvous` for it to
/// appear (§10.2.6 RENDEZVOUS TIMEOUT). Takes one unit of interest. The
/// routing core decides; this shell only waits for a change or the deadline.
async fn obtain(relay: &Arc<Relay>, name: &FullName, rendezvous: Option<Duration>) -> Result<Arc<Track>, Response> {
    let deadline = rendezvous.map(|r| Instant::now() + r);
    loop {
        // Read the generation before the router, so a change in between wakes us.
        let seen = relay.changed.generation();
        let found = relay.router().subscribe(name, deadline, Instant::now(), |s| relay.session(s).is_some());
        match found {
            Subscribed::Existing(t) => return Ok(t),
            Subscribed::Upstream { track, publisher } => {
                relay.metrics.tracks.fetch_add(1, Ordering::Relaxed);
                match relay.session(publisher) {
                    Some(p) => drop(tokio::spawn(upstream::run(relay.clone(), p, track.clone()))),
                    // Gone since the router asked: the track fails like any refused upstream one.
                    None => upstream::fail(relay, &track, "publisher went away"),
                }
                return Ok(track);
            }
            Subscribed::NotFound => return Err(Response::error(RequestErrorCode::DoesNotExist, 0, "no publisher for this track")),
            Subscribed::Expired => {
                return Err(Response::error(RequestErrorCode::Timeout, 0, "track not published within the rendezvous timeout"))
            }
            Subscribed::Waiting(d) => tokio::select! {
                _ = relay.changed.changed_since(seen) => {}
                _ = tokio::time::sleep_until(d.into()) => {}
            },
        }
    }
}

/// Gives back one unit of interest; the last one ends an upstream SUBSCRIBE.
fn release(relay: &Relay, track: &Arc<Track>) {
    relay.router().release(track);
}

/// Waits until the track leaves `Pending`.
async fn settled(relay: &Relay, track: &Track) -> Phase {
    match tokio::time::timeout(relay.limits.upstream_timeout, track.phase_where(|p| *p != Phase::Pending)).await {
        Ok(p) => p,
        Err(_) => Phase::Failed { code: RequestErrorCode::Timeout as u64, reason: "publisher did not answer".into() },
    }
}

pub async fn downstream(
    relay: &Arc<Relay>,
    session: &Arc<SessionHandle>,
    m: message::Subscribe,
    mut send: SendStream,
    mut reader: FrameReader,
) -> Result<(), StreamError> {
    let name = FullName { namespace: m.track_namespace, name: m.track_name };
    let rendezvous = m.params.rendezvous_timeout().ok().flatten().map(|ms| Duration::from_millis(ms).min(relay.limits.max_rendezvous));
    let forward = m.params.forward().ok().flatten().unwrap_or(true);
    let filter = m.params.subscription_filter().ok().flatten();

    let track = match obtain(relay, &name, rendezvous).await {
        Ok(t) => t,
        Err(e) => {
            reply(&mut send, e).await?;
            let _ = send.finish();
            return Ok(());
        }
    };
    // The filter applies to what the relay has when the SUBSCRIBE arrives.
    let largest = track.largest();
    // A draft-22 SUBSCRIBE may ask for a backfill (FILL_PARAMETERS), sent
    // once the subscription is attached.
    let fill = moq_wire::draft22::fill::Fill::of(&m.params);
    let res = serve(relay, session, m.id, &track, largest, forward, filter, fill, &mut send, &mut reader).await;
    release(relay, &track);
    res
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    relay: &Arc<Relay>,
    session: &Arc<SessionHandle>,
    request_id: u64,
    track: &Arc<Track>,
    largest_at_request: Option<moq_wire::coding::Location>,
    forward: bool,
    filter: Option<message::SubscriptionFilter>,
    fill: Option<moq_wire::draft22::fill::Fill>,
    send: &mut SendStream,
    reader: &mut FrameReader,
) -> Result<(), StreamError> {
    let (properties, prio) = match settled(relay, track).await {
        Phase::Active { properties, default_priority } => (properties, default_priority),
        Phase::Failed { code, reason } => {
            reply(send, Response::RequestError { code, retry_interval: 0, reason }).await?;
            let _ = send.finish();
            return Ok(());
        }
        _ => {
            reply(send, Response::error(RequestErrorCode::DoesNotExist, 0, "track ended")).await?;
            let _ = send.finish();
            return Ok(());
        }
    };
    let _ = prio;
    let window = match Window::new(filter.as_ref(), largest_at_request) {
        Ok(w) => w,
        Err(e) => return Err(StreamError::Wire(crate::wire::WireError::Malformed("SUBSCRIPTION_FILTER", e.to_string()))),
    };
    let alias = session.next_alias();
    let mut params = KeyValuePairs::new();
    params.set_expires(0);
    if let Some(l) = track.largest() {
        let _ = params.set_largest_object(l);
    }
    reply(send, Response::SubscribeOk { alias, params, properties }).await?;
    tracing::debug!(session = session.id, request_id, alias, track = %track.name, "SUBSCRIBE_OK");

    let sub_id = relay.next_id();
    let mut sub = Subscriber::new(sub_id, alias, window, session.outbound.clone(), Arc::new(session.wt.clone()));
    sub.forward = forward;
    track.attach_with_catchup(sub);
    session.establish(request_id, Established { track: track.clone(), joining: largest_at_request, forward });
    let mut fills = 0;
    if let Some(fill) = fill.filter(|_| forward) {
        // Contiguous with the subscription: both split at the Largest
        // Object the filter was applied to. No fill while Forward is 0.
        let own = filter.as_ref().map(moq_wire::draft22::filter::LocationFilter::from_subscription);
        fills += u64::from(super::fetch::backfill(relay, session, track, request_id, fill, own, largest_at_request));
    }

    let res = serve_attached(relay, session, track, sub_id, forward, fills, send, reader).await;
    session.unestablish(request_id);
    res
}

/// Serves an attached downstream subscription until the subscriber closes its
/// request stream (UNSUBSCRIBE, §3.3.2: its data streams are reset) or the
/// track ends (PUBLISH_DONE with the stream count, then FIN, §10.11).
/// REQUEST_UPDATE may change the Forward State (§10.9.1). `fills` counts
/// the draft-22 backfill streams already opened for it, which PUBLISH_DONE's
/// Stream Count includes (docs/DRAFT22.md §6).
#[allow(clippy::too_many_arguments)]
pub async fn serve_attached(
    relay: &Arc<Relay>,
    session: &Arc<SessionHandle>,
    track: &Arc<Track>,
    sub_id: u64,
    mut forward: bool,
    mut fills: u64,
    send: &mut SendStream,
    reader: &mut FrameReader,
) -> Result<(), StreamError> {
    relay.metrics.subscriptions.fetch_add(1, Ordering::Relaxed);
    // The track may already have ended while SUBSCRIBE_OK / PUBLISH_OK was
    // being written: `ended` resolves at once then, instead of waiting for a
    // phase change that already happened.
    let ended = track.ended();
    tokio::pin!(ended);
    let outcome = loop {
        tokio::select! {
            f = reader.next() => match f {
                Ok(f) => match f.response()? {
                    Response::RequestUpdate { id, params } => {
                        if let Err(e) = session.accept_update(id, &params, Updated::Subscription) {
                            break Err(e);
                        }
                        if let Some((code, reason)) = moq_wire::draft22::unsupported_params(&params) {
                            // §10.9: an update that fails ends the
                            // subscription with PUBLISH_DONE UPDATE_FAILED.
                            reply(send, Response::RequestError { code, retry_interval: 0, reason: reason.clone() }).await?;
                            break Ok((PublishDoneCode::UpdateFailed as u64, reason));
                        }
                        if let Ok(Some(fw)) = params.forward() {
                            track.set_forward(sub_id, fw);
                            forward = fw;
                        }
                        let largest = track.largest();
                        let mut ok = KeyValuePairs::new();
                        if send.version() == moq_wire::Version::Draft22 {
                            // Where a backfill asked for here ends (docs/DRAFT22.md §6).
                            if let Some(l) = largest {
                                let _ = ok.set_largest_object(l);
                            }
                        }
                        reply(send, Response::RequestOk(ok)).await?;
                        if let Some(fill) = moq_wire::draft22::fill::Fill::of(&params).filter(|_| forward) {
                            // Draft-22: a backfill asked for with the update,
                            // on a stream headed with the update's Request ID;
                            // its range ends at the Largest Object in the
                            // REQUEST_OK (docs/DRAFT22.md §6). None while
                            // Forward is 0.
                            fills += u64::from(super::fetch::backfill(relay, session, track, id, fill, None, largest));
                        }
                    }
                    other => break Err(StreamError::Wire(crate::wire::WireError::Malformed("subscription", format!("unexpected {other:?}")))),
                },
                Err(e) => break Err(e),
            },
            p = &mut ended => break Ok(match p {
                Phase::Done { status, reason } => (status, reason),
                Phase::Failed { reason, .. } => (PublishDoneCode::InternalError as u64, reason),
                // Not produced by `ended`.
                Phase::Pending | Phase::Active { .. } => (PublishDoneCode::InternalError as u64, "track ended".into()),
            }),
        }
    };
    relay.metrics.subscriptions.fetch_sub(1, Ordering::Relaxed);
    match outcome {
        Ok((status, reason)) => {
            let streams = track.detach(sub_id, false) + fills;
            reply(send, Response::PublishDone { status, stream_count: streams, reason }).await?;
            let _ = send.finish();
            Ok(())
        }
        Err(StreamError::Closed | StreamError::Reset(_)) => {
            track.detach(sub_id, true);
            let _ = send.finish();
            Ok(())
        }
        Err(e) => {
            track.detach(sub_id, true);
            Err(e)
        }
    }
}
