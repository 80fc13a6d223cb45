//! SUBSCRIBE_TRACKS (draft-ietf-moq-transport-18 §10.19): the relay answers
//! REQUEST_OK, then sends a PUBLISH (§10.10) on a new bidi stream for every
//! published track under the prefix, now and later. Each accepted PUBLISH is
//! an ordinary downstream subscription of the shared [`Track`].

use super::handle::SessionHandle;
use super::io::{reply, FrameReader, StreamError};
use super::namespace::Watch;
use super::transport::SendStream;
use crate::routing::router::{Existing, Notice};
use crate::routing::track::{Phase, Subscriber, Track, Window};
use crate::state::Relay;
use crate::wire::control::Response;
use moq_wire::coding::{Decode, KeyValuePairs};
use moq_wire::message::{self, Message};
use std::sync::Arc;

pub async fn watch(
    relay: &Arc<Relay>,
    session: &Arc<SessionHandle>,
    m: message::SubscribeTracks,
    mut send: SendStream,
    mut reader: FrameReader,
) -> Result<(), StreamError> {
    let forward = m.params.forward().ok().flatten().unwrap_or(true);
    let Some(mut w) = Watch::register(relay, session, m.track_namespace_prefix, true, &mut send).await? else { return Ok(()) };
    let existing = match std::mem::replace(&mut w.existing, Existing::Tracks(Vec::new())) {
        Existing::Tracks(t) => t,
        Existing::Namespaces(_) => Vec::new(),
    };
    if let Err(e) = reply(&mut send, Response::RequestOk(KeyValuePairs::new())).await {
        w.cancel(relay);
        return Err(e);
    }
    for t in existing {
        tokio::spawn(publish(relay.clone(), session.clone(), t, forward));
    }
    w.serve(relay, session, &mut send, &mut reader, |n| {
        if let Notice::Track { track, .. } = n {
            tokio::spawn(publish(relay.clone(), session.clone(), track, forward));
        }
        None
    })
    .await
}

/// Offers one track to the subscriber with PUBLISH and serves it if accepted.
async fn publish(relay: Arc<Relay>, session: Arc<SessionHandle>, track: Arc<Track>, forward: bool) {
    if let Err(e) = publish_inner(&relay, &session, &track, forward).await {
        if matches!(e, StreamError::Stalled) {
            // The subscriber stopped half-way through PUBLISH_OK or an update (§3.5).
            session.message_stalled(&relay.metrics, "request");
        }
        tracing::debug!(session = session.id, track = %track.name, error = %e, "PUBLISH to subscriber ended");
    }
}

async fn publish_inner(relay: &Arc<Relay>, session: &Arc<SessionHandle>, track: &Arc<Track>, forward: bool) -> Result<(), StreamError> {
    let Phase::Active { properties, .. } = track.current_phase() else { return Ok(()) };
    let (mut send, recv) = session.wt.open_bi().await.map_err(|e| StreamError::Transport(e.to_string()))?;
    let alias = session.next_alias();
    let mut params = KeyValuePairs::new();
    params.set_forward(forward);
    let largest = track.largest();
    if let Some(l) = largest {
        let _ = params.set_largest_object(l);
    }
    let track_extensions = message::TrackExtensions::decode(&mut &properties[..]).unwrap_or_default();
    let msg = Message::Publish(message::Publish {
        id: session.next_request_id(),
        track_namespace: track.name.namespace.clone(),
        track_name: track.name.name.clone(),
        track_alias: alias,
        params,
        track_extensions,
    });
    super::io::request(&mut send, &msg).await?;
    let mut reader = FrameReader::new(recv, relay.limits.stall_timeout);
    // Draft-22: the subscriber's FIN does not decline or end the track.
    reader.keep_after_fin(&session.wt);
    let (forward, window) = match reader.next_within(relay.limits.upstream_timeout).await?.response()? {
        Response::PublishOk(p) | Response::RequestOk(p) => {
            // §10.2, §10.2.1, §5.1.2: only PUBLISH_OK's parameters, once
            // each, with allowed values (an unknown filter type is a
            // PROTOCOL_VIOLATION, not an unfiltered subscription).
            if let Err(r) = moq_wire::request::check_params(moq_wire::request::Scope::PublishOk, &p) {
                session.close(r.code, &format!("PUBLISH_OK: {}", r.reason));
                return Err(StreamError::Transport(r.reason));
            }
            let filter = p.subscription_filter().ok().flatten();
            let window = Window::new(filter.as_ref(), largest)
                .map_err(|e| StreamError::Wire(crate::wire::WireError::Malformed("PUBLISH_OK", e.to_string())))?;
            (p.forward().ok().flatten().unwrap_or(forward), window)
        }
        Response::RequestError { .. } => {
            let _ = send.finish();
            return Ok(());
        }
        other => return Err(StreamError::Wire(crate::wire::WireError::Malformed("PUBLISH response", format!("{other:?}")))),
    };
    let sub_id = relay.next_id();
    let mut sub = Subscriber::new(sub_id, alias, window, session.outbound.clone(), Arc::new(session.wt.clone()));
    sub.forward = forward;
    track.attach_with_catchup(sub);
    super::subscribe::serve_attached(relay, session, track, sub_id, forward, 0, &mut send, &mut reader).await
}
