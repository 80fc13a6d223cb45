//! Bidirectional request streams (draft-ietf-moq-transport-18 §3.3, §10):
//! each request — SUBSCRIBE, PUBLISH, FETCH, PUBLISH_NAMESPACE,
//! SUBSCRIBE_NAMESPACE, … — opens its own bidi stream, starts it with the
//! request message (which carries the Request ID, §10.1), and all responses
//! and follow-ups travel on that stream without a Request ID.

use crate::error::{Error, Result};
use bytes::BytesMut;
use moq_wire::control::{encode_request_as, take_frame_as, Frame, Response};
use moq_wire::message::Message;
use moq_wire::stream_error;
use moq_wire::Version;
use std::time::Duration;
use web_transport_quinn::{RecvStream, SendStream};

/// One request stream, from either side.
pub struct RequestStream {
    send: SendStream,
    recv: RecvStream,
    buf: BytesMut,
    /// The Request ID of the message that opened the stream.
    pub request_id: u64,
    /// The session's draft: how messages on this stream are read and written.
    pub version: Version,
}

impl RequestStream {
    pub(crate) fn new(send: SendStream, recv: RecvStream, buf: BytesMut, request_id: u64, version: Version) -> Self {
        Self { send, recv, buf, request_id, version }
    }

    /// Opens a bidi stream on `wt` and writes the request message (§3.3: the
    /// request is the first message on the stream).
    pub(crate) async fn open(wt: &web_transport_quinn::Session, version: Version, request_id: u64, msg: &Message) -> Result<Self> {
        let (mut send, recv) = wt.open_bi().await?;
        let bytes = encode_request_as(msg, version).map_err(|e| Error::Transport(format!("cannot encode {}: {e}", msg.name())))?;
        send.write_all(&bytes).await?;
        Ok(Self::new(send, recv, BytesMut::new(), request_id, version))
    }

    /// Next control message on the stream. A clean FIN between messages is
    /// [`Error::StreamClosed`], a reset is [`Error::Reset`].
    pub async fn next_frame(&mut self) -> Result<Frame> {
        loop {
            if let Some(f) = take_frame_as(&mut self.buf, self.version)? {
                return Ok(f);
            }
            match self.recv.read_chunk(64 * 1024, true).await? {
                Some(chunk) => self.buf.extend_from_slice(&chunk.bytes),
                None if self.buf.is_empty() => return Err(Error::StreamClosed),
                None => return Err(Error::Protocol("request stream ended inside a message".into())),
            }
        }
    }

    /// Next response message (§10: SUBSCRIBE_OK, REQUEST_OK, REQUEST_ERROR,
    /// PUBLISH_DONE, NAMESPACE, …), waiting at most `timeout`; `what` names
    /// the awaited message for the timeout error.
    pub async fn next_response(&mut self, timeout: Duration, what: &str) -> Result<Response> {
        let frame = tokio::time::timeout(timeout, self.next_frame()).await.map_err(|_| Error::Timeout(what.to_string()))??;
        Ok(frame.response()?)
    }

    /// Writes one response or follow-up message.
    pub async fn reply(&mut self, r: &Response) -> Result<()> {
        self.send.write_all(&r.encode_as(self.version)).await?;
        Ok(())
    }

    /// Writes raw, already framed bytes.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.send.write_all(bytes).await?;
        Ok(())
    }

    /// Ends our half of the stream cleanly (FIN).
    pub fn finish(&mut self) {
        let _ = self.send.finish();
    }

    /// Resets only our half of the stream (§3.3.2).
    pub fn reset_send(&mut self, code: u32) {
        let _ = self.send.reset(code);
    }

    /// Cancels the request (§3.3.2): reset our half and STOP_SENDING theirs.
    pub fn cancel(&mut self, code: u32) {
        let _ = self.send.reset(code);
        let _ = self.recv.stop(code);
    }

    /// Cancels with CANCELLED (§3.3.3).
    pub fn cancel_default(&mut self) {
        self.cancel(stream_error::CANCELLED);
    }

    /// Waits until the peer ends its half (FIN or reset), discarding any
    /// further messages; returns `Ok(())` on FIN, the reset otherwise.
    pub async fn closed(&mut self, timeout: Duration) -> Result<()> {
        let wait = async {
            loop {
                match self.next_frame().await {
                    Ok(_) => continue,
                    Err(Error::StreamClosed) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.map_err(|_| Error::Timeout("the peer to close the request stream".into()))?
    }
}

/// A one-line description of a response for diagnostics.
pub fn describe(r: &Response) -> String {
    match r {
        Response::RequestOk(_) | Response::TrackStatusOk { .. } => "REQUEST_OK".into(),
        Response::RequestError { code, reason, retry_interval } => {
            crate::error::RequestError { code: *code, retry_interval: *retry_interval, reason: reason.clone() }.to_string()
        }
        Response::SubscribeOk { alias, .. } => format!("SUBSCRIBE_OK (alias {alias})"),
        Response::PublishOk(_) => "PUBLISH_OK".into(),
        Response::PublishDone { status, stream_count, reason } => {
            format!("PUBLISH_DONE (status {status:#x}, {stream_count} streams, {reason:?})")
        }
        Response::Namespace(s) => format!("NAMESPACE {}", s.to_utf8_path()),
        Response::NamespaceDone(s) => format!("NAMESPACE_DONE {}", s.to_utf8_path()),
        Response::RequestUpdate { .. } => "REQUEST_UPDATE".into(),
        Response::FetchOk { end_location, .. } => {
            format!("FETCH_OK (end {}/{})", end_location.group_id, end_location.object_id)
        }
        Response::GoAway { uri, .. } => format!("GOAWAY {uri:?}"),
        Response::PublishStateNotify(_) => "PUBLISH_STATE_NOTIFY".into(),
    }
}

/// Turns a REQUEST_ERROR into [`Error::Rejected`] and anything else that is
/// not what the caller wanted into [`Error::Unexpected`].
pub fn unexpected(expected: &str, r: Response) -> Error {
    match r {
        Response::RequestError { code, retry_interval, reason } => {
            Error::Rejected(crate::error::RequestError { code, retry_interval, reason })
        }
        other => Error::unexpected(expected, describe(&other)),
    }
}
