//! PUBLISH_NAMESPACE (§6.2, §10.15) and direct PUBLISH (§10.10) at the relay,
//! draft-ietf-moq-transport-18.

use super::handle::SessionHandle;
use super::io::{reply, FrameReader, StreamError};
use super::transport::SendStream;
use crate::routing::router::Announcement;
use crate::routing::track::{FullName, Phase, Track};
use crate::state::Relay;
use crate::wire::control::Response;
use crate::wire::{session_error, PublishDoneCode};
use bytes::{Bytes, BytesMut};
use moq_wire::coding::{Encode, KeyValuePairs};
use moq_wire::message;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Holds a namespace for as long as its request stream stays open; closing
/// or resetting the stream withdraws it (§3.3.2).
pub async fn namespace(
    relay: &Arc<Relay>,
    session: &Arc<SessionHandle>,
    m: message::PublishNamespace,
    mut send: SendStream,
    mut reader: FrameReader,
) -> Result<(), StreamError> {
    let ns = m.track_namespace;
    let a = Announcement { session: session.id, request: m.id };
    // Routable before the publisher hears OK: a SUBSCRIBE that follows the
    // OK must find it (§10.15).
    let notices = relay.router().publish_namespace(ns.clone(), a);
    relay.notify(notices);
    relay.bump();
    if let Err(e) = reply(&mut send, Response::RequestOk(KeyValuePairs::new())).await {
        let notices = relay.router().unpublish_namespace(&ns, a);
        relay.notify(notices);
        return Err(e);
    }
    relay.metrics.namespaces.fetch_add(1, Ordering::Relaxed);
    tracing::info!(session = session.id, namespace = %ns, "namespace published");

    let res = loop {
        match reader.next().await {
            Ok(f) => match f.response() {
                Ok(Response::RequestUpdate { id, params }) => {
                    if let Err(e) = session.accept_update(id, &params, moq_wire::request::Updated::PublishNamespace) {
                        break Err(e);
                    }
                    if let Err(e) = reply(&mut send, Response::RequestOk(KeyValuePairs::new())).await {
                        break Err(e);
                    }
                }
                Ok(other) => {
                    tracing::debug!(?other, "ignoring message on PUBLISH_NAMESPACE stream");
                }
                Err(e) => break Err(StreamError::Wire(e)),
            },
            Err(StreamError::Closed | StreamError::Reset(_)) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let notices = relay.router().unpublish_namespace(&ns, a);
    relay.notify(notices);
    relay.metrics.namespaces.fetch_sub(1, Ordering::Relaxed);
    tracing::info!(session = session.id, namespace = %ns, "namespace withdrawn");
    let _ = send.finish();
    res
}

/// A publisher pushes one track (§5.1 "PUBLISH"): the relay accepts it, makes
/// it available to SUBSCRIBE and FETCH and announces its namespace to
/// SUBSCRIBE_NAMESPACE watchers, until PUBLISH_DONE or the stream closes.
pub async fn track(
    relay: &Arc<Relay>,
    session: &Arc<SessionHandle>,
    m: message::Publish,
    mut send: SendStream,
    mut reader: FrameReader,
) -> Result<(), StreamError> {
    let name = FullName { namespace: m.track_namespace, name: m.track_name };
    let mut props = BytesMut::new();
    let _ = m.track_extensions.encode(&mut props);
    let properties: Bytes = props.freeze();
    let prio = super::upstream::default_priority(&properties);
    let track = Track::with_origin(
        name.clone(),
        Phase::Active { properties, default_priority: prio },
        relay.limits.cache_groups,
        relay.limits.cache_bytes,
        true,
    );
    *track.origin.lock().unwrap_or_else(|e| e.into_inner()) = Some(session.id);
    if !session.add_alias(m.track_alias, track.clone(), prio) {
        relay.metrics.error("duplicate_track_alias");
        session.close(session_error::DUPLICATE_TRACK_ALIAS, "track alias already in use");
        return Ok(());
    }
    let (old, notices) = relay.router().insert_track(track.clone(), true);
    if let Some(old) = old {
        old.set_phase(Phase::Done { status: PublishDoneCode::GoingAway as u64, reason: "replaced by a new publisher".into() });
    }
    relay.notify(notices);
    relay.bump();
    relay.metrics.tracks.fetch_add(1, Ordering::Relaxed);
    tracing::info!(session = session.id, track = %name, "track published");

    let mut params = KeyValuePairs::new();
    params.set_forward(true);
    let parked = m.params.forward().ok().flatten() == Some(false);
    let res = async {
        reply(&mut send, Response::PublishOk(params)).await?;
        if parked && send.version() == moq_wire::Version::Draft22 {
            // Draft-22's PUBLISH_OK (REQUEST_OK) carries EXPIRES only: a
            // publisher that offered the track with Forward State 0 is told
            // to send by a REQUEST_UPDATE on the PUBLISH's stream
            // (docs/DRAFT22.md §10). Its REQUEST_OK is read below.
            let mut update = KeyValuePairs::new();
            update.set_forward(true);
            reply(&mut send, Response::RequestUpdate { id: session.next_request_id(), params: update }).await?;
        }
        loop {
            tokio::select! {
                f = reader.next() => match f {
                    Ok(f) => match f.response()? {
                        Response::PublishDone { status, reason, stream_count } => {
                            super::upstream::drain(&track, status, reason, stream_count).await;
                            return Ok(());
                        }
                        _ => continue,
                    },
                    Err(StreamError::Closed | StreamError::Reset(_)) => {
                        track.set_phase(Phase::Done { status: PublishDoneCode::TrackEnded as u64, reason: "publisher closed the track".into() });
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                },
                // Replaced by another publisher of the same track.
                _ = track.phase_where(|p| matches!(p, Phase::Done { .. })) => return Ok(()),
            }
        }
    }
    .await;
    if res.is_err() {
        track.set_phase(Phase::Done { status: PublishDoneCode::InternalError as u64, reason: "publisher went away".into() });
    }
    session.remove_alias(m.track_alias);
    let notices = relay.router().remove_track(&track, true);
    relay.notify(notices);
    relay.metrics.tracks.fetch_sub(1, Ordering::Relaxed);
    let _ = send.finish();
    res
}
