//! The transport under a session: the connection and its streams, as the rest
//! of `session/` sees them — exactly the operations it uses, nothing more.
//!
//! Two transports: web-transport-quinn (WebTransport or raw QUIC,
//! draft-ietf-moq-transport-18 §3.1), and a browser whose MoQ streams ride
//! WebRTC data channels through the relay's gateway (issue 14,
//! docs/design/webrtc.md §2.2–2.3; `crate::webrtc::dc`). Each type here is an
//! enum with a `Quic` and an `Rtc` variant, and `session/` runs unchanged over
//! either.
//!
//! Why enums and not a trait or generics:
//! - `web_transport_trait::Session`'s methods return `impl Future`, so it is
//!   not object-safe: no `Box<dyn Session>` in the relay's session map.
//! - A generic `SessionHandle<S>` would spread into `Relay`, whose one session
//!   map holds both kinds, and whose upstream subscriptions run on *another*
//!   session's handle (`upstream.rs`), of whichever kind the publisher is.
//! - An enum is static dispatch: one `match` per call, inlined, so the QUIC
//!   path costs what calling web-transport-quinn directly does.
//!
//! Errors are transport-neutral too: the only one `session/` tells apart is a
//! reset stream ([`ReadError::Reset`], whose code it forwards); everything else
//! means "this stream or session is gone" and is only logged.

use crate::routing::track::DatagramSink;
use crate::webrtc::dc::{DcRecv, DcSend, DcSession};
use bytes::Bytes;
use moq_wire::Version;
use std::net::SocketAddr;

/// Which kind of peer-opened stream: request streams are bidirectional, data
/// and control streams unidirectional (§3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Bi = 0,
    Uni = 1,
}

/// A transport operation failed: the session is closed, or the stream was
/// stopped, reset or already finished. For logs; nothing branches on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error(transparent)]
    QuicSession(#[from] web_transport_quinn::SessionError),
    #[error(transparent)]
    QuicWrite(#[from] web_transport_quinn::WriteError),
    #[error(transparent)]
    QuicRead(web_transport_quinn::ReadError),
    #[error("stream already closed")]
    StreamClosed,
    #[error("WebRTC data channel: {0}")]
    Rtc(crate::webrtc::streams::LocalError),
    #[error("the WebRTC peer connection is gone")]
    RtcGone,
}

impl From<web_transport_quinn::ClosedStream> for TransportError {
    #[inline]
    fn from(_: web_transport_quinn::ClosedStream) -> Self {
        Self::StreamClosed
    }
}

/// Why reading a stream failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    /// The peer reset the stream with this application error code.
    #[error("peer reset the stream (code {0})")]
    Reset(u32),
    /// The stream or the session is gone for another reason.
    #[error(transparent)]
    Closed(TransportError),
}

impl From<web_transport_quinn::ReadError> for ReadError {
    #[inline]
    fn from(e: web_transport_quinn::ReadError) -> Self {
        match e {
            web_transport_quinn::ReadError::Reset(code) => Self::Reset(code),
            other => Self::Closed(TransportError::QuicRead(other)),
        }
    }
}

/// One MoQT session's connection. Cheap to clone: every clone is the same
/// connection.
///
/// It carries the negotiated draft [`Version`], and so does every stream it
/// opens or accepts: the control messages read and written on a stream are
/// that draft's (`io::FrameReader`, `io::reply`).
#[derive(Clone, Debug)]
pub struct Conn {
    kind: ConnKind,
    version: Version,
}

#[derive(Clone, Debug)]
// A session's Conn is made once and cloned a few times; boxing the QUIC
// session would put a pointer chase on every datagram sent on the hot path.
#[allow(clippy::large_enum_variant)]
enum ConnKind {
    /// WebTransport over HTTP/3, or raw QUIC with ALPN `moqt-NN`.
    Quic(web_transport_quinn::Session),
    /// A browser on the WebRTC gateway: streams are data channels ("moq-dc/1").
    Rtc(DcSession),
}

impl Conn {
    /// WebTransport or raw QUIC, speaking `version`.
    pub fn quic(session: web_transport_quinn::Session, version: Version) -> Self {
        Self { kind: ConnKind::Quic(session), version }
    }

    /// A browser on the WebRTC gateway, whose "moq-dc/1" carries draft-18.
    pub fn rtc(session: DcSession) -> Self {
        Self { kind: ConnKind::Rtc(session), version: Version::Draft18 }
    }

    /// Resolves when the session has closed, by either side or the network.
    /// The gateway's sessions are draft-18, where nothing waits on this.
    pub async fn closed(&self) {
        match &self.kind {
            ConnKind::Quic(s) => {
                s.closed().await;
            }
            ConnKind::Rtc(_) => std::future::pending().await,
        }
    }

    /// The draft negotiated for this session.
    pub fn version(&self) -> Version {
        self.version
    }

    #[inline]
    pub async fn open_uni(&self) -> Result<SendStream, TransportError> {
        match &self.kind {
            ConnKind::Quic(s) => Ok(SendStream::new(SendKind::Quic(s.open_uni().await?), self.version)),
            ConnKind::Rtc(s) => Ok(SendStream::new(SendKind::Rtc(s.open_uni().await?), self.version)),
        }
    }

    #[inline]
    pub async fn open_bi(&self) -> Result<(SendStream, RecvStream), TransportError> {
        match &self.kind {
            ConnKind::Quic(s) => {
                let (send, recv) = s.open_bi().await?;
                Ok((SendStream::new(SendKind::Quic(send), self.version), RecvStream::new(RecvKind::Quic(recv), self.version)))
            }
            ConnKind::Rtc(s) => {
                let (send, recv) = s.open_bi().await?;
                Ok((SendStream::new(SendKind::Rtc(send), self.version), RecvStream::new(RecvKind::Rtc(recv), self.version)))
            }
        }
    }

    #[inline]
    pub async fn accept_uni(&self) -> Result<RecvStream, TransportError> {
        match &self.kind {
            ConnKind::Quic(s) => Ok(RecvStream::new(RecvKind::Quic(s.accept_uni().await?), self.version)),
            ConnKind::Rtc(s) => Ok(RecvStream::new(RecvKind::Rtc(s.accept_uni().await?), self.version)),
        }
    }

    #[inline]
    pub async fn accept_bi(&self) -> Result<(SendStream, RecvStream), TransportError> {
        match &self.kind {
            ConnKind::Quic(s) => {
                let (send, recv) = s.accept_bi().await?;
                Ok((SendStream::new(SendKind::Quic(send), self.version), RecvStream::new(RecvKind::Quic(recv), self.version)))
            }
            ConnKind::Rtc(s) => {
                let (send, recv) = s.accept_bi().await?;
                Ok((SendStream::new(SendKind::Rtc(send), self.version), RecvStream::new(RecvKind::Rtc(recv), self.version)))
            }
        }
    }

    /// The next datagram (§11.3). Must be cancel-safe, as quinn's is:
    /// `data::datagrams` polls it once and drops it when none is waiting.
    #[inline]
    pub async fn read_datagram(&self) -> Result<Bytes, TransportError> {
        match &self.kind {
            ConnKind::Quic(s) => Ok(s.read_datagram().await?),
            ConnKind::Rtc(s) => s.read_datagram().await,
        }
    }

    /// Sends a datagram without waiting; one larger than the path allows fails.
    #[inline]
    pub fn send_datagram(&self, datagram: Bytes) -> Result<(), TransportError> {
        match &self.kind {
            ConnKind::Quic(s) => Ok(s.send_datagram(datagram)?),
            ConnKind::Rtc(s) => s.send_datagram(datagram),
        }
    }

    /// Closes the whole session with a §3.5 code and a reason for the peer.
    #[inline]
    pub fn close(&self, code: u32, reason: &str) {
        match &self.kind {
            ConnKind::Quic(s) => s.close(code, reason.as_bytes()),
            ConnKind::Rtc(s) => s.close(code, reason),
        }
    }

    /// Native QUIC (ALPN `moqt-18`, §3.1.4), where SETUP carries the URI's
    /// PATH and AUTHORITY; not WebTransport (whose CONNECT carried them) nor
    /// the WebRTC gateway.
    pub fn is_native_quic(&self) -> bool {
        match &self.kind {
            ConnKind::Quic(s) => s.request().is_none(),
            ConnKind::Rtc(_) => false,
        }
    }

    /// The peer's address as the relay sees it.
    #[inline]
    pub fn remote_address(&self) -> SocketAddr {
        match &self.kind {
            ConnKind::Quic(s) => s.remote_address(),
            ConnKind::Rtc(s) => s.remote_address(),
        }
    }

    /// Whether the connection ended because the peer went silent for the
    /// idle timeout (RFC 9000 §10.1), not by a close from either side.
    pub fn timed_out(&self) -> bool {
        match &self.kind {
            ConnKind::Quic(s) => matches!(quinn::Connection::close_reason(s), Some(quinn::ConnectionError::TimedOut)),
            ConnKind::Rtc(s) => s.timed_out(),
        }
    }

    /// Lets the peer have up to `n` streams of `dir` open at once (QUIC
    /// MAX_STREAMS, RFC 9000 §4.6; see `credit.rs` for when it grows). A
    /// limit beyond QUIC's range is not a limit anyone can reach: ignored.
    /// Data channels have no such credit: the gateway caps the browser's
    /// open streams itself (`webrtc::streams::MAX_PEER_STREAMS`).
    #[inline]
    pub fn grant_streams(&self, dir: Dir, n: u64) {
        match &self.kind {
            ConnKind::Quic(s) => {
                let Ok(n) = quinn::VarInt::from_u64(n) else { return };
                match dir {
                    Dir::Bi => s.set_max_concurrent_bi_streams(n),
                    Dir::Uni => s.set_max_concurrent_uni_streams(n),
                }
            }
            ConnKind::Rtc(_) => {}
        }
    }
}

impl DatagramSink for Conn {
    #[inline]
    fn send(&self, datagram: Bytes) {
        // Datagrams larger than the path allows are dropped (§11.3).
        match &self.kind {
            ConnKind::Quic(s) => {
                let _ = s.send_datagram(datagram);
            }
            ConnKind::Rtc(s) => {
                let _ = s.send_datagram(datagram);
            }
        }
    }
}

/// The sending half of a stream, and the draft its messages are written in.
#[derive(Debug)]
pub struct SendStream {
    kind: SendKind,
    version: Version,
}

#[derive(Debug)]
enum SendKind {
    Quic(web_transport_quinn::SendStream),
    Rtc(DcSend),
}

impl SendStream {
    fn new(kind: SendKind, version: Version) -> Self {
        Self { kind, version }
    }

    /// The session's draft: how control messages on this stream are written.
    pub fn version(&self) -> Version {
        self.version
    }

    #[inline]
    pub async fn write_all(&mut self, buf: &[u8]) -> Result<(), TransportError> {
        match &mut self.kind {
            SendKind::Quic(s) => Ok(s.write_all(buf).await?),
            SendKind::Rtc(s) => s.write_all(buf).await,
        }
    }

    /// Writes `buf` without copying it.
    #[inline]
    pub async fn write_chunk(&mut self, buf: Bytes) -> Result<(), TransportError> {
        match &mut self.kind {
            SendKind::Quic(s) => Ok(s.write_chunk(buf).await?),
            SendKind::Rtc(s) => s.write_chunk(buf).await,
        }
    }

    /// Ends the stream cleanly (FIN) once everything written is delivered.
    #[inline]
    pub fn finish(&mut self) -> Result<(), TransportError> {
        match &mut self.kind {
            SendKind::Quic(s) => Ok(s.finish()?),
            SendKind::Rtc(s) => s.finish(),
        }
    }

    /// Abandons the stream with an application error code (RESET_STREAM).
    #[inline]
    pub fn reset(&mut self, code: u32) -> Result<(), TransportError> {
        match &mut self.kind {
            SendKind::Quic(s) => Ok(s.reset(code)?),
            SendKind::Rtc(s) => s.reset(code),
        }
    }

    /// Send order against the session's other streams: higher goes first.
    /// Data channels are served round-robin (`webrtc::streams`); audio, the
    /// traffic that needs priority, rides RTP there.
    #[inline]
    pub fn set_priority(&self, order: i32) -> Result<(), TransportError> {
        match &self.kind {
            SendKind::Quic(s) => Ok(s.set_priority(order)?),
            SendKind::Rtc(_) => Ok(()),
        }
    }
}

/// The receiving half of a stream, and the draft its messages are read in.
#[derive(Debug)]
pub struct RecvStream {
    kind: RecvKind,
    version: Version,
}

#[derive(Debug)]
enum RecvKind {
    Quic(web_transport_quinn::RecvStream),
    Rtc(DcRecv),
}

impl RecvStream {
    fn new(kind: RecvKind, version: Version) -> Self {
        Self { kind, version }
    }

    /// The session's draft: how control messages on this stream are read.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The next bytes in order, at most `max` of them; `None` at the end of
    /// the stream (FIN). `session/` reads every stream in order.
    #[inline]
    pub async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, ReadError> {
        match &mut self.kind {
            RecvKind::Quic(s) => Ok(s.read_chunk(max, true).await?.map(|c| c.bytes)),
            RecvKind::Rtc(s) => s.read_chunk(max).await,
        }
    }

    /// Asks the peer to stop sending (STOP_SENDING) with an application error code.
    #[inline]
    pub fn stop(&mut self, code: u32) -> Result<(), TransportError> {
        match &mut self.kind {
            RecvKind::Quic(s) => Ok(s.stop(code).map_err(|_| TransportError::StreamClosed)?),
            RecvKind::Rtc(s) => s.stop(code),
        }
    }
}
