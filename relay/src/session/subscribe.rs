//! SUBSCRIBE at the relay (draft-ietf-moq-transport-18 §5.1, §9.4, §10.7):
//! a downstream subscription attaches to the one shared [`Track`]; the first
//! one for a track opens the upstream SUBSCRIBE to the publisher of the
//! longest matching namespace.

use super::io::{FrameReader, StreamError};
use super::request::reply;
use super::{Established, SessionHandle};
use crate::routing::router::Rendezvous;
use crate::routing::track::{start_for_filter, FullName, Phase, Subscriber, Track};
use crate::state::Relay;
use crate::wire::control::{encode_request, Response};
use crate::wire::{PublishDoneCode, RequestErrorCode};
use bytes::Bytes;
use moq_wire::coding::{Decode, KeyValuePairs};
use moq_wire::message::{self, FilterType, Message};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use web_transport_quinn::SendStream;

/// Reads the default publisher priority out of raw Track Properties.
pub fn default_priority(properties: &Bytes) -> u8 {
    let mut b = &properties[..];
    message::TrackExtensions::decode(&mut b)
        .ok()
        .and_then(|p| p.default_publisher_priority().ok().flatten())
        .unwrap_or(moq_wire::DEFAULT_PUBLISHER_PRIORITY)
}

/// Finds the track, creating it (and its upstream subscription) when a
/// publisher serves its namespace, or waits up to `rendezvous` for it to
/// appear (§10.2.6 RENDEZVOUS TIMEOUT). Takes one unit of interest.
async fn obtain(relay: &Arc<Relay>, name: &FullName, rendezvous: Option<Duration>) -> Result<Arc<Track>, Response> {
    let deadline = Instant::now() + rendezvous.unwrap_or_default();
    loop {
        // Read the generation before the router, so a change in between wakes us.
        let seen = relay.changed.generation();
        {
            let mut router = relay.router();
            if let Some(t) = router.track(name) {
                if !t.current_phase().is_terminal() {
                    t.interest.fetch_add(1, Ordering::Relaxed);
                    return Ok(t);
                }
            }
            if let Some(a) = router.route(&name.namespace) {
                if let Some(publisher) = relay.session(a.session) {
                    let t = Track::new(name.clone(), Phase::Pending, relay.limits.cache_groups, relay.limits.cache_bytes);
                    *t.origin.lock().unwrap_or_else(|e| e.into_inner()) = Some(a.session);
                    t.interest.fetch_add(1, Ordering::Relaxed);
                    router.insert_track(t.clone(), false);
                    drop(router);
                    relay.metrics.tracks.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(upstream(relay.clone(), publisher, t.clone()));
                    return Ok(t);
                }
            }
            if rendezvous.is_none() {
                return Err(Response::error(RequestErrorCode::DoesNotExist, 0, "no publisher for this track"));
            }
            // The routing core decides; this shell only waits for a change or the deadline.
            if router.rendezvous(name, deadline, Instant::now()) == Rendezvous::Expired {
                return Err(Response::error(RequestErrorCode::Timeout, 0, "track not published within the rendezvous timeout"));
            }
        }
        tokio::select! {
            _ = relay.changed.changed_since(seen) => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
    }
}

/// Gives back one unit of interest; the last one ends an upstream SUBSCRIBE.
fn release(relay: &Relay, track: &Arc<Track>) {
    let mut router = relay.router();
    if track.interest.fetch_sub(1, Ordering::Relaxed) == 1 && !track.published {
        router.remove_track(track, false);
        drop(router);
        if matches!(track.current_phase(), Phase::Pending | Phase::Active { .. }) {
            track.set_phase(Phase::Done { status: PublishDoneCode::SubscriptionEnded as u64, reason: "no subscribers".into() });
        }
    }
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
    let res = serve(relay, session, m.id, &track, largest, forward, filter, &mut send, &mut reader).await;
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
    let largest = largest_at_request;
    let (start, end_group) = match filter {
        Some(f) => match f.filter_type {
            FilterType::NextGroupStart => (start_for_filter(largest, true), None),
            FilterType::LargestObject => (start_for_filter(largest, false), None),
            FilterType::AbsoluteStart => (f.start_location.unwrap_or_default(), None),
            FilterType::AbsoluteRange => (f.start_location.unwrap_or_default(), f.end_group_id),
        },
        // §9.3 SUBSCRIPTION_FILTER: "If omitted from SUBSCRIBE or PUBLISH_OK,
        // the subscription is unfiltered" — everything from {0, 0} (§5.1.2),
        // so objects the relay already cached are sent, not only later ones.
        None => (moq_wire::coding::Location::new(0, 0), None),
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
    let mut sub = Subscriber::new(sub_id, alias, start, end_group, session.outbound.clone(), Arc::new(session.wt.clone()));
    sub.forward = forward;
    track.attach_with_catchup(sub);
    session.establish(request_id, Established { track: track.clone(), joining: largest, forward });

    let res = serve_attached(relay, track, sub_id, send, reader).await;
    session.unestablish(request_id);
    res
}

/// Serves an attached downstream subscription until the subscriber closes its
/// request stream (UNSUBSCRIBE, §3.3.2: its data streams are reset) or the
/// track ends (PUBLISH_DONE with the stream count, then FIN, §10.11).
/// REQUEST_UPDATE may change the Forward State (§10.9.1).
pub async fn serve_attached(
    relay: &Relay,
    track: &Arc<Track>,
    sub_id: u64,
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
                    Response::RequestUpdate { params, .. } => {
                        if let Ok(Some(fw)) = params.forward() {
                            track.set_forward(sub_id, fw);
                        }
                        reply(send, Response::RequestOk(KeyValuePairs::new())).await?;
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
            let streams = track.detach(sub_id, false);
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

/// The relay's own SUBSCRIBE to the publisher of `track` (§9.4): shared by all
/// downstream subscribers, ended when the last one leaves or the publisher ends it.
async fn upstream(relay: Arc<Relay>, publisher: Arc<SessionHandle>, track: Arc<Track>) {
    let result = upstream_inner(&relay, &publisher, &track).await;
    if let Err(e) = &result {
        tracing::debug!(track = %track.name, error = %e, "upstream subscription ended");
        if track.current_phase() == Phase::Pending {
            track.set_phase(Phase::Failed { code: RequestErrorCode::InternalError as u64, reason: e.to_string() });
        } else if matches!(track.current_phase(), Phase::Active { .. }) {
            track.set_phase(Phase::Done { status: PublishDoneCode::InternalError as u64, reason: "publisher went away".into() });
        }
    }
    relay.router().remove_track(&track, false);
    relay.metrics.tracks.fetch_sub(1, Ordering::Relaxed);
}

async fn upstream_inner(relay: &Relay, publisher: &SessionHandle, track: &Arc<Track>) -> Result<(), StreamError> {
    let (mut send, recv) = publisher.wt.open_bi().await.map_err(|e| StreamError::Transport(e.to_string()))?;
    let id = publisher.next_request_id();
    let mut params = KeyValuePairs::new();
    params.set_forward(true);
    let _ = params.set_subscription_filter(&message::SubscriptionFilter {
        filter_type: FilterType::LargestObject,
        start_location: None,
        end_group_id: None,
    });
    let msg = Message::Subscribe(message::Subscribe {
        id,
        track_namespace: track.name.namespace.clone(),
        track_name: track.name.name.clone(),
        params,
    });
    super::io::write(&mut send, &encode_request(&msg)?).await?;
    let mut reader = FrameReader::new(recv);
    let first = reader.next_within(relay.limits.upstream_timeout).await?;
    let alias = match first.response()? {
        Response::SubscribeOk { alias, properties, .. } => {
            let prio = default_priority(&properties);
            if !publisher.add_alias(alias, track.clone(), prio) {
                publisher.close(crate::wire::session_error::DUPLICATE_TRACK_ALIAS, "track alias already in use");
                return Err(StreamError::Transport("duplicate track alias".into()));
            }
            track.set_phase(Phase::Active { properties, default_priority: prio });
            alias
        }
        Response::RequestError { code, reason, .. } => {
            track.set_phase(Phase::Failed { code, reason });
            let _ = send.finish();
            return Ok(());
        }
        other => return Err(StreamError::Wire(crate::wire::WireError::Malformed("SUBSCRIBE response", format!("{other:?}")))),
    };
    let end = loop {
        tokio::select! {
            f = reader.next() => match f {
                Ok(f) => match f.response()? {
                    Response::PublishDone { status, reason, stream_count } => {
                        super::publish::drain(track, status, reason, stream_count).await;
                        break None;
                    }
                    _ => continue,
                },
                Err(StreamError::Closed) | Err(StreamError::Reset(_)) => {
                    break Some(Phase::Done { status: PublishDoneCode::TrackEnded as u64, reason: "publisher closed the subscription".into() })
                }
                Err(e) => {
                    publisher.remove_alias(alias);
                    return Err(e);
                }
            },
            _ = track.ended() => {
                // Our last subscriber left: unsubscribe by closing the stream (§3.3.2).
                let _ = send.finish();
                reader.stop(crate::wire::stream_error::CANCELLED);
                publisher.remove_alias(alias);
                return Ok(());
            }
        }
    };
    publisher.remove_alias(alias);
    let _ = send.finish();
    if let Some(end) = end {
        track.set_phase(end);
    }
    Ok(())
}
