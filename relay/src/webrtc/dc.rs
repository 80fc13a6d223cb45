//! The session's side of a WebRTC peer (docs/design/webrtc.md §2.2, §2.4):
//! [`DcSession`], [`DcSend`] and [`DcRecv`] behind `Conn::Rtc`,
//! `SendStream::Rtc` and `RecvStream::Rtc` (`session/transport.rs`), so that
//! `session::run` serves a browser on data channels exactly as it serves a
//! QUIC peer.
//!
//! They hold no str0m state: every operation is a [`Command`] to the peer
//! task (`peer.rs`), which owns the `Rtc` and the moq-dc/1 machine
//! (`streams.rs`) and answers through oneshots and queues.
//! - Writes are acknowledged once the bytes are queued and the channel's
//!   queue is below [`WRITE_HIGH`]: that is the backpressure a QUIC stream's
//!   flow control gives (the session's outbound queue keeps dropping the
//!   oldest data of slow subscribers, as on QUIC).
//! - Reads come from an unbounded per-channel queue: str0m has no receive
//!   backpressure (SCTP's window is its own), so the peer task counts
//!   delivered-but-unread bytes against a per-peer budget
//!   (`streams::RECV_BUDGET`) and the session breaks a peer that floods it.
//!   Every byte is reported back ([`Command::Consumed`]) when read or
//!   discarded, so the budget measures only what is really held.
//! - Dropping a handle does what dropping a quinn stream does: an unfinished
//!   send is finished, an unfinished receive is stopped (code 0).

use super::streams::{ChannelId, LocalError};
use crate::session::transport::{ReadError, TransportError};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// A write is acknowledged while its channel has at most this much queued.
pub const WRITE_HIGH: usize = 256 << 10;
/// Datagrams queued each way before new ones are dropped (as QUIC's
/// datagram buffers drop).
pub const DATAGRAMS: usize = 1024;
/// How long opening a stream may take (one DCEP round trip, RFC 8832 §6).
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the session asks of the peer task.
#[derive(Debug)]
pub enum Command {
    /// Open a `moq-bi` (`bi`) or `moq-uni` channel of ours.
    Open {
        bi: bool,
        reply: oneshot::Sender<Opened>,
    },
    Write {
        id: ChannelId,
        bytes: Bytes,
        ack: oneshot::Sender<Result<(), LocalError>>,
    },
    Finish {
        id: ChannelId,
    },
    Reset {
        id: ChannelId,
        code: u32,
    },
    Stop {
        id: ChannelId,
        code: u32,
    },
    /// The session read or discarded this many delivered bytes.
    Consumed(usize),
    /// Close the session (§3.5): `{"t":"close"}` on `moq-gw`, then the PeerConnection.
    Close {
        code: u32,
        reason: String,
    },
}

/// A stream of ours, once its channel is open.
pub type Opened = (DcSend, Option<DcRecv>);

/// One event of the peer's direction of a stream.
#[derive(Debug)]
pub enum Item {
    Data(Bytes),
    Fin,
    Reset(u32),
}

#[derive(Debug)]
struct Shared {
    cmd: mpsc::UnboundedSender<Command>,
    dgram_out: mpsc::Sender<Bytes>,
    uni: Mutex<mpsc::UnboundedReceiver<DcRecv>>,
    bi: Mutex<mpsc::UnboundedReceiver<(DcSend, DcRecv)>>,
    dgram_in: Mutex<mpsc::Receiver<Bytes>>,
    /// The address the browser's POST came from: who the session is, for
    /// the loopback-only rule (`session::admit`) and logs.
    remote: SocketAddr,
    timed_out: Arc<AtomicBool>,
}

/// A browser's MoQ session on the gateway: `Conn::Rtc`. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DcSession(Arc<Shared>);

/// The peer task's ends of a [`DcSession`].
#[derive(Debug)]
pub struct PeerEnds {
    pub cmd: mpsc::UnboundedReceiver<Command>,
    /// Makes stream handles without keeping the session alive: the peer task
    /// ends when the session and all its handles are gone.
    pub cmd_tx: mpsc::WeakUnboundedSender<Command>,
    pub dgram_out: mpsc::Receiver<Bytes>,
    pub uni: mpsc::UnboundedSender<DcRecv>,
    pub bi: mpsc::UnboundedSender<(DcSend, DcRecv)>,
    /// The session's datagram inbox: `moq-dgram` and audio ingress feed it.
    pub dgram_in: mpsc::Sender<Bytes>,
    pub timed_out: Arc<AtomicBool>,
}

/// A new session and the peer task's ends of it.
pub fn pair(remote: SocketAddr) -> (DcSession, PeerEnds) {
    let (cmd_tx, cmd) = mpsc::unbounded_channel();
    let (dgram_out_tx, dgram_out) = mpsc::channel(DATAGRAMS);
    let (uni_tx, uni) = mpsc::unbounded_channel();
    let (bi_tx, bi) = mpsc::unbounded_channel();
    let (dgram_in_tx, dgram_in) = mpsc::channel(DATAGRAMS);
    let timed_out = Arc::new(AtomicBool::new(false));
    let ends = PeerEnds {
        cmd,
        cmd_tx: cmd_tx.downgrade(),
        dgram_out,
        uni: uni_tx,
        bi: bi_tx,
        dgram_in: dgram_in_tx,
        timed_out: timed_out.clone(),
    };
    let shared = Shared {
        cmd: cmd_tx,
        dgram_out: dgram_out_tx,
        uni: Mutex::new(uni),
        bi: Mutex::new(bi),
        dgram_in: Mutex::new(dgram_in),
        remote,
        timed_out,
    };
    (DcSession(Arc::new(shared)), ends)
}

fn gone() -> TransportError {
    TransportError::RtcGone
}

impl DcSession {
    pub async fn open_uni(&self) -> Result<DcSend, TransportError> {
        Ok(self.open(false).await?.0)
    }

    pub async fn open_bi(&self) -> Result<(DcSend, DcRecv), TransportError> {
        match self.open(true).await? {
            (send, Some(recv)) => Ok((send, recv)),
            _ => Err(gone()),
        }
    }

    async fn open(&self, bi: bool) -> Result<Opened, TransportError> {
        let (reply, rx) = oneshot::channel();
        self.0.cmd.send(Command::Open { bi, reply }).map_err(|_| gone())?;
        match tokio::time::timeout(OPEN_TIMEOUT, rx).await {
            Ok(Ok(opened)) => Ok(opened),
            Ok(Err(_)) => Err(gone()),
            Err(_) => Err(TransportError::Rtc(LocalError::Unknown)),
        }
    }

    /// The next stream the browser opened (cancel-safe).
    pub async fn accept_uni(&self) -> Result<DcRecv, TransportError> {
        std::future::poll_fn(|cx| lock(&self.0.uni).poll_recv(cx)).await.ok_or_else(gone)
    }

    pub async fn accept_bi(&self) -> Result<(DcSend, DcRecv), TransportError> {
        std::future::poll_fn(|cx| lock(&self.0.bi).poll_recv(cx)).await.ok_or_else(gone)
    }

    /// The next datagram, from `moq-dgram` or the RTP ingress (cancel-safe:
    /// nothing is taken unless it is returned).
    pub async fn read_datagram(&self) -> Result<Bytes, TransportError> {
        std::future::poll_fn(|cx| match lock(&self.0.dgram_in).poll_recv(cx) {
            Poll::Ready(d) => Poll::Ready(d.ok_or_else(gone)),
            Poll::Pending => Poll::Pending,
        })
        .await
    }

    /// One datagram for the browser: RTP if it is on the alias bound with
    /// `audio-in`, else `moq-dgram` (the peer task decides). Dropped when
    /// the queue is full, as a QUIC datagram would be.
    pub fn send_datagram(&self, d: Bytes) -> Result<(), TransportError> {
        match self.0.dgram_out.try_send(d) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(gone()),
        }
    }

    pub fn close(&self, code: u32, reason: &str) {
        let _ = self.0.cmd.send(Command::Close { code, reason: reason.to_owned() });
    }

    pub fn remote_address(&self) -> SocketAddr {
        self.0.remote
    }

    /// The browser went silent: ICE lost it (consent freshness, RFC 7675).
    pub fn timed_out(&self) -> bool {
        self.0.timed_out.load(Ordering::Relaxed)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Our direction of a stream channel.
#[derive(Debug)]
pub struct DcSend {
    id: ChannelId,
    cmd: mpsc::UnboundedSender<Command>,
    /// Finished or reset by us: nothing to do on drop.
    done: bool,
}

impl DcSend {
    pub fn new(id: ChannelId, cmd: mpsc::UnboundedSender<Command>) -> Self {
        Self { id, cmd, done: false }
    }

    pub async fn write_all(&mut self, buf: &[u8]) -> Result<(), TransportError> {
        self.write_chunk(Bytes::copy_from_slice(buf)).await
    }

    /// Queues `bytes` on the channel; returns once the channel's queue is short.
    pub async fn write_chunk(&mut self, bytes: Bytes) -> Result<(), TransportError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let (ack, rx) = oneshot::channel();
        self.cmd.send(Command::Write { id: self.id, bytes, ack }).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?.map_err(TransportError::Rtc)
    }

    pub fn finish(&mut self) -> Result<(), TransportError> {
        self.done = true;
        self.cmd.send(Command::Finish { id: self.id }).map_err(|_| gone())
    }

    pub fn reset(&mut self, code: u32) -> Result<(), TransportError> {
        self.done = true;
        self.cmd.send(Command::Reset { id: self.id, code }).map_err(|_| gone())
    }
}

impl Drop for DcSend {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.cmd.send(Command::Finish { id: self.id });
        }
    }
}

/// The peer's direction of a stream channel.
#[derive(Debug)]
pub struct DcRecv {
    id: ChannelId,
    cmd: mpsc::UnboundedSender<Command>,
    items: mpsc::UnboundedReceiver<Item>,
    /// Delivered by the peer task, not yet returned (a message larger than
    /// the reader asked for).
    pending: Bytes,
    /// `fin` was read (`Some(None)`), or a reset (`Some(Some(code))`), or we
    /// stopped it / its channel went (`Some(Some(0))` without a reset).
    end: Option<Option<u32>>,
}

impl DcRecv {
    pub fn new(id: ChannelId, cmd: mpsc::UnboundedSender<Command>, items: mpsc::UnboundedReceiver<Item>) -> Self {
        Self { id, cmd, items, pending: Bytes::new(), end: None }
    }

    /// The next bytes, at most `max`; `None` after `fin`.
    pub async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, ReadError> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(max.max(1));
                let out = self.pending.split_to(n);
                let _ = self.cmd.send(Command::Consumed(n));
                return Ok(Some(out));
            }
            match self.end {
                Some(None) => return Ok(None),
                Some(Some(code)) => return Err(ReadError::Reset(code)),
                None => {}
            }
            match self.items.recv().await {
                Some(Item::Data(b)) => self.pending = b,
                Some(Item::Fin) => self.end = Some(None),
                Some(Item::Reset(code)) => self.end = Some(Some(code)),
                // The channel or the whole peer connection went.
                None => return Err(ReadError::Closed(TransportError::StreamClosed)),
            }
        }
    }

    /// `stop <code>` (STOP_SENDING): what is queued is discarded.
    pub fn stop(&mut self, code: u32) -> Result<(), TransportError> {
        if self.end.is_some() {
            return Err(TransportError::StreamClosed);
        }
        self.end = Some(Some(0));
        self.discard();
        self.cmd.send(Command::Stop { id: self.id, code }).map_err(|_| gone())
    }

    /// Hands back the budget of everything delivered and never to be read.
    fn discard(&mut self) {
        self.items.close();
        let mut n = std::mem::take(&mut self.pending).len();
        while let Ok(item) = self.items.try_recv() {
            if let Item::Data(b) = item {
                n += b.len();
            }
        }
        if n > 0 {
            let _ = self.cmd.send(Command::Consumed(n));
        }
    }
}

impl Drop for DcRecv {
    fn drop(&mut self) {
        if self.end.is_none() {
            let _ = self.cmd.send(Command::Stop { id: self.id, code: 0 });
        }
        self.discard();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_split_messages_and_report_every_byte() {
        let (cmd, mut cmds) = mpsc::unbounded_channel();
        let (tx, items) = mpsc::unbounded_channel();
        let mut r = DcRecv::new(3, cmd, items);
        tx.send(Item::Data(Bytes::from_static(b"abcdef"))).unwrap();
        tx.send(Item::Data(Bytes::from_static(b"gh"))).unwrap();
        tx.send(Item::Fin).unwrap();
        assert_eq!(r.read_chunk(4).await.unwrap().unwrap(), "abcd");
        assert_eq!(r.read_chunk(4).await.unwrap().unwrap(), "ef");
        assert_eq!(r.read_chunk(4).await.unwrap().unwrap(), "gh");
        assert_eq!(r.read_chunk(4).await.unwrap(), None);
        assert_eq!(r.read_chunk(4).await.unwrap(), None, "fin stays read");
        drop(r);
        let got: Vec<_> = std::iter::from_fn(|| cmds.try_recv().ok()).collect();
        let consumed: usize = got.iter().map(|c| if let Command::Consumed(n) = c { *n } else { 0 }).sum();
        assert_eq!(consumed, 8);
        assert!(!got.iter().any(|c| matches!(c, Command::Stop { .. })), "a finished stream is not stopped");
    }

    #[tokio::test]
    async fn dropping_unread_data_returns_its_budget_and_stops() {
        let (cmd, mut cmds) = mpsc::unbounded_channel();
        let (tx, items) = mpsc::unbounded_channel();
        let mut r = DcRecv::new(5, cmd, items);
        tx.send(Item::Data(Bytes::from_static(b"0123456789"))).unwrap();
        assert_eq!(r.read_chunk(3).await.unwrap().unwrap(), "012");
        tx.send(Item::Data(Bytes::from_static(b"xyz"))).unwrap();
        drop(r);
        assert!(tx.send(Item::Data(Bytes::from_static(b"late"))).is_err(), "closed: the peer task counts it");
        let got: Vec<_> = std::iter::from_fn(|| cmds.try_recv().ok()).collect();
        let consumed: usize = got.iter().map(|c| if let Command::Consumed(n) = c { *n } else { 0 }).sum();
        assert_eq!(consumed, 13);
        assert!(got.iter().any(|c| matches!(c, Command::Stop { id: 5, code: 0 })));
    }

    #[tokio::test]
    async fn a_reset_reads_as_reset_and_a_lost_peer_as_closed() {
        let (cmd, _cmds) = mpsc::unbounded_channel();
        let (tx, items) = mpsc::unbounded_channel();
        let mut r = DcRecv::new(1, cmd.clone(), items);
        tx.send(Item::Reset(7)).unwrap();
        assert!(matches!(r.read_chunk(9).await, Err(ReadError::Reset(7))));
        let (tx, items) = mpsc::unbounded_channel();
        let mut r = DcRecv::new(2, cmd, items);
        drop(tx);
        assert!(matches!(r.read_chunk(9).await, Err(ReadError::Closed(_))));
    }

    #[tokio::test]
    async fn dropped_send_finishes_and_a_closed_session_fails_writes() {
        let (session, ends) = pair("127.0.0.1:9".parse().unwrap());
        let cmd_tx = ends.cmd_tx.upgrade().unwrap();
        let mut cmds = ends.cmd;
        let s = DcSend::new(4, cmd_tx.clone());
        drop(s);
        assert!(matches!(cmds.try_recv(), Ok(Command::Finish { id: 4 })));
        session.send_datagram(Bytes::from_static(b"d")).unwrap();
        drop(cmds);
        let mut s = DcSend::new(6, cmd_tx);
        assert!(matches!(s.write_chunk(Bytes::from_static(b"x")).await, Err(TransportError::RtcGone)));
        assert!(session.open_uni().await.is_err());
        assert_eq!(session.remote_address().port(), 9);
    }
}
