//! FETCH (draft-ietf-moq-transport-18 §10.12) answered from the relay's
//! per-track cache — or, when the cache has nothing of the range, by the
//! track's publisher (`upstream_fetch`) — and TRACK_STATUS (§10.14).

use super::handle::SessionHandle;
use super::io::{reply, FrameReader, StreamError};
use super::transport::SendStream;
use crate::routing::track::{FullName, Phase, Track};
use crate::state::Relay;
use crate::wire::control::Response;
use crate::wire::fetch::{header, FetchObject, FetchWriter};
use crate::wire::RequestErrorCode;
use moq_wire::coding::{KeyValuePairs, Location};
use moq_wire::message::{self, FetchType};
use std::sync::Arc;

/// A FETCH stream is written in pieces of this size, each within the stall
/// timeout: progress, not the whole range, is what is timed.
const FETCH_WRITE_PIECE: usize = 16 * 1024;

/// See the comment where it is used.
const FETCH_STREAM_DELAY: std::time::Duration = std::time::Duration::from_millis(20);

async fn refuse(send: &mut SendStream, code: RequestErrorCode, reason: &str) -> Result<(), StreamError> {
    reply(send, Response::error(code, 0, reason)).await?;
    let _ = send.finish();
    Ok(())
}

pub async fn fetch(
    relay: &Arc<Relay>,
    session: &Arc<SessionHandle>,
    m: message::Fetch,
    mut send: SendStream,
    _reader: FrameReader,
) -> Result<(), StreamError> {
    // Resolve the track and the inclusive range [start, last].
    let (track, start, last): (Arc<Track>, Location, Location) = match m.fetch_type {
        FetchType::Standalone => {
            let Some(sf) = m.standalone_fetch.clone() else {
                return refuse(&mut send, RequestErrorCode::InternalError, "missing range").await;
            };
            let name = FullName { namespace: sf.track_namespace, name: sf.track_name };
            // End Location is "plus 1"; Object 0 means the whole group (§10.12.1).
            let e = sf.end_location;
            let last = if e.object_id == 0 { Location::new(e.group_id, u64::MAX) } else { Location::new(e.group_id, e.object_id - 1) };
            let track = relay.router().track(&name);
            let cached = track.as_ref().is_some_and(|t| !t.cached(sf.start_location, last).is_empty());
            let route = relay.router().route(&name.namespace);
            let publisher = route.and_then(|a| relay.session(a.session));
            match track {
                Some(t) if cached => (t, sf.start_location, last),
                // Nothing of the range here: the publisher answers (§9.1, §9.5),
                // or, when it says nothing in time, the relay with what it has.
                track => {
                    if let Some(p) = publisher {
                        match super::upstream_fetch::forward(relay, session, &p, m.clone(), send).await? {
                            super::upstream_fetch::Forwarded::Done => return Ok(()),
                            super::upstream_fetch::Forwarded::Unanswered(s) => send = s,
                        }
                    }
                    match track {
                        Some(t) => (t, sf.start_location, last),
                        None => return refuse(&mut send, RequestErrorCode::DoesNotExist, "track not available at this relay").await,
                    }
                }
            }
        }
        FetchType::RelativeJoining | FetchType::AbsoluteJoining => {
            let Some(jf) = m.joining_fetch else {
                return refuse(&mut send, RequestErrorCode::InternalError, "missing joining fields").await;
            };
            // Only an earlier request of this session can be joined.
            let wait = if jf.joining_request_id < m.id { relay.limits.upstream_timeout } else { std::time::Duration::ZERO };
            let Some(sub) = session.wait_established(jf.joining_request_id, wait).await else {
                return refuse(&mut send, RequestErrorCode::InvalidJoiningRequestId, "no such subscription in this session").await;
            };
            if !sub.forward {
                return refuse(&mut send, RequestErrorCode::InvalidRange, "subscription has Forward State 0").await;
            }
            let Some(joining) = sub.joining.or_else(|| sub.track.largest()) else {
                return refuse(&mut send, RequestErrorCode::InvalidRange, "no objects published yet").await;
            };
            let start_group = match m.fetch_type {
                FetchType::RelativeJoining => joining.group_id.saturating_sub(jf.joining_start),
                _ => jf.joining_start,
            };
            (sub.track, Location::new(start_group, 0), joining)
        }
    };
    let Some(largest) = track.largest() else {
        return refuse(&mut send, RequestErrorCode::InvalidRange, "no objects published yet").await;
    };
    if (start.group_id, start.object_id) > (largest.group_id, largest.object_id)
        || (start.group_id, start.object_id) > (last.group_id, last.object_id)
    {
        return refuse(&mut send, RequestErrorCode::InvalidRange, "start is beyond the largest object").await;
    }
    let objects = track.cached(start, last);
    tracing::debug!(session = session.id, request_id = m.id, objects = objects.len(), "FETCH_OK");
    let end = objects
        .last()
        .map(|(g, o)| Location::new(*g, o.object_id.saturating_add(1)))
        .unwrap_or(Location::new(start.group_id, start.object_id));
    let properties = match track.current_phase() {
        Phase::Active { properties, .. } => properties,
        _ => Default::default(),
    };
    let end_of_track = matches!(track.current_phase(), Phase::Done { .. });
    reply(&mut send, Response::FetchOk { end_of_track, end_location: end, params: KeyValuePairs::new(), properties }).await?;

    // §10.12: FETCH_OK may come at any time relative to the objects, but
    // aiomoqt 0.13.3 loses a joining FETCH's objects when its FETCH_HEADER is
    // processed before FETCH_OK. A short pause off the data path lets the
    // reply land first; it costs one FETCH 20 ms and nothing else.
    tokio::time::sleep(FETCH_STREAM_DELAY).await;
    stream_objects(relay, session, m.id, &objects).await?;
    let _ = send.finish();
    Ok(())
}

/// Writes cached objects on a new fetch stream (FETCH_HEADER with
/// `request_id`, §10.12 / §11.4) and finishes it: a FETCH's objects, or a
/// draft-22 backfill's (FILL_PARAMETERS, whose stream carries the Request ID
/// of the SUBSCRIBE or REQUEST_UPDATE that asked for it).
pub async fn stream_objects(
    relay: &Relay,
    session: &SessionHandle,
    request_id: u64,
    objects: &[(u64, crate::routing::cache::CachedObject)],
) -> Result<(), StreamError> {
    let mut out = Vec::with_capacity(256);
    header(request_id, &mut out);
    let mut w = FetchWriter::default();
    for (g, o) in objects {
        w.object(
            &FetchObject {
                group_id: *g,
                object_id: o.object_id,
                subgroup_id: o.subgroup_id,
                priority: o.priority,
                properties: &o.properties,
                payload: &o.payload,
            },
            &mut out,
        );
    }
    let mut uni = session.wt.open_uni().await.map_err(|e| StreamError::Transport(e.to_string()))?;
    // A peer that grants this stream no flow control would hold the task,
    // the range copied in `out` and the request's quota slot for the life of
    // the session: each piece must find room within the stall timeout, or the
    // stream is reset with TOO_FAR_BEHIND (§3.3.3: the request "exceeded the
    // publisher's resource limits") and the session goes on.
    for piece in out.chunks(FETCH_WRITE_PIECE) {
        match tokio::time::timeout(relay.limits.stall_timeout, super::io::write(&mut uni, piece)).await {
            Ok(r) => r?,
            Err(_) => {
                relay.metrics.error("fetch_stream_stalled");
                tracing::debug!(session = session.id, request_id, "FETCH stream not read: reset");
                let _ = uni.reset(crate::wire::stream_error::TOO_FAR_BEHIND);
                return Ok(());
            }
        }
    }
    let _ = uni.finish();
    Ok(())
}

/// Serves a draft-22 backfill (docs/DRAFT22.md §6): the cached objects of
/// `fill`'s range, resolved against `largest` (the Largest Object when the
/// request was processed), on a fetch stream headed with `request_id`. An
/// empty range opens no stream. Runs beside the subscription it belongs to;
/// true when it opens a stream (PUBLISH_DONE counts it).
pub fn backfill(
    relay: &Arc<Relay>,
    session: &Arc<SessionHandle>,
    track: &Arc<Track>,
    request_id: u64,
    fill: moq_wire::draft22::fill::Fill,
    subscription: Option<moq_wire::draft22::filter::LocationFilter>,
    largest: Option<Location>,
) -> bool {
    let Some((first, last)) = fill.range(subscription, largest) else { return false };
    let objects = track.cached(first, last);
    if objects.is_empty() {
        return false;
    }
    let (relay, session) = (relay.clone(), session.clone());
    tokio::spawn(async move {
        tracing::debug!(session = session.id, request_id, objects = objects.len(), "backfill");
        if let Err(e) = stream_objects(&relay, &session, request_id, &objects).await {
            tracing::debug!(session = session.id, request_id, error = %e, "backfill stream ended");
        }
    });
    true
}

/// TRACK_STATUS: REQUEST_OK with the Largest Object and the Track Properties (§10.14).
pub async fn track_status(
    relay: &Arc<Relay>,
    _session: &Arc<SessionHandle>,
    m: message::TrackStatus,
    mut send: SendStream,
) -> Result<(), StreamError> {
    let name = FullName { namespace: m.track_namespace, name: m.track_name };
    let track = relay.router().track(&name);
    match track.filter(|t| matches!(t.current_phase(), Phase::Active { .. })) {
        Some(t) => {
            let mut params = KeyValuePairs::new();
            if let Some(l) = t.largest() {
                let _ = params.set_largest_object(l);
            }
            let properties = match t.current_phase() {
                Phase::Active { properties, .. } => properties,
                _ => Default::default(),
            };
            reply(&mut send, Response::TrackStatusOk { params, properties }).await?;
            let _ = send.finish();
            Ok(())
        }
        None => refuse(&mut send, RequestErrorCode::DoesNotExist, "track not available at this relay").await,
    }
}
