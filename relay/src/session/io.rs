//! Thin async helpers over a session's streams ([`super::transport`]): read
//! framed control messages (§10) and write whole frames.

use super::transport::{ReadError, RecvStream, SendStream};
use crate::wire::control::{take_frame, Frame, Response};
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
    #[error("protocol violation: {0}")]
    Wire(#[from] WireError),
    #[error("transport: {0}")]
    Transport(String),
}

/// Reads control messages from a stream. Each message is at most 64 KiB plus
/// one read chunk, which bounds memory per stream.
pub struct FrameReader {
    recv: RecvStream,
    buf: BytesMut,
}

impl FrameReader {
    pub fn new(recv: RecvStream) -> Self {
        Self { recv, buf: BytesMut::new() }
    }

    /// Wraps a stream whose first bytes were already read.
    pub fn with_buffer(recv: RecvStream, buf: BytesMut) -> Self {
        Self { recv, buf }
    }

    /// Next frame, or `StreamError::Closed` at a clean FIN between frames.
    pub async fn next(&mut self) -> Result<Frame, StreamError> {
        self.next_if(|_| true).await
    }

    /// Like [`Self::next`], but fails as soon as the message type is known
    /// and not `allowed`, without waiting for a payload that may never come.
    pub async fn next_if(&mut self, allowed: impl Fn(u64) -> bool) -> Result<Frame, StreamError> {
        loop {
            if let Some((kind, _)) = crate::wire::varint::read(&self.buf) {
                if !allowed(kind) {
                    return Err(StreamError::Wire(WireError::InvalidType(kind)));
                }
            }
            if let Some(f) = take_frame(&mut self.buf)? {
                return Ok(f);
            }
            match self.recv.read_chunk(64 * 1024).await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk),
                Ok(None) if self.buf.is_empty() => return Err(StreamError::Closed),
                Ok(None) => return Err(StreamError::Wire(WireError::Truncated)),
                Err(e) => return Err(read_error(e)),
            }
        }
    }

    pub async fn next_within(&mut self, t: Duration) -> Result<Frame, StreamError> {
        tokio::time::timeout(t, self.next()).await.map_err(|_| StreamError::Timeout)?
    }

    pub fn stop(&mut self, code: u32) {
        let _ = self.recv.stop(code);
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

/// Writes one response message.
pub async fn reply(send: &mut SendStream, r: Response) -> Result<(), StreamError> {
    write(send, &r.encode()).await
}
