//! "moq-dc/1": MoQ streams and datagrams over WebRTC data channels
//! (docs/design/webrtc.md §2.3), as a sans-IO state machine for one peer
//! connection. No str0m types, no tokio, no clock: the shell (`peer.rs`,
//! `dc.rs`) feeds it what str0m reported and carries out the [`Output`]s.
//! The TypeScript copy (`webapp/src/session/rtc_stream.ts`) runs the same
//! vectors, `docs/vectors/datachannel.json`.
//!
//! The protocol, in short:
//! - Every channel has protocol `moqt-18` (RFC 8831 §6.4 "Protocol"; carried by
//!   DCEP, RFC 8832 §5.1). Labels: `moq-gw` (gateway control, JSON text, see
//!   [`GwMessage`]), `moq-dgram` (one binary message = one OBJECT_DATAGRAM,
//!   draft-ietf-moq-transport-18 §11.3.1), `moq-uni` / `moq-bi` (one MoQ stream
//!   each, §3.3, opened by whichever side opens the stream). Anything else is
//!   closed at once — a channel, not the session, is the unit of "unknown".
//! - On a stream channel a binary message is the next bytes (≤ [`MAX_MESSAGE`]);
//!   a text message is a signal: `fin`, `reset <code>` for the sender's own
//!   direction, `stop <code>` from the receiver (QUIC's FIN, RESET_STREAM and
//!   STOP_SENDING, RFC 9000 §3; codes as WebTransport's u32 stream error codes,
//!   §3.3.3 of the draft). On `moq-uni` only the opener sends data, `fin` and
//!   `reset`, only the acceptor `stop`.
//! - A side closes the channel (an SCTP stream reset, RFC 8831 §6.7) once its
//!   own direction ended and it saw the peer's end (a `stop` it sent counts as
//!   the peer's end). A channel closed under an open direction counts as
//!   `reset 0` for it.
//! - Garbage — a bad signal, data after `fin`, data or `fin` from the side that
//!   does not send, a message over 16 KiB, undecodable `moq-gw` JSON, more
//!   unread bytes than the receive budget — is a session PROTOCOL_VIOLATION
//!   (§3.5), as a malformed QUIC stream would be. After it, the machine is dead
//!   but for `moq-gw`, which carries the reason to the page.
//!
//! Writes are queued per channel in ≤ 16 KiB pieces and handed out round-robin
//! ([`Output::Send`]), one message per channel per turn, so one bulky stream
//! cannot hold up the others: sctp-proto has no I-DATA interleaving (RFC 8260),
//! so one big message blocks the whole association. str0m's `Channel::write`
//! is all or nothing against an association-wide buffer; when it refuses, the
//! shell hands the message back ([`Streams::refused`]) and no more writes are
//! offered until [`Streams::writable`] (str0m's `ChannelBufferedAmountLow`).

use super::signals::{clip, Signal};
pub use super::signals::{GwMessage, Kind, Message, Opener};
use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};

/// The shell's name for a channel (str0m's `ChannelId` is opaque, so the shell
/// numbers channels itself; numbers are never reused within a session).
pub type ChannelId = u64;

/// The data channel protocol of every moq-dc/1 channel.
pub const PROTOCOL: &str = "moqt-18";
/// Largest message either way: below str0m's 64 KiB default and Chromium's
/// 256 KiB `max-message-size` (RFC 8841 §6), and small so that a large object
/// does not hold up every other channel (no I-DATA).
pub const MAX_MESSAGE: usize = 16 * 1024;
/// Bytes delivered to the session and not yet read, per peer: str0m has no
/// receive-side backpressure, so a peer that sends faster than the session
/// reads is cut off instead of growing memory.
pub const RECV_BUDGET: usize = 4 << 20;
/// Stream channels the peer may have open at once (a phone needs tens; the
/// relay's QUIC credit grows to 1024 bidi, `session/credit.rs`).
pub const MAX_PEER_STREAMS: usize = 256;
/// Channels we closed that str0m has not reported closed, kept at most (the
/// oldest are forgotten first; Chromium has at most 1023 channels anyway).
const MAX_CLOSING: usize = 1024;

/// What the shell must do or tell the session, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A channel is usable. `Them` + `Uni`/`Bi`: a stream to accept.
    Opened { id: ChannelId, kind: Kind, by: Opener },
    /// The next bytes of the peer's direction of stream `id`. Counted against
    /// the receive budget until the shell reports them [`Streams::consumed`].
    Data { id: ChannelId, bytes: Bytes },
    /// The peer finished its direction of stream `id`.
    Fin { id: ChannelId },
    /// The peer reset its direction of stream `id` (or closed the channel
    /// under it: code 0).
    Reset { id: ChannelId, code: u32 },
    /// The peer asked us to stop sending on `id` (or closed the channel: code
    /// 0). Our direction is over; `reset <code>` is already queued, as QUIC
    /// answers STOP_SENDING with RESET_STREAM (RFC 9000 §3.5).
    Stopped { id: ChannelId, code: u32 },
    /// One OBJECT_DATAGRAM from `moq-dgram`.
    Datagram(Bytes),
    /// One `moq-gw` message.
    Gateway(GwMessage),
    /// The peer closed channel `id`; it is forgotten.
    Closed { id: ChannelId },
    /// Write this message to channel `id` (`Channel::write`). If the channel
    /// will not take it now, give it back with [`Streams::refused`].
    Send { id: ChannelId, msg: Message },
    /// Close channel `id` (after everything sent before). Local requests on
    /// it fail from now on; what the peer still sends is judged (data after
    /// its `fin` is a violation) until str0m reports it [`Streams::closed`].
    Close { id: ChannelId },
    /// Close the session with PROTOCOL_VIOLATION (§3.5); the reason is for logs.
    Violation(String),
}

/// A local request the state does not allow: a shell bug or a race with the
/// peer, reported as a write error to the session, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LocalError {
    #[error("no such data channel")]
    Unknown,
    #[error("this side does not send (or receive) on that channel")]
    Direction,
    #[error("the stream direction has ended")]
    Ended,
    #[error("the session is closed")]
    Closed,
}

/// The peer's direction of a stream channel, as we receive it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recv {
    /// The peer does not send here (we opened a `moq-uni`, or not a stream).
    None,
    Open,
    Fin,
    Reset,
    /// We sent `stop`: what still arrives is dropped.
    Stopped,
}

/// Our direction of a stream channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Send {
    None,
    Open,
    Ended,
}

#[derive(Debug)]
enum Pending {
    Msg(Message),
    Close,
}

#[derive(Debug)]
struct Channel {
    kind: Kind,
    by: Opener,
    send: Send,
    recv: Recv,
    queue: VecDeque<Pending>,
    /// Binary bytes in `queue`.
    queued: usize,
    /// In `Streams::ready` (exactly when `queue` is not empty).
    ready: bool,
    /// `Pending::Close` is queued.
    closing: bool,
    /// We closed it and str0m has not confirmed yet: kept (without a queue)
    /// so that what the peer still sends is judged — data after `fin` is a
    /// violation, data after our `stop` is dropped.
    closed: bool,
}

/// Bounds of one peer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub recv_budget: usize,
    pub max_peer_streams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { recv_budget: RECV_BUDGET, max_peer_streams: MAX_PEER_STREAMS }
    }
}

/// The data channels of one peer connection.
#[derive(Debug)]
pub struct Streams {
    limits: Limits,
    channels: BTreeMap<ChannelId, Channel>,
    gw: Option<ChannelId>,
    dgram: Option<ChannelId>,
    peer_streams: usize,
    /// Delivered, not yet consumed.
    buffered: usize,
    events: VecDeque<Output>,
    /// Channels with something queued, in round-robin order.
    ready: VecDeque<ChannelId>,
    /// Channels we closed, oldest first (see `Channel::closed`).
    closing: VecDeque<ChannelId>,
    /// The transport refused a write; none offered until `writable`.
    blocked: bool,
    dead: bool,
}

impl Streams {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            channels: BTreeMap::new(),
            gw: None,
            dgram: None,
            peer_streams: 0,
            buffered: 0,
            events: VecDeque::new(),
            ready: VecDeque::new(),
            closing: VecDeque::new(),
            blocked: false,
            dead: false,
        }
    }

    /// str0m's `ChannelOpen` (ours or theirs). An unknown label or protocol,
    /// a second `moq-gw` / `moq-dgram`, or a peer stream over the cap: the
    /// channel is closed, the session goes on.
    pub fn opened(&mut self, id: ChannelId, label: &str, protocol: &str, by: Opener) {
        if self.dead {
            return;
        }
        if self.channels.contains_key(&id) {
            self.closed(id); // cannot happen with str0m; treat the old one as gone
        }
        let kind = Kind::from_label(label).filter(|_| protocol == PROTOCOL);
        let refuse = match kind {
            None => Some("unknown label or protocol"),
            Some(Kind::Gateway) if self.gw.is_some() => Some("a second moq-gw"),
            Some(Kind::Datagrams) if self.dgram.is_some() => Some("a second moq-dgram"),
            Some(Kind::Uni | Kind::Bi) if by == Opener::Them && self.peer_streams >= self.limits.max_peer_streams => {
                Some("too many peer streams")
            }
            _ => None,
        };
        let (Some(kind), None) = (kind, refuse) else {
            tracing::debug!(id, label, protocol, why = refuse.unwrap_or_default(), "data channel refused");
            self.events.push_back(Output::Close { id });
            return;
        };
        let (send, recv) = match (kind, by) {
            (Kind::Uni, Opener::Us) => (Send::Open, Recv::None),
            (Kind::Uni, Opener::Them) => (Send::None, Recv::Open),
            (Kind::Bi, _) => (Send::Open, Recv::Open),
            (Kind::Gateway | Kind::Datagrams, _) => (Send::None, Recv::None),
        };
        match kind {
            Kind::Gateway => self.gw = Some(id),
            Kind::Datagrams => self.dgram = Some(id),
            _ if by == Opener::Them => self.peer_streams += 1,
            _ => {}
        }
        let ch = Channel { kind, by, send, recv, queue: VecDeque::new(), queued: 0, ready: false, closing: false, closed: false };
        self.channels.insert(id, ch);
        self.events.push_back(Output::Opened { id, kind, by });
    }

    /// str0m's `ChannelData`. Messages on channels not (or no longer) known
    /// are dropped: they were refused, or crossed our close long ago.
    pub fn received(&mut self, id: ChannelId, msg: Message) {
        if self.dead {
            return;
        }
        let Some(ch) = self.channels.get_mut(&id) else { return };
        let kind = ch.kind;
        if msg.size() > MAX_MESSAGE {
            return self.violation(format!("{}-byte message on {}", msg.size(), kind.label()));
        }
        match (kind, msg) {
            (Kind::Datagrams, Message::Binary(b)) => self.events.push_back(Output::Datagram(b)),
            (Kind::Gateway, Message::Text(t)) => match GwMessage::parse(&t) {
                Some(m) => self.events.push_back(Output::Gateway(m)),
                None => self.violation(format!("bad moq-gw message {:?}", clip(&t))),
            },
            (Kind::Datagrams | Kind::Gateway, _) => self.violation(format!("wrong message type on {}", kind.label())),
            (_, Message::Binary(b)) => match ch.recv {
                Recv::Open if b.is_empty() => {}
                Recv::Open => {
                    self.buffered += b.len();
                    if self.buffered > self.limits.recv_budget {
                        return self.violation(format!("more than {} unread bytes", self.limits.recv_budget));
                    }
                    self.events.push_back(Output::Data { id, bytes: b });
                }
                Recv::Stopped => {}
                Recv::None => self.violation("data from the acceptor of a moq-uni".into()),
                Recv::Fin | Recv::Reset => self.violation("data after the end of a stream".into()),
            },
            (_, Message::Text(t)) => match Signal::parse(&t) {
                None => self.violation(format!("bad signal {:?}", clip(&t))),
                Some(s @ (Signal::Fin | Signal::Reset(_))) => {
                    let was = ch.recv;
                    ch.recv = if s == Signal::Fin { Recv::Fin } else { Recv::Reset };
                    match (was, s) {
                        (Recv::Open, Signal::Fin) => self.events.push_back(Output::Fin { id }),
                        (Recv::Open, Signal::Reset(code)) => self.events.push_back(Output::Reset { id, code }),
                        (Recv::Stopped, _) => {}
                        (Recv::None, _) => return self.violation("fin or reset from the acceptor of a moq-uni".into()),
                        _ => return self.violation("a second end of a stream".into()),
                    }
                    self.maybe_close(id);
                }
                Some(Signal::Stop(code)) => match ch.send {
                    Send::Open => {
                        self.events.push_back(Output::Stopped { id, code });
                        self.end_send(id, Signal::Reset(code));
                    }
                    Send::Ended => {} // crossed our fin or reset
                    Send::None => self.violation("stop from the opener of a moq-uni".into()),
                },
            },
        }
    }

    /// A text message on `id` that is not UTF-8 (RFC 8831 §6.6: the string
    /// PPID carries UTF-8): garbage like any other, if the channel is ours to
    /// judge; dropped like any message on a channel not (or no longer) known.
    pub fn received_bad_text(&mut self, id: ChannelId) {
        if !self.dead && self.channels.contains_key(&id) {
            self.violation("a text message that is not UTF-8".into());
        }
    }

    /// str0m's `ChannelClose`: the peer closed it (or the association did).
    pub fn closed(&mut self, id: ChannelId) {
        if self.dead {
            return;
        }
        let Some(ch) = self.forget(id) else { return };
        if ch.closed {
            return; // we closed it; the shell knows
        }
        if ch.recv == Recv::Open {
            self.events.push_back(Output::Reset { id, code: 0 });
        }
        if ch.send == Send::Open {
            self.events.push_back(Output::Stopped { id, code: 0 });
        }
        self.events.push_back(Output::Closed { id });
    }

    /// Queues `bytes` on our direction of stream `id`, in ≤ 16 KiB pieces.
    pub fn write(&mut self, id: ChannelId, bytes: Bytes) -> Result<(), LocalError> {
        self.sending(id)?;
        for at in (0..bytes.len()).step_by(MAX_MESSAGE) {
            self.enqueue(id, Pending::Msg(Message::Binary(bytes.slice(at..(at + MAX_MESSAGE).min(bytes.len())))));
        }
        Ok(())
    }

    /// Ends our direction of stream `id` after what is queued (`fin`).
    pub fn finish(&mut self, id: ChannelId) -> Result<(), LocalError> {
        self.sending(id)?;
        self.end_send(id, Signal::Fin);
        Ok(())
    }

    /// Abandons our direction of stream `id`: unsent bytes are dropped, `reset <code>`.
    pub fn reset(&mut self, id: ChannelId, code: u32) -> Result<(), LocalError> {
        self.sending(id)?;
        self.end_send(id, Signal::Reset(code));
        Ok(())
    }

    /// Asks the peer to stop its direction of stream `id` (`stop <code>`);
    /// what it sent meanwhile is dropped. A direction already ended: nothing to do.
    pub fn stop(&mut self, id: ChannelId, code: u32) -> Result<(), LocalError> {
        let ch = self.live(id)?;
        match ch.recv {
            Recv::None => Err(LocalError::Direction),
            Recv::Open => {
                ch.recv = Recv::Stopped;
                self.enqueue(id, Pending::Msg(Message::Text(Signal::Stop(code).to_string())));
                self.maybe_close(id);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// One OBJECT_DATAGRAM on `moq-dgram`. Not queued: a refused datagram is
    /// dropped, as a full QUIC datagram queue drops.
    pub fn send_datagram(&mut self, bytes: Bytes) -> Result<(), LocalError> {
        if self.dead {
            return Err(LocalError::Closed);
        }
        let id = self.dgram.ok_or(LocalError::Unknown)?;
        if bytes.len() > MAX_MESSAGE {
            return Err(LocalError::Direction); // no QUIC datagram is this large
        }
        self.events.push_back(Output::Send { id, msg: Message::Binary(bytes) });
        Ok(())
    }

    /// One message on `moq-gw`, queued like stream data (it must arrive).
    /// Also after a violation, so that the `close` message can say why.
    pub fn send_gateway(&mut self, msg: &GwMessage) -> Result<(), LocalError> {
        let id = self.gw.ok_or(LocalError::Unknown)?;
        self.enqueue(id, Pending::Msg(Message::Text(msg.to_text())));
        Ok(())
    }

    /// The session read (or dropped) `n` delivered bytes.
    pub fn consumed(&mut self, n: usize) {
        self.buffered = self.buffered.saturating_sub(n);
    }

    /// The transport would not take `msg` (from [`Output::Send`] on `id`):
    /// it goes back to the head of its queue, and no write is offered until
    /// [`writable`](Self::writable). Datagrams are dropped instead.
    pub fn refused(&mut self, id: ChannelId, msg: Message) {
        self.blocked = true;
        if self.dead || Some(id) == self.dgram {
            return;
        }
        let Some(ch) = self.channels.get_mut(&id) else { return };
        if let Message::Binary(b) = &msg {
            ch.queued += b.len();
        }
        ch.queue.push_front(Pending::Msg(msg));
        if !ch.ready {
            ch.ready = true;
            self.ready.push_front(id);
        }
    }

    /// The transport can take more (str0m's `ChannelBufferedAmountLow`).
    pub fn writable(&mut self) {
        self.blocked = false;
    }

    /// Binary bytes queued on `id` and not yet taken by the transport: the
    /// shell's backpressure for the session's writes.
    pub fn queued_bytes(&self, id: ChannelId) -> usize {
        self.channels.get(&id).map_or(0, |c| c.queued)
    }

    /// A write was refused and [`writable`](Self::writable) has not come since.
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// The `moq-gw` channel, once open.
    pub fn gateway_channel(&self) -> Option<ChannelId> {
        self.gw
    }

    /// A violation was found; nothing more happens.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// The next thing to do: events first, then writes round-robin.
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(o) = self.events.pop_front() {
            return Some(o);
        }
        for _ in 0..self.ready.len() {
            let id = self.ready.pop_front()?;
            let Some(ch) = self.channels.get_mut(&id) else { continue };
            match ch.queue.front() {
                None => ch.ready = false,
                Some(Pending::Msg(_)) if self.blocked => self.ready.push_back(id),
                Some(Pending::Close) => {
                    self.close_ours(id);
                    return Some(Output::Close { id });
                }
                Some(Pending::Msg(_)) => {
                    let Some(Pending::Msg(msg)) = ch.queue.pop_front() else { unreachable!() };
                    if let Message::Binary(b) = &msg {
                        ch.queued -= b.len();
                    }
                    if ch.queue.is_empty() {
                        ch.ready = false;
                    } else {
                        self.ready.push_back(id);
                    }
                    return Some(Output::Send { id, msg });
                }
            }
        }
        None
    }

    fn violation(&mut self, why: String) {
        tracing::debug!(why, "moq-dc protocol violation");
        self.dead = true;
        // Only `moq-gw` stays: the shell says why on it before it closes the
        // PeerConnection (design §2.3, the §3.5 session close).
        let gw = self.gw;
        self.channels.retain(|id, _| Some(*id) == gw);
        self.ready.retain(|id| Some(*id) == gw);
        self.events.clear();
        self.events.push_back(Output::Violation(why));
    }

    fn live(&mut self, id: ChannelId) -> Result<&mut Channel, LocalError> {
        if self.dead {
            return Err(LocalError::Closed);
        }
        self.channels.get_mut(&id).filter(|c| !c.closed).ok_or(LocalError::Unknown)
    }

    /// Our direction of `id` must be open.
    fn sending(&mut self, id: ChannelId) -> Result<(), LocalError> {
        match self.live(id)?.send {
            Send::Open => Ok(()),
            Send::Ended => Err(LocalError::Ended),
            Send::None => Err(LocalError::Direction),
        }
    }

    /// Ends our open direction with `fin` or `reset` (which drops unsent bytes).
    fn end_send(&mut self, id: ChannelId, how: Signal) {
        let Some(ch) = self.channels.get_mut(&id) else { return };
        ch.send = Send::Ended;
        if matches!(how, Signal::Reset(_)) {
            ch.queue.retain(|p| !matches!(p, Pending::Msg(Message::Binary(_))));
            ch.queued = 0;
        }
        self.enqueue(id, Pending::Msg(Message::Text(how.to_string())));
        self.maybe_close(id);
    }

    fn enqueue(&mut self, id: ChannelId, p: Pending) {
        let Some(ch) = self.channels.get_mut(&id) else { return };
        if let Pending::Msg(Message::Binary(b)) = &p {
            ch.queued += b.len();
        }
        ch.queue.push_back(p);
        if !ch.ready {
            ch.ready = true;
            self.ready.push_back(id);
        }
    }

    /// Both directions over (ours sent, theirs seen): close after the queue.
    fn maybe_close(&mut self, id: ChannelId) {
        let Some(ch) = self.channels.get_mut(&id) else { return };
        if !ch.closing && matches!(ch.kind, Kind::Uni | Kind::Bi) && ch.send != Send::Open && ch.recv != Recv::Open {
            ch.closing = true;
            self.enqueue(id, Pending::Close);
        }
    }

    /// The `Close` went out: the stream is over (a peer stream frees its
    /// place under the cap), the channel is kept to judge late messages.
    fn close_ours(&mut self, id: ChannelId) {
        let Some(ch) = self.channels.get_mut(&id) else { return };
        ch.closed = true;
        ch.queue.clear();
        ch.ready = false;
        if ch.by == Opener::Them {
            self.peer_streams -= 1;
        }
        self.closing.push_back(id);
        if self.closing.len() > MAX_CLOSING {
            let old = self.closing.pop_front().unwrap_or(id);
            if self.channels.get(&old).is_some_and(|c| c.closed) {
                self.channels.remove(&old);
            }
        }
    }

    fn forget(&mut self, id: ChannelId) -> Option<Channel> {
        let ch = self.channels.remove(&id)?;
        if ch.ready {
            self.ready.retain(|r| *r != id);
        }
        match ch.kind {
            Kind::Gateway => self.gw = None,
            Kind::Datagrams => self.dgram = None,
            _ if ch.by == Opener::Them && !ch.closed => self.peer_streams -= 1,
            _ => {}
        }
        Some(ch)
    }
}

#[cfg(test)]
#[path = "streams_tests.rs"]
mod tests;
