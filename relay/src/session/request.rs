//! Bidirectional request streams (draft-ietf-moq-transport-18 §3.3): each
//! starts with one request message and lives as long as the request.

use super::handle::{AuthState, SessionHandle};
use super::io::{reply, FrameReader, StreamError};
use super::transport::{RecvStream, SendStream};
use crate::routing::quota::{Kind, OverLimit};
use crate::state::Relay;
use crate::wire::control::{kind, Response};
use crate::wire::{session_error, stream_error, RequestErrorCode};
use moq_wire::message::Message;
use std::sync::Arc;

/// Runs one request stream to completion.
pub async fn run(relay: Arc<Relay>, session: Arc<SessionHandle>, mut send: SendStream, recv: RecvStream) {
    let mut reader = FrameReader::new(recv, relay.limits.stall_timeout);
    let first = reader.next_if(kind::starts_request);
    let frame = match tokio::time::timeout(relay.limits.handshake_timeout, first).await.unwrap_or(Err(StreamError::Timeout)) {
        Ok(f) => f,
        Err(StreamError::Timeout) if !reader.is_partial() => {
            // Opened and never written: cancel the request (§3.3.1), keep the
            // session. An empty stream is no evidence of a stalled peer: QUIC
            // opens every lower-numbered stream along with the one written
            // (RFC 9000 §3.2), so it may only be waiting for a lost packet.
            reader.stop(crate::wire::stream_error::CANCELLED);
            let _ = send.reset(crate::wire::stream_error::CANCELLED);
            return;
        }
        // A first message begun and not finished (trickled past the
        // handshake deadline, or stalled): §3.5 CONTROL_MESSAGE_TIMEOUT.
        Err(StreamError::Timeout | StreamError::Stalled) => return session.message_stalled(&relay.metrics, "request"),
        Err(StreamError::Wire(e)) => return violation(&relay, &session, &format!("request stream: {e}")),
        Err(_) => return,
    };
    // Decoded as draft-18 defines requests (moq_wire::request): a malformed
    // one closes the session with the code the draft names for it.
    let msg = match moq_wire::request::decode(&frame) {
        Ok(m) => m,
        Err(r) => {
            relay.metrics.error("malformed_request");
            session.close(r.code, &format!("malformed request: {}", r.reason));
            return;
        }
    };
    if let Some(id) = msg.sequenced_request_id() {
        // §10.1: even, and never twice.
        if let Err(why) = session.claim_request(id) {
            relay.metrics.error("invalid_request_id");
            session.invalid_request_id(why);
            return;
        }
    }
    relay.metrics.request(msg.name());
    tracing::debug!(session = session.id, request = ?msg, "request");
    // Draining (§10.4): every new request is refused alike. Accepting a
    // device's PUBLISH_NAMESPACE but refusing its SUBSCRIBE_NAMESPACE left it
    // half registered — reachable for presence, deaf to calls — until it moved.
    if *relay.going_away.borrow() {
        let r = Response::error(RequestErrorCode::GoingAway, 0, "relay is shutting down");
        return refuse(&mut send, &mut reader, r, stream_error::GOING_AWAY).await;
    }
    if let Some((code, reason)) = moq_wire::draft22::unsupported(&msg) {
        // A draft-22 request whose filter or backfill this relay's routing
        // (draft-18's filters) cannot serve as asked: refused, not served
        // differently from what was asked.
        relay.metrics.denied("unsupported_draft22");
        let r = Response::RequestError { code, retry_interval: 0, reason };
        return refuse(&mut send, &mut reader, r, stream_error::CANCELLED).await;
    }
    if reserved(&msg) {
        // §3.2.1: requests referencing `.` MUST be rejected with
        // DOES_NOT_EXIST; §3.2.2: so must requests for session-level tracks
        // and namespaces (`.session`) this relay does not recognize — it
        // recognizes none — and they are never forwarded to other sessions.
        relay.metrics.denied("reserved_namespace");
        let r = Response::error(RequestErrorCode::DoesNotExist, 0, "reserved namespace");
        return refuse(&mut send, &mut reader, r, stream_error::CANCELLED).await;
    }
    match authorize(&relay, &session, &msg).await {
        Ok(()) => {}
        Err(Some(code)) => {
            let r = Response::RequestError { code, retry_interval: 0, reason: "unauthorized".into() };
            let stop =
                if code == RequestErrorCode::ExpiredAuthToken as u64 { stream_error::EXPIRED_AUTH_TOKEN } else { stream_error::CANCELLED };
            return refuse(&mut send, &mut reader, r, stop).await;
        }
        // The session itself was refused and is closing: its close code says why.
        Err(None) => return,
    }
    let _slot = match QuotaSlot::take(&session, &msg) {
        Ok(slot) => slot,
        Err(over) => {
            relay.metrics.limit(over.label());
            tracing::info!(session = session.id, request = msg.name(), limit = over.label(), "request over a session limit");
            let retry_interval = over.retry_interval();
            let r = Response::error(RequestErrorCode::ExcessiveLoad, retry_interval, "over a session limit");
            return refuse(&mut send, &mut reader, r, stream_error::EXCESSIVE_LOAD).await;
        }
    };
    // Draft-22: the requester's FIN only says it has nothing more to send,
    // and only a reset cancels (docs/DRAFT22.md §8), so the request lives on
    // until the session ends. A publisher's PUBLISH still ends with its
    // PUBLISH_DONE: a FIN before it means the track failed.
    if !matches!(msg, Message::Publish(_)) {
        reader.keep_after_fin(&session.wt);
    }
    // Each kind of request runs boxed: a task's future is as large as its
    // largest branch, and a session keeps its requests open for its life
    // (registration, subscriptions), so unboxed every one would be sized
    // like the biggest handler.
    let res = match msg {
        Message::Subscribe(m) => Box::pin(super::subscribe::downstream(&relay, &session, m, send, reader)).await,
        Message::PublishNamespace(m) => Box::pin(super::publish::namespace(&relay, &session, m, send, reader)).await,
        Message::Publish(m) => Box::pin(super::publish::track(&relay, &session, m, send, reader)).await,
        Message::SubscribeNamespace(m) => Box::pin(super::namespace::watch(&relay, &session, m, send, reader)).await,
        Message::Fetch(m) => Box::pin(super::fetch::fetch(&relay, &session, m, send, reader)).await,
        Message::TrackStatus(m) => Box::pin(super::fetch::track_status(&relay, &session, m, send)).await,
        Message::SubscribeTracks(m) => Box::pin(super::tracks::watch(&relay, &session, m, send, reader)).await,
        _ => Ok(()),
    };
    match res {
        Ok(()) => {}
        Err(StreamError::Wire(e)) => violation(&relay, &session, &e.to_string()),
        Err(StreamError::Stalled) => session.message_stalled(&relay.metrics, "request"),
        Err(e) => tracing::debug!(session = session.id, error = %e, "request ended"),
    }
}

/// Rejects a request before any processing (§3.3.2): REQUEST_ERROR and FIN
/// on our side, and STOP_SENDING on the peer's with `stop`, a code that says
/// why (§3.3.3) — not the INTERNAL_ERROR (0) a dropped stream would send.
async fn refuse(send: &mut SendStream, reader: &mut FrameReader, r: Response, stop: u32) {
    let _ = reply(send, r).await;
    let _ = send.finish();
    reader.stop(stop);
}

/// A request naming a namespace whose first field is `.` (§3.2.1) or
/// `.session` (§3.2.2).
fn reserved(msg: &Message) -> bool {
    let first = match msg {
        Message::Subscribe(m) => m.track_namespace.fields.first(),
        Message::Publish(m) => m.track_namespace.fields.first(),
        Message::TrackStatus(m) => m.track_namespace.fields.first(),
        Message::PublishNamespace(m) => m.track_namespace.fields.first(),
        Message::SubscribeNamespace(m) => m.track_namespace_prefix.fields.first(),
        Message::SubscribeTracks(m) => m.track_namespace_prefix.fields.first(),
        Message::Fetch(m) => m.standalone_fetch.as_ref().and_then(|f| f.track_namespace.fields.first()),
        _ => None,
    };
    moq_wire::request::is_reserved_unknown(first.map(|f| &f.value[..]))
}

fn violation(relay: &Relay, session: &SessionHandle, why: &str) {
    relay.metrics.error("protocol_violation");
    session.close(session_error::PROTOCOL_VIOLATION, why);
}

/// Checks a request against its session's token (issue 13), or without keys
/// against SETUP's verdict on the session. SETUP may still be on its way (requests can overtake it, draft-18 §3.3), so this waits for
/// its verdict within the handshake timeout. Returns the REQUEST_ERROR code
/// of a refusal, or `None` when the session itself was refused.
async fn authorize(relay: &Relay, session: &SessionHandle, msg: &Message) -> Result<(), Option<u64>> {
    let Some(auth) = &relay.auth else {
        // No key: SETUP's verdict still decides (a loopback-only relay refuses
        // other machines there), so a request that overtook SETUP must not be
        // served before it.
        return match session.auth_state(relay.limits.handshake_timeout).await {
            AuthState::Open | AuthState::Granted(_) => Ok(()),
            AuthState::Pending | AuthState::Refused => Err(None),
        };
    };
    let grant = match session.auth_state(relay.limits.handshake_timeout).await {
        AuthState::Open => return Ok(()),
        AuthState::Granted(g) => g,
        AuthState::Pending | AuthState::Refused => return Err(None),
    };
    // A joining FETCH acts on the subscription it joins (§10.12.2).
    let joined = match msg {
        Message::Fetch(m) => m.joining_fetch.as_ref().and_then(|j| session.established(j.joining_request_id)).map(|e| {
            let n = &e.track.name;
            (n.namespace.clone(), n.name.as_bytes().to_vec())
        }),
        _ => None,
    };
    let now = crate::auth::unix_now();
    auth.check(&grant, msg, joined.as_ref(), now).map_err(|refusal| {
        relay.metrics.denied(refusal.label());
        tracing::info!(session = session.id, request = msg.name(), reason = %refusal, "request refused");
        Some(refusal.request_code())
    })
}

/// One of the session's request slots (issue 13 limits), given back when
/// the request ends.
struct QuotaSlot {
    session: Arc<SessionHandle>,
    kind: Option<Kind>,
}

impl QuotaSlot {
    /// Spends the request rate and takes the slot its kind needs.
    fn take(session: &Arc<SessionHandle>, msg: &Message) -> Result<QuotaSlot, OverLimit> {
        let kind = match msg {
            Message::Subscribe(_) | Message::Fetch(_) | Message::TrackStatus(_) => Some(Kind::Subscription),
            Message::PublishNamespace(_) => Some(Kind::Namespace),
            Message::SubscribeNamespace(_) | Message::SubscribeTracks(_) => Some(Kind::Watch),
            Message::Publish(_) => Some(Kind::Track),
            _ => None,
        };
        let mut q = session.quota.lock().unwrap_or_else(|e| e.into_inner());
        q.request(std::time::Instant::now())?;
        if let Some(k) = kind {
            q.acquire(k)?;
        }
        Ok(QuotaSlot { session: session.clone(), kind })
    }
}

impl Drop for QuotaSlot {
    fn drop(&mut self) {
        if let Some(k) = self.kind {
            self.session.quota.lock().unwrap_or_else(|e| e.into_inner()).release(k);
        }
    }
}
