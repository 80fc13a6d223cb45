//! The relay's own subscriptions to publishers (draft-ietf-moq-transport-18
//! §9.4): one upstream SUBSCRIBE per track, shared by every downstream
//! subscriber, and the end of an upstream track (PUBLISH_DONE, §10.11).

use super::handle::SessionHandle;
use super::io::{FrameReader, StreamError};
use crate::routing::track::{Phase, Track};
use crate::state::Relay;
use crate::wire::control::Response;
use crate::wire::{PublishDoneCode, RequestErrorCode};
use bytes::Bytes;
use moq_wire::coding::{Decode, KeyValuePairs};
use moq_wire::message::{self, FilterType, Message};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Reads the default publisher priority out of raw Track Properties.
pub fn default_priority(properties: &Bytes) -> u8 {
    let mut b = &properties[..];
    message::TrackExtensions::decode(&mut b)
        .ok()
        .and_then(|p| p.default_publisher_priority().ok().flatten())
        .unwrap_or(moq_wire::DEFAULT_PUBLISHER_PRIORITY)
}

/// The relay's own SUBSCRIBE to the publisher of `track` (§9.4): shared by all
/// downstream subscribers, ended when the last one leaves or the publisher ends it.
pub async fn run(relay: Arc<Relay>, publisher: Arc<SessionHandle>, track: Arc<Track>) {
    match run_inner(&relay, &publisher, &track).await {
        Ok(()) => end(&relay, &track),
        Err(e) => {
            if matches!(e, StreamError::Stalled) {
                // The publisher stopped half-way through its answer (§3.5).
                publisher.message_stalled(&relay.metrics, "request");
            }
            fail(&relay, &track, &e.to_string())
        }
    }
}

/// The upstream subscription broke (or never started): a track still
/// waiting fails, an active one ends; either way it leaves the router.
pub fn fail(relay: &Relay, track: &Arc<Track>, why: &str) {
    tracing::debug!(track = %track.name, error = why, "upstream subscription ended");
    if track.current_phase() == Phase::Pending {
        track.set_phase(Phase::Failed { code: RequestErrorCode::InternalError as u64, reason: why.to_string() });
    } else if matches!(track.current_phase(), Phase::Active { .. }) {
        track.set_phase(Phase::Done { status: PublishDoneCode::InternalError as u64, reason: "publisher went away".into() });
    }
    end(relay, track);
}

fn end(relay: &Relay, track: &Arc<Track>) {
    relay.router().remove_track(track, false);
    relay.metrics.tracks.fetch_sub(1, Ordering::Relaxed);
}

async fn run_inner(relay: &Relay, publisher: &SessionHandle, track: &Arc<Track>) -> Result<(), StreamError> {
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
    super::io::request(&mut send, &msg).await?;
    let mut reader = FrameReader::new(recv, relay.limits.stall_timeout);
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
                        drain(track, status, reason, stream_count).await;
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

/// Passes a PUBLISH_DONE on once the routing core says the streams it counts
/// were forwarded, or its drain deadline came (§10.11): this shell only
/// sleeps until the deadline the core asked for and tells it the time.
pub async fn drain(track: &Track, status: u64, reason: String, stream_count: u64) {
    let Some(deadline) = track.publish_done(status, reason, stream_count, std::time::Instant::now()) else { return };
    tokio::select! {
        _ = track.ended() => {}
        _ = tokio::time::sleep_until(deadline.into()) => track.handle_timeout(std::time::Instant::now()),
    }
}
