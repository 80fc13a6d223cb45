//! Thin async helpers over a session's streams ([`super::transport`]): read
//! framed control messages (§10) and write whole frames.

use super::transport::{ReadError, RecvStream, SendStream};
use crate::wire::control::{take_frame_as, Frame, Response};
use crate::wire::WireError;
use bytes::BytesMut;
use std::time::Duration;

/// Why a request or control stream stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("peer closed the stream")]
    Closed,
    #[error("peer reset the stream (code {0})")]
    Reset(u32),
    #[error("timed out waiting for the peer")]
    Timeout,
    /// The peer sent part of a control message and then nothing for the
    /// stall timeout (§3.5 CONTROL_MESSAGE_TIMEOUT): see [`FrameReader`].
    #[error("the peer stopped sending in the middle of a control message")]
    Stalled,
    #[error("protocol violation: {0}")]
    Wire(#[from] WireError),
    #[error("transport: {0}")]
    Transport(String),
}

/// Reads control messages from a stream. Each message is at most 64 KiB plus
/// one read chunk, which bounds memory per stream.
///
/// On a request stream (made by [`Self::new`]) the peer may send GOAWAY to
/// migrate that one request (§10.4): it is checked and passed over here, so
/// handlers never see it. Dropped before the peer finished its side, the
/// reader sends STOP_SENDING with CANCELLED, or the code [`Self::stop`] gave
/// (§3.3.2: "a relevant error code"), not quinn's default 0 (INTERNAL_ERROR).
///
/// A message begun and not finished times out: once bytes of a message are
/// buffered, each read waits at most `stall` for more, and
/// [`StreamError::Stalled`] follows (the session closes with
/// CONTROL_MESSAGE_TIMEOUT, §3.5: "took too long"). Waiting *between* whole
/// messages is never timed out here: a subscription's request stream is
/// silent for its whole life. The deadline lives in the reader, not in the
/// read, because handlers poll [`Self::next`] inside `select!` loops that
/// drop and restart it whenever another branch wakes: a deadline re-armed
/// per call would never fire while, say, NAMESPACE notices flow.
pub struct FrameReader {
    recv: RecvStream,
    buf: BytesMut,
    /// How long a partial message may wait for its next bytes.
    stall: Duration,
    /// When the partial message in `buf` times out; re-armed when bytes arrive.
    deadline: Option<tokio::time::Instant>,
    /// A request stream (GOAWAY allowed, §10.4), not the control stream.
    request_stream: bool,
    goaways: u8,
    stopped: bool,
    /// Draft-22 (docs/DRAFT22.md §8): a FIN from the requester does not end
    /// the request; after it, [`Self::next`] waits for the session to close.
    after_fin: Option<super::transport::Conn>,
    finished: bool,
}

impl FrameReader {
    /// A request stream's reader; a partial message may wait `stall` for
    /// its next bytes (`Limits::stall_timeout`).
    pub fn new(recv: RecvStream, stall: Duration) -> Self {
        Self {
            recv,
            buf: BytesMut::new(),
            stall,
            deadline: None,
            request_stream: true,
            goaways: 0,
            stopped: false,
            after_fin: None,
            finished: false,
        }
    }

    /// On a draft-22 session, makes the requester's FIN leave the request in
    /// place: [`Self::next`] then waits for the session to end (or returns
    /// at once on draft-18, where a FIN cancels).
    pub fn keep_after_fin(&mut self, conn: &super::transport::Conn) {
        if self.version() == crate::wire::Version::Draft22 {
            self.after_fin = Some(conn.clone());
        }
    }

    /// The draft the stream's messages are read in.
    pub fn version(&self) -> crate::wire::Version {
        self.recv.version()
    }

    /// The control stream's reader, whose first bytes were already read: its
    /// GOAWAY is the session's (`session::control`).
    pub fn with_buffer(recv: RecvStream, buf: BytesMut, stall: Duration) -> Self {
        Self { recv, buf, stall, deadline: None, request_stream: false, goaways: 0, stopped: false, after_fin: None, finished: false }
    }

    /// Part of a message is buffered: the peer is in the middle of one.
    pub fn is_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// A GOAWAY on a request stream (§10.4): from a client its New Session
    /// URI MUST be empty (else PROTOCOL_VIOLATION), it carries no Request ID
    /// (that is the control stream's), and a second one on the same stream is
    /// a PROTOCOL_VIOLATION. The request goes on: the relay has nowhere to
    /// re-issue it, and the client closes the stream when it has moved it.
    fn request_goaway(&mut self, f: &Frame) -> Result<(), StreamError> {
        let bad = |why: &str| StreamError::Wire(WireError::Malformed("GOAWAY", why.into()));
        let g = f.goaway()?;
        if !g.uri.is_empty() {
            return Err(bad("a client's GOAWAY carried a New Session URI (§10.4)"));
        }
        if g.request_id.is_some() {
            return Err(bad("a Request ID in a GOAWAY on a request stream (§10.4)"));
        }
        self.goaways += 1;
        if self.goaways > 1 {
            return Err(bad("a second GOAWAY on one request stream (§10.4)"));
        }
        Ok(())
    }

    /// Next frame, or `StreamError::Closed` at a clean FIN between frames.
    pub async fn next(&mut self) -> Result<Frame, StreamError> {
        self.next_if(|_| true).await
    }

    /// Like [`Self::next`], but fails as soon as the message type is known
    /// and not `allowed`, without waiting for a payload that may never come.
    pub async fn next_if(&mut self, allowed: impl Fn(u64) -> bool) -> Result<Frame, StreamError> {
        if self.finished {
            if let Some(conn) = &self.after_fin {
                conn.closed().await;
            }
            return Err(StreamError::Closed);
        }
        loop {
            if let Some((kind, _)) = crate::wire::varint::read(&self.buf) {
                if !allowed(kind) {
                    return Err(StreamError::Wire(WireError::InvalidType(kind)));
                }
            }
            if let Some(f) = take_frame_as(&mut self.buf, self.recv.version())? {
                if self.request_stream && f.kind == crate::wire::control::kind::GOAWAY {
                    self.request_goaway(&f)?;
                    continue;
                }
                return Ok(f);
            }
            let read = self.recv.read_chunk(64 * 1024);
            let read = if self.buf.is_empty() {
                read.await
            } else {
                // Mid-message: armed once, kept across cancelled calls.
                let at = *self.deadline.get_or_insert_with(|| tokio::time::Instant::now() + self.stall);
                match tokio::time::timeout_at(at, read).await {
                    Ok(r) => r,
                    Err(_) => return Err(StreamError::Stalled),
                }
            };
            match read {
                Ok(Some(chunk)) => {
                    // Progress: a slow link is not a stalled one.
                    self.deadline = None;
                    self.buf.extend_from_slice(&chunk)
                }
                Ok(None) if self.buf.is_empty() => {
                    // The peer finished its side: nothing to stop.
                    self.stopped = true;
                    self.finished = true;
                    if let Some(conn) = &self.after_fin {
                        conn.closed().await;
                    }
                    return Err(StreamError::Closed);
                }
                Ok(None) => return Err(StreamError::Wire(WireError::Truncated)),
                Err(e) => return Err(read_error(e)),
            }
        }
    }

    pub async fn next_within(&mut self, t: Duration) -> Result<Frame, StreamError> {
        tokio::time::timeout(t, self.next()).await.map_err(|_| StreamError::Timeout)?
    }

    /// Asks the peer to stop sending (STOP_SENDING) with `code` (§3.3.3).
    pub fn stop(&mut self, code: u32) {
        if !self.stopped {
            self.stopped = true;
            let _ = self.recv.stop(code);
        }
    }
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        // A request the relay is done with while the peer still sends:
        // cancelled (§3.3.2), said with CANCELLED rather than quinn's 0.
        self.stop(crate::wire::stream_error::CANCELLED);
    }
}

pub fn read_error(e: ReadError) -> StreamError {
    match e {
        ReadError::Reset(code) => StreamError::Reset(code),
        other => StreamError::Transport(other.to_string()),
    }
}

/// Writes one encoded message.
pub async fn write(send: &mut SendStream, bytes: &[u8]) -> Result<(), StreamError> {
    send.write_all(bytes).await.map_err(|e| StreamError::Transport(e.to_string()))
}

/// Writes one response message, in the stream's draft.
pub async fn reply(send: &mut SendStream, r: Response) -> Result<(), StreamError> {
    let bytes = r.encode_as(send.version());
    write(send, &bytes).await
}

/// Writes one request-initiating message, in the stream's draft.
pub async fn request(send: &mut SendStream, msg: &crate::wire::message::Message) -> Result<(), StreamError> {
    let bytes = crate::wire::control::encode_request_as(msg, send.version())?;
    write(send, &bytes).await
}
