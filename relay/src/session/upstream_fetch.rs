//! A Standalone FETCH the relay cannot answer from its cache, passed on to
//! the track's publisher (draft-ietf-moq-transport-18 §9.1: "Relays MAY cache
//! Objects, but are not required to"; §9.5: "When a Relay needs to make an
//! upstream FETCH request, it determines the available publishers using the
//! same matching rules as SUBSCRIBE").
//!
//! The answer travels back unchanged: FETCH_OK's fields, then the publisher's
//! FETCH stream (§11.4.4) re-headed with the downstream Request ID and its
//! objects copied byte for byte — a FETCH stream's serialization flags refer
//! only to earlier objects of the same stream, so the bytes stay valid. The
//! copy is bounded by the relay's per-track cache size and each piece by the
//! stall timeout; an upstream reset is passed on as a reset (§10.12.3).
//!
//! A publisher need not serve FETCH at all, and one that says nothing (a
//! phone that never reads requests it did not expect) must not hold the
//! subscriber's FETCH for the relay's whole upstream timeout: past
//! [`ANSWER_WAIT`] without FETCH_OK or REQUEST_ERROR the upstream request is
//! cancelled and the FETCH is answered from what the relay has, as it was
//! before it asked ([`Forwarded::Unanswered`]). Found by the web phone's
//! hostile-caller test: the caller's events FETCH waited 10 s on a caller
//! that never answers FETCH, past the page's own 2 s.

use super::handle::SessionHandle;
use super::io::{reply, FrameReader, StreamError};
use super::transport::{ReadError, RecvStream, SendStream};
use crate::state::Relay;
use crate::wire::control::Response;
use crate::wire::fetch::header;
use crate::wire::{stream_error, varint, RequestErrorCode};
use bytes::BytesMut;
use moq_wire::message::{self, Message};
use std::sync::Arc;

/// How long the publisher has to answer a FETCH (FETCH_OK or REQUEST_ERROR)
/// before the relay answers it itself.
pub const ANSWER_WAIT: std::time::Duration = std::time::Duration::from_millis(750);

/// What became of a FETCH passed upstream.
pub enum Forwarded {
    /// Answered, by the publisher's answer or a refusal.
    Done,
    /// The publisher said nothing within [`ANSWER_WAIT`]: the downstream
    /// request stream, still unanswered, for the relay to answer.
    Unanswered(SendStream),
}

/// Sends `request` (a downstream Standalone FETCH) to `publisher` and relays
/// its answer to `send` and a new FETCH stream of `session`.
pub async fn forward(
    relay: &Relay,
    session: &SessionHandle,
    publisher: &SessionHandle,
    mut request: message::Fetch,
    mut send: SendStream,
) -> Result<Forwarded, StreamError> {
    let downstream_id = request.id;
    // The whole ask is bounded by ANSWER_WAIT: a publisher that grants no
    // stream (or no credit for the message) says nothing too.
    let deadline = tokio::time::Instant::now() + ANSWER_WAIT.min(relay.limits.upstream_timeout);
    let (mut up_send, up_recv) = match tokio::time::timeout_at(deadline, publisher.wt.open_bi()).await {
        Ok(r) => r.map_err(|e| StreamError::Transport(e.to_string()))?,
        Err(_) => {
            relay.metrics.error("upstream_fetch_unanswered");
            return Ok(Forwarded::Unanswered(send));
        }
    };
    request.id = publisher.next_request_id();
    if publisher.wt.version() != session.wt.version() {
        // A draft-22 publisher may answer FILL_TIMEOUT with an End of
        // Timed-Out Range marker (0x20C) draft-18 does not know, and the
        // stream is copied byte for byte: not asked for across drafts
        // (docs/DRAFT22.md §7).
        request.params.0.retain(|p| p.key != moq_wire::request::param::FILL_TIMEOUT);
    }
    let upstream_id = request.id;
    let data = publisher.expect_fetch(upstream_id);
    let result = async {
        let mut reader = FrameReader::new(up_recv, relay.limits.stall_timeout);
        let asked = async {
            super::io::request(&mut up_send, &Message::Fetch(request)).await?;
            reader.next().await
        };
        let first = match tokio::time::timeout_at(deadline, asked).await.unwrap_or(Err(StreamError::Timeout)) {
            Ok(f) => f,
            Err(StreamError::Timeout) => {
                // Cancel upstream (§3.3.2: reset ours, the reader's drop
                // stops theirs) and let the caller answer.
                relay.metrics.error("upstream_fetch_unanswered");
                let _ = up_send.reset(stream_error::CANCELLED);
                return Ok(Forwarded::Unanswered(send));
            }
            Err(e) => {
                refuse(&mut send, RequestErrorCode::Timeout, &format!("the publisher did not answer the FETCH: {e}")).await?;
                return Ok(Forwarded::Done);
            }
        };
        match first.response()? {
            Response::FetchOk { end_of_track, end_location, params, properties } => {
                reply(&mut send, Response::FetchOk { end_of_track, end_location, params, properties }).await?;
            }
            Response::RequestError { code, reason, .. } => {
                refuse_code(&mut send, code, &reason).await?;
                return Ok(Forwarded::Done);
            }
            other => {
                refuse(&mut send, RequestErrorCode::InternalError, &format!("the publisher answered the FETCH with {other:?}")).await?;
                return Ok(Forwarded::Done);
            }
        }
        let Ok(Ok((recv, rest))) = tokio::time::timeout(relay.limits.upstream_timeout, data).await else {
            relay.metrics.error("upstream_fetch_stream_missing");
            let _ = send.finish();
            return Ok(Forwarded::Done);
        };
        copy(relay, session, downstream_id, recv, rest).await?;
        let _ = send.finish();
        // Our side of the request stream stays open until the data is
        // through: a FIN would cancel the FETCH (§3.3.2).
        let _ = up_send.finish();
        drop(reader);
        Ok(Forwarded::Done)
    }
    .await;
    publisher.forget_fetch(upstream_id);
    result
}

/// Copies the publisher's FETCH stream (header already read: `rest` is what
/// followed it) to a new stream of `session` headed with `request_id`.
async fn copy(relay: &Relay, session: &SessionHandle, request_id: u64, mut recv: RecvStream, rest: BytesMut) -> Result<(), StreamError> {
    let mut out = session.wt.open_uni().await.map_err(|e| StreamError::Transport(e.to_string()))?;
    let mut head = Vec::with_capacity(16);
    header(request_id, &mut head);
    head.extend_from_slice(&rest);
    let mut budget = relay.limits.cache_bytes.saturating_sub(rest.len());
    let mut pending = head;
    loop {
        if !pending.is_empty() {
            match tokio::time::timeout(relay.limits.stall_timeout, super::io::write(&mut out, &pending)).await {
                Ok(r) => r?,
                Err(_) => {
                    relay.metrics.error("fetch_stream_stalled");
                    let _ = out.reset(stream_error::TOO_FAR_BEHIND);
                    let _ = recv.stop(stream_error::CANCELLED);
                    return Ok(());
                }
            }
            pending.clear();
        }
        match tokio::time::timeout(relay.limits.stall_timeout, recv.read_chunk(16 * 1024)).await {
            Ok(Ok(Some(chunk))) => {
                if chunk.len() > budget {
                    // More than the relay keeps of a track: end it as a relay
                    // that ran out of resources would (§3.3.3 EXCESSIVE_LOAD).
                    relay.metrics.error("upstream_fetch_too_large");
                    let _ = out.reset(stream_error::EXCESSIVE_LOAD);
                    let _ = recv.stop(stream_error::EXCESSIVE_LOAD);
                    return Ok(());
                }
                budget -= chunk.len();
                pending.extend_from_slice(&chunk);
            }
            Ok(Ok(None)) => {
                let _ = out.finish();
                return Ok(());
            }
            Ok(Err(ReadError::Reset(code))) => {
                let _ = out.reset(code);
                return Ok(());
            }
            Ok(Err(_)) => {
                let _ = out.reset(stream_error::SESSION_CLOSED);
                return Ok(());
            }
            Err(_) => {
                relay.metrics.error("upstream_fetch_stalled");
                let _ = out.reset(stream_error::CANCELLED);
                let _ = recv.stop(stream_error::CANCELLED);
                return Ok(());
            }
        }
    }
}

/// A FETCH_HEADER stream a publisher opened (§11.4.4): handed to the FETCH of
/// ours it answers, or stopped when we sent no such FETCH.
pub async fn incoming(relay: Arc<Relay>, session: Arc<SessionHandle>, mut recv: RecvStream, mut buf: BytesMut) {
    let type_len = varint::read(&buf).map(|(_, n)| n).unwrap_or(0);
    let (id, used) = loop {
        if let Some((id, n)) = varint::read(&buf[type_len..]) {
            break (id, type_len + n);
        }
        match tokio::time::timeout(relay.limits.stall_timeout, recv.read_chunk(4096)).await {
            Ok(Ok(Some(c))) => buf.extend_from_slice(&c),
            Ok(Ok(None) | Err(_)) => return,
            Err(_) => return super::data::stalled(&relay, &session, "fetch header"),
        }
    };
    let rest = buf.split_off(used);
    if let Err(mut recv) = session.deliver_fetch(id, recv, rest) {
        let _ = recv.stop(stream_error::CANCELLED);
    }
}

async fn refuse(send: &mut SendStream, code: RequestErrorCode, reason: &str) -> Result<(), StreamError> {
    reply(send, Response::error(code, 0, reason)).await?;
    let _ = send.finish();
    Ok(())
}

async fn refuse_code(send: &mut SendStream, code: u64, reason: &str) -> Result<(), StreamError> {
    reply(send, Response::RequestError { code, retry_interval: 0, reason: reason.into() }).await?;
    let _ = send.finish();
    Ok(())
}
