//! One browser on the gateway (docs/design/webrtc.md §2.4): a tokio task
//! owning str0m's `Rtc` (ICE-lite, RFC 8445 §2.5; DTLS; SCTP data channels,
//! RFC 8831/8832; RTP/Opus, RFC 7587), the moq-dc/1 machine
//! ([`super::streams`]) and the audio mappings ([`super::audio`]).
//!
//! The loop is str0m's (its `Rtc` docs): feed one input — a datagram from
//! the mux, a timeout, a command of the session — then drain `poll_output`
//! until it asks for a timeout, sending what it transmits and turning its
//! events into moq-dc/1 inputs; then carry out what moq-dc/1 asks (writes,
//! closes) and drain again. The MoQ session is `session::run` over
//! `Conn::Rtc` (`dc.rs`), started when the first channel opens.
//!
//! Answers to the questions `streams.rs` left to the shell:
//! - str0m's `ChannelId` is opaque: channels are numbered here (u64, from 1,
//!   never reused), both ours and the browser's.
//! - str0m does report `ChannelClose` for a channel we closed (sctp
//!   `close_stream` marks it, its poll emits `Close`), which `streams.rs`
//!   takes as the confirmation it waits for.
//! - A text message that is not UTF-8 is a violation (RFC 8831 §6.6).
//! - A `moq-uni` of ours is not reset when moq-dc/1 closes it after our
//!   `fin`: the page closes it once it read the `fin` (or [`UNI_LINGER`]
//!   passes). Chromium (148) drops what a channel the browser opened for us
//!   received if it is reset before the page was handed the channel (its
//!   `datachannel` event waits for a busy main thread): the page got an
//!   empty channel that closed, read as `reset 0` — events and FETCH
//!   results lost.
//! - Delivered bytes are reported consumed when the session reads or drops
//!   them (`dc.rs`), or here when their reader is gone.
//! - `Channel::write` → `Ok(false)` is `Streams::refused`; writes resume on
//!   `ChannelBufferedAmountLow` (any channel: str0m's limit is per
//!   association) or, as a backstop, [`RETRY`] later.
//! - str0m's RTP writer adds no offset of its own (`packet/payload.rs`: the
//!   `MediaTime` numerator goes on the wire as u32), so a random one is added
//!   here (RFC 3550 §5.1).
//! - ptime: str0m writes no `a=ptime`; `signal.rs` adds `a=ptime:20` to the
//!   answer (RFC 4566 §6) so the browser's Opus encoder uses 20 ms frames,
//!   one per LOC object (CALLS.md §6).
//!
//! It ends on: ICE + DTLS not up [`Setup::ice_timeout`] after the offer (a
//! lite agent whose browser sent nothing waits forever otherwise), ICE
//! disconnected (no consent checks for 15 s, `is/src/pair.rs`), DTLS/SCTP
//! closed, `DELETE /webrtc/<id>`, the page's `{"t":"close"}`, or the session
//! closing — after telling the page why on `moq-gw` (design §2.3).

mod media;
use media::rand_u32;

use super::audio::{Egress, Ingress, RtpIn, RtpOut};
use super::dc::{self, Command, DcRecv, DcSend, DcSession, Item, PeerEnds};
use super::mux::{Mux, Packet, Registration};
use super::streams::{ChannelId, GwMessage, Kind, LocalError, Message, Opener, Output, Streams};
use crate::state::Relay;
use crate::wire::session_error;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use str0m::channel::{ChannelConfig, ChannelId as Cid, Reliability};
use str0m::format::Codec;
use str0m::media::{Frequency, MediaData, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Output as RtcOutput, Rtc};
use tokio::sync::{mpsc, oneshot};

/// Backstop for resuming refused writes if no `ChannelBufferedAmountLow` comes.
pub const RETRY: Duration = Duration::from_millis(50);
/// How long our `{"t":"close"}` gets to reach the page before DTLS closes.
pub const CLOSE_LINGER: Duration = Duration::from_millis(300);
/// How long a `moq-uni` of ours that moq-dc/1 closed waits for the page to
/// close it before we do (see the module notes).
pub const UNI_LINGER: Duration = Duration::from_secs(5);
/// Timeouts already due handled one after another before the loop waits again.
const MAX_DUE_IN_A_ROW: u32 = 8;

/// Everything a peer task starts with (built by `signal.rs`).
pub struct Setup {
    /// The `/webrtc/<id>` name, for logs.
    pub id: String,
    /// After `accept_offer`, with its host candidates.
    pub rtc: Rtc,
    pub mux: Arc<Mux>,
    pub inbox: mpsc::Receiver<Packet>,
    pub registration: Registration,
    /// Our host candidates: a datagram is said to have arrived on the one of
    /// its source's family (the socket is bound to a wildcard; str0m drops a
    /// check whose destination is none of its candidates).
    pub locals: Vec<SocketAddr>,
    pub relay: Arc<Relay>,
    /// Given to `session::run` (`token=` from the POST, for `session_tokens`).
    pub url_query: Option<String>,
    /// The POST's source address.
    pub remote: SocketAddr,
    pub ice_timeout: Duration,
    /// `DELETE /webrtc/<id>`.
    pub delete: oneshot::Receiver<()>,
    /// Dropped when the task ends: releases the gateway's slots.
    pub guard: Box<dyn Send>,
}

/// Runs one browser until it is gone. `webrtc_peers` is the caller's and
/// [`Setup::guard`]'s to count.
pub async fn run(s: Setup) {
    let (session, ends) = dc::pair(s.remote);
    let mut p = Peer {
        id: s.id,
        rtc: s.rtc,
        mux: s.mux,
        locals: s.locals,
        relay: s.relay,
        streams: Streams::new(Default::default()),
        ends,
        session: Some(session),
        url_query: s.url_query,
        cids: HashMap::new(),
        ids: HashMap::new(),
        next_id: 1,
        opening: HashMap::new(),
        open_replies: HashMap::new(),
        our_uni: HashSet::new(),
        lingering: HashMap::new(),
        readers: HashMap::new(),
        acks: HashMap::new(),
        audio_mid: None,
        ingress: Ingress::new(),
        egress: Egress::new(),
        rtp_offset: u64::from(rand_u32()),
        connected: false,
        closing: None,
        session_gone: false,
        over: None,
    };
    let mut inbox = s.inbox;
    let mut delete = s.delete;
    let ice_deadline = tokio::time::Instant::now() + s.ice_timeout;
    let _registration = s.registration;
    let _guard = s.guard;
    let mut due_in_a_row = 0;
    while p.over.is_none() {
        let Some(timeout) = p.drain().await else { break };
        if p.pump() {
            continue; // wrote to str0m: drain again
        }
        // A timeout already due is handled now, not by a sleep: tokio rounds a sleep up to its
        // next 1 ms tick, and str0m turns a written RTP frame into a packet only on a due
        // timeout (its pacer), so each frame out waited ~1 ms (bench/results/fallback.md).
        // A few in a row at most, so a str0m that keeps answering "due" cannot starve the inbox.
        if timeout <= Instant::now() && due_in_a_row < MAX_DUE_IN_A_ROW {
            due_in_a_row += 1;
            p.on_timeout(ice_deadline);
            continue;
        }
        due_in_a_row = 0;
        let now = tokio::time::Instant::now();
        let mut wake = tokio::time::Instant::from_std(timeout).max(now);
        if !p.connected {
            wake = wake.min(ice_deadline);
        }
        if let Some(c) = p.closing {
            wake = wake.min(c);
        }
        if p.streams.is_blocked() {
            wake = wake.min(now + RETRY);
        }
        if let Some(&t) = p.lingering.values().map(|(_, t)| t).min() {
            wake = wake.min(t);
        }
        tokio::select! {
            packet = inbox.recv() => match packet {
                Some(packet) => p.receive(packet),
                None => p.end("the gateway is gone"),
            },
            cmd = p.ends.cmd.recv(), if !p.session_gone => match cmd {
                Some(cmd) => p.command(cmd),
                None => p.session_ended(),
            },
            d = p.ends.dgram_out.recv(), if !p.session_gone => match d {
                Some(d) => p.datagram_out(d),
                None => p.session_ended(),
            },
            _ = &mut delete => p.end("DELETE /webrtc"),
            _ = tokio::time::sleep_until(wake) => p.on_timeout(ice_deadline),
        }
    }
    p.farewell().await;
    let why = p.over.unwrap_or("the peer connection failed");
    tracing::info!(peer = %p.id, why, "WebRTC peer gone");
}

struct Peer {
    id: String,
    rtc: Rtc,
    mux: Arc<Mux>,
    locals: Vec<SocketAddr>,
    relay: Arc<Relay>,
    streams: Streams,
    ends: PeerEnds,
    /// Until the session starts: then it holds the session, we hold weak ends.
    session: Option<DcSession>,
    url_query: Option<String>,
    cids: HashMap<Cid, ChannelId>,
    ids: HashMap<ChannelId, Cid>,
    next_id: ChannelId,
    /// Channels of ours whose DCEP open is in flight.
    opening: HashMap<Cid, oneshot::Sender<dc::Opened>>,
    /// ... numbered, until `streams.rs` says `Opened`.
    open_replies: HashMap<ChannelId, oneshot::Sender<dc::Opened>>,
    /// Our open `moq-uni` channels.
    our_uni: HashSet<ChannelId>,
    /// Our `moq-uni` channels moq-dc/1 closed, left for the page to close until then.
    lingering: HashMap<ChannelId, (Cid, tokio::time::Instant)>,
    /// The peer's direction of each stream, to its `DcRecv`.
    readers: HashMap<ChannelId, mpsc::UnboundedSender<Item>>,
    /// Writes waiting for their channel's queue to shrink.
    acks: HashMap<ChannelId, Vec<oneshot::Sender<Result<(), LocalError>>>>,
    audio_mid: Option<Mid>,
    ingress: Ingress,
    egress: Egress,
    rtp_offset: u64,
    /// ICE and DTLS up (`Event::Connected`).
    connected: bool,
    /// Our `close` is on its way; the connection goes at this time.
    closing: Option<tokio::time::Instant>,
    /// The session and all its handles were dropped.
    session_gone: bool,
    over: Option<&'static str>,
}

impl Peer {
    /// Drains str0m until it asks for a timeout; `None`: it is dead.
    async fn drain(&mut self) -> Option<Instant> {
        loop {
            if !self.rtc.is_alive() {
                self.end("the peer connection closed");
                return None;
            }
            match self.rtc.poll_output() {
                Ok(RtcOutput::Timeout(t)) => return Some(t),
                Ok(RtcOutput::Transmit(t)) => {
                    if let Err(e) = self.mux.send(t.destination, &t.contents).await {
                        tracing::trace!(peer = %self.id, error = %e, "WebRTC send failed");
                    }
                }
                Ok(RtcOutput::Event(e)) => self.event(e),
                Err(e) => {
                    self.fail(&e);
                    return None;
                }
            }
        }
    }

    /// str0m's timeout (or one of ours) came: time goes on in str0m, and the deadlines are checked.
    fn on_timeout(&mut self, ice_deadline: tokio::time::Instant) {
        if let Err(e) = self.rtc.handle_input(Input::Timeout(Instant::now())) {
            self.fail(&e);
        }
        self.streams.writable();
        let now = tokio::time::Instant::now();
        if !self.connected && now >= ice_deadline {
            self.relay.metrics.webrtc_ice_timeouts.fetch_add(1, Ordering::Relaxed);
            self.ends.timed_out.store(true, Ordering::Relaxed);
            self.end("ICE and DTLS not up in time");
        }
        if self.closing.is_some_and(|c| now >= c) {
            self.end("closed");
        }
        self.close_lingering(now);
    }

    /// The session is gone; a close it sent still gets its linger.
    fn session_ended(&mut self) {
        self.session_gone = true;
        if self.closing.is_none() {
            self.end("the session ended");
        }
    }

    /// str0m's `close()` queues DTLS close_notify and an SCTP shutdown; a
    /// last drain puts them on the wire before the task goes.
    async fn farewell(&mut self) {
        if !self.rtc.is_alive() || self.rtc.close().is_err() {
            return;
        }
        for _ in 0..64 {
            match self.rtc.poll_output() {
                Ok(RtcOutput::Transmit(t)) => {
                    let _ = self.mux.send(t.destination, &t.contents).await;
                }
                Ok(RtcOutput::Event(_)) => {}
                _ => return,
            }
        }
    }

    fn fail(&mut self, e: &str0m::RtcError) {
        tracing::debug!(peer = %self.id, error = %e, "str0m failed");
        self.end("the peer connection failed");
    }

    fn end(&mut self, why: &'static str) {
        self.over.get_or_insert(why);
    }

    /// The host candidate a datagram from `source` arrived on, as str0m knows it.
    fn local_for(&self, source: SocketAddr) -> SocketAddr {
        let same = |l: &&SocketAddr| l.is_ipv4() == source.is_ipv4();
        let near = |l: &&SocketAddr| same(l) && l.ip().is_loopback() == source.ip().is_loopback();
        let pick = self.locals.iter().find(near).or_else(|| self.locals.iter().find(same)).or(self.locals.first());
        pick.copied().unwrap_or(source)
    }

    fn receive(&mut self, p: Packet) {
        let local = self.local_for(p.source);
        let Ok(r) = Receive::new(Protocol::Udp, p.source, local, &p.data) else { return };
        if let Err(e) = self.rtc.handle_input(Input::Receive(p.at, r)) {
            self.fail(&e);
        }
    }

    fn event(&mut self, e: Event) {
        match e {
            Event::Connected => {
                self.connected = true;
                tracing::debug!(peer = %self.id, "WebRTC connected");
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.ends.timed_out.store(true, Ordering::Relaxed);
                self.end("ICE disconnected: the browser went silent");
            }
            Event::Closed => self.end("the browser closed the connection"),
            Event::MediaAdded(m) if m.kind == MediaKind::Audio => self.audio_mid = Some(m.mid),
            Event::MediaData(d) => self.rtp_in(d),
            Event::ChannelOpen(cid, label) => self.channel_open(cid, &label),
            Event::ChannelData(d) => {
                let Some(&id) = self.cids.get(&d.id) else { return };
                if d.binary {
                    self.streams.received(id, Message::Binary(d.data.into()));
                } else {
                    match String::from_utf8(d.data) {
                        Ok(t) => self.streams.received(id, Message::Text(t)),
                        Err(_) => self.streams.received_bad_text(id),
                    }
                }
            }
            Event::ChannelClose(cid) => {
                self.opening.remove(&cid);
                if let Some(id) = self.cids.remove(&cid) {
                    self.ids.remove(&id);
                    self.our_uni.remove(&id);
                    self.lingering.remove(&id);
                    self.streams.closed(id);
                }
            }
            Event::ChannelBufferedAmountLow(_) => self.streams.writable(),
            _ => {}
        }
    }

    fn channel_open(&mut self, cid: Cid, label: &str) {
        let id = self.next_id;
        self.next_id += 1;
        self.cids.insert(cid, id);
        self.ids.insert(id, cid);
        let protocol = self.rtc.channel(cid).and_then(|c| c.config().map(|c| c.protocol.clone())).unwrap_or_default();
        let by = match self.opening.remove(&cid) {
            Some(reply) => {
                self.open_replies.insert(id, reply);
                Opener::Us
            }
            None => Opener::Them,
        };
        self.streams.opened(id, label, &protocol, by);
    }

    /// Carries out what moq-dc/1 asks; whether anything was written to str0m.
    fn pump(&mut self) -> bool {
        let mut wrote = false;
        while let Some(o) = self.streams.poll_output() {
            match o {
                Output::Opened { id, kind, by } => self.opened(id, kind, by),
                Output::Data { id, bytes } => {
                    let n = bytes.len();
                    let taken = self.readers.get(&id).is_some_and(|r| r.send(Item::Data(bytes)).is_ok());
                    if !taken {
                        self.streams.consumed(n); // nobody reads it: discarded
                    }
                }
                Output::Fin { id } => self.end_reader(id, Item::Fin),
                Output::Reset { id, code } => self.end_reader(id, Item::Reset(code)),
                Output::Stopped { id, .. } => self.fail_acks(id),
                Output::Datagram(d) => {
                    let _ = self.ends.dgram_in.try_send(d); // full: dropped, as on QUIC
                }
                Output::Gateway(m) => self.gateway(m),
                Output::Closed { id } => {
                    self.readers.remove(&id);
                    self.fail_acks(id);
                    self.open_replies.remove(&id);
                }
                Output::Send { id, msg } => {
                    wrote = true;
                    self.write(id, msg);
                }
                Output::Close { id } => {
                    wrote = true;
                    self.readers.remove(&id);
                    self.fail_acks(id);
                    self.open_replies.remove(&id);
                    if let Some(&cid) = self.ids.get(&id) {
                        if self.our_uni.remove(&id) {
                            // The page closes it after our fin (module notes); a backstop if it does not.
                            self.lingering.insert(id, (cid, tokio::time::Instant::now() + UNI_LINGER));
                        } else {
                            self.rtc.direct_api().close_data_channel(cid);
                        }
                    }
                }
                Output::Violation(why) => {
                    tracing::info!(peer = %self.id, why, "moq-dc/1 protocol violation");
                    self.relay.metrics.error("webrtc_protocol_violation");
                    self.close(session_error::PROTOCOL_VIOLATION, &why);
                }
            }
        }
        self.release_acks();
        wrote
    }

    fn write(&mut self, id: ChannelId, msg: Message) {
        let Some(&cid) = self.ids.get(&id) else { return };
        let Some(mut ch) = self.rtc.channel(cid) else { return }; // closing: dropped
        let taken = match &msg {
            Message::Binary(b) => ch.write(true, b),
            Message::Text(t) => ch.write(false, t.as_bytes()),
        };
        match taken {
            Ok(true) => {}
            Ok(false) => self.streams.refused(id, msg),
            Err(e) => tracing::debug!(peer = %self.id, error = %e, "data channel write failed"),
        }
    }

    /// A channel moq-dc/1 accepted: a stream for the session, or ours opened.
    fn opened(&mut self, id: ChannelId, kind: Kind, by: Opener) {
        if let Some(session) = self.session.take() {
            tracing::debug!(peer = %self.id, "MoQ session starts");
            self.relay.metrics.webrtc_sessions.fetch_add(1, Ordering::Relaxed);
            let relay = self.relay.clone();
            let query = self.url_query.take();
            tokio::spawn(async move { Box::pin(crate::session::run(relay, crate::session::transport::Conn::rtc(session), query)).await });
        }
        if !matches!(kind, Kind::Uni | Kind::Bi) {
            return;
        }
        if kind == Kind::Uni && by == Opener::Us {
            self.our_uni.insert(id);
        }
        let Some(cmd) = self.ends.cmd_tx.upgrade() else { return };
        let send = (kind == Kind::Bi || by == Opener::Us).then(|| DcSend::new(id, cmd.clone()));
        let recv = (kind == Kind::Bi || by == Opener::Them).then(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            self.readers.insert(id, tx);
            DcRecv::new(id, cmd, rx)
        });
        match (by, send, recv) {
            (Opener::Us, Some(send), recv) => {
                let Some(reply) = self.open_replies.remove(&id) else { return };
                if let Err((mut send, recv)) = reply.send((send, recv)) {
                    // The session gave up waiting: abandon the stream.
                    let _ = send.reset(0);
                    if let Some(mut recv) = recv {
                        let _ = recv.stop(0);
                    }
                }
            }
            (Opener::Them, Some(send), Some(recv)) => {
                let _ = self.ends.bi.send((send, recv));
            }
            (Opener::Them, None, Some(recv)) => {
                let _ = self.ends.uni.send(recv);
            }
            _ => {}
        }
    }

    /// Closes our `moq-uni` channels the page left open past [`UNI_LINGER`].
    fn close_lingering(&mut self, now: tokio::time::Instant) {
        let due: Vec<ChannelId> = self.lingering.iter().filter(|(_, (_, t))| *t <= now).map(|(id, _)| *id).collect();
        for id in due {
            if let Some((cid, _)) = self.lingering.remove(&id) {
                self.rtc.direct_api().close_data_channel(cid);
            }
        }
    }

    fn end_reader(&mut self, id: ChannelId, last: Item) {
        if let Some(r) = self.readers.remove(&id) {
            let _ = r.send(last);
        }
    }

    fn fail_acks(&mut self, id: ChannelId) {
        for ack in self.acks.remove(&id).unwrap_or_default() {
            let _ = ack.send(Err(LocalError::Ended));
        }
    }

    /// Acknowledges writes whose channel's queue is short again.
    fn release_acks(&mut self) {
        let streams = &self.streams;
        self.acks.retain(|id, acks| {
            if streams.queued_bytes(*id) > dc::WRITE_HIGH {
                return true;
            }
            for ack in acks.drain(..) {
                let _ = ack.send(Ok(()));
            }
            false
        });
    }

    fn command(&mut self, c: Command) {
        if self.closing.is_some() {
            return; // everything fails with the session once its close is sent
        }
        match c {
            Command::Open { bi, reply } => {
                let config = ChannelConfig {
                    label: (if bi { Kind::Bi } else { Kind::Uni }).label().to_owned(),
                    ordered: true,
                    reliability: Reliability::Reliable,
                    negotiated: None,
                    protocol: super::streams::PROTOCOL.to_owned(),
                };
                let cid = self.rtc.direct_api().create_data_channel(config);
                self.opening.insert(cid, reply);
            }
            Command::Write { id, bytes, ack } => match self.streams.write(id, bytes) {
                Ok(()) => self.acks.entry(id).or_default().push(ack),
                Err(e) => {
                    let _ = ack.send(Err(e));
                }
            },
            Command::Finish { id } => {
                let _ = self.streams.finish(id);
            }
            Command::Reset { id, code } => {
                let _ = self.streams.reset(id, code);
                self.fail_acks(id);
            }
            Command::Stop { id, code } => {
                let _ = self.streams.stop(id, code);
                self.readers.remove(&id);
            }
            Command::Consumed(n) => self.streams.consumed(n),
            Command::Close { code, reason } => self.close(code, &reason),
        }
    }

    /// The session closes (§3.5): the page learns why on `moq-gw`, then the
    /// connection goes after [`CLOSE_LINGER`].
    fn close(&mut self, code: u32, reason: &str) {
        if self.closing.is_some() {
            return;
        }
        let sent = self.streams.send_gateway(&GwMessage::Close { code, reason: reason.to_owned() }).is_ok();
        self.closing = Some(tokio::time::Instant::now() + if sent { CLOSE_LINGER } else { Duration::ZERO });
    }
}
