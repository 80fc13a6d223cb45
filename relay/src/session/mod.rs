//! One MoQT session (draft-ietf-moq-transport-18 §3): the async shell that
//! moves bytes between a web-transport-quinn session (WebTransport or raw
//! QUIC, §3.1) and the relay's routing core.
//!
//! Layout of a session:
//! - a pair of uni control streams carrying SETUP and GOAWAY (§3.3);
//! - one task per bidi request stream ([`request`]);
//! - one task per incoming data stream and one writer task draining the
//!   session's [`Outbound`] queue ([`data`]);
//! - one task reading datagrams ([`data::datagrams`]).

pub mod credit;
pub mod data;
pub mod fetch;
pub mod io;
pub mod namespace;
pub mod publish;
pub mod request;
pub mod subscribe;
pub mod tracks;

use crate::routing::outbound::Outbound;
use crate::routing::router::SessionId;
use crate::routing::track::{DatagramSink, Track};
use crate::state::Relay;
use crate::wire::{session_error, varint, PADDING, SETUP};
use bytes::{Bytes, BytesMut};
use moq_wire::coding::{KeyValuePairs, Location};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use web_transport_quinn::{RecvStream, SendStream};

/// Setup Option MOQT_IMPLEMENTATION (§10.3.1.5).
const MOQT_IMPLEMENTATION: u64 = 0x7;

/// A downstream subscription of this session, for joining FETCH (§10.12.2).
#[derive(Clone)]
pub struct Established {
    pub track: Arc<Track>,
    /// The Largest Object when the subscription began: the Joining Location (§5.1).
    pub joining: Option<Location>,
    pub forward: bool,
}

pub struct SessionHandle {
    pub id: SessionId,
    pub wt: web_transport_quinn::Session,
    pub outbound: Arc<Outbound>,
    /// Track Aliases this peer uses for what it publishes to us (§11.1).
    aliases: Mutex<HashMap<u64, (Arc<Track>, u8)>>,
    /// Bumped whenever `aliases` changes, so readers may keep a lookup.
    alias_generation: AtomicU64,
    alias_added: Notify,
    /// Aliases we assign to tracks we send to this peer.
    next_alias: AtomicU64,
    /// Request IDs for requests we send: the server uses odd IDs (§10.1).
    next_request: AtomicU64,
    /// Established downstream subscriptions by the peer's Request ID.
    established: Mutex<HashMap<u64, Established>>,
    established_added: Notify,
    control: tokio::sync::Mutex<Option<SendStream>>,
    setup_done: AtomicBool,
    setup_seen: Notify,
    /// Stream credit granted to the peer: [request (bidi), data (uni)].
    credit: Mutex<[credit::StreamCredit; 2]>,
}

/// Which kind of peer-opened stream a [`StreamSlot`] accounts for.
#[derive(Clone, Copy)]
enum Dir {
    Bi = 0,
    Uni = 1,
}

/// Holds one unit of stream credit while a peer-opened stream is served.
struct StreamSlot {
    session: Arc<SessionHandle>,
    dir: Dir,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.session.credit.lock().unwrap_or_else(|e| e.into_inner())[self.dir as usize].closed();
    }
}

impl DatagramSink for web_transport_quinn::Session {
    fn send(&self, datagram: Bytes) {
        // Datagrams larger than the path allows are dropped (§11.3).
        let _ = self.send_datagram(datagram);
    }
}

impl SessionHandle {
    fn new(id: SessionId, wt: web_transport_quinn::Session, queue_bytes: usize, evicted: Arc<AtomicU64>) -> Self {
        Self {
            id,
            wt,
            outbound: Arc::new(Outbound::new(queue_bytes, evicted)),
            aliases: Mutex::new(HashMap::new()),
            alias_generation: AtomicU64::new(0),
            alias_added: Notify::new(),
            next_alias: AtomicU64::new(1),
            next_request: AtomicU64::new(1),
            established: Mutex::new(HashMap::new()),
            established_added: Notify::new(),
            control: tokio::sync::Mutex::new(None),
            setup_done: AtomicBool::new(false),
            setup_seen: Notify::new(),
            credit: Mutex::new([
                credit::StreamCredit::new(credit::BIDI.0, credit::BIDI.1),
                credit::StreamCredit::new(credit::UNI.0, credit::UNI.1),
            ]),
        }
    }

    /// Accounts for a peer-opened stream and grants more when it is due.
    fn stream_slot(self: &Arc<Self>, dir: Dir) -> StreamSlot {
        let grant = self.credit.lock().unwrap_or_else(|e| e.into_inner())[dir as usize].opened();
        if let Some(n) = grant.and_then(|n| quinn::VarInt::from_u64(n).ok()) {
            tracing::debug!(session = self.id, streams = u64::from(n), bidi = matches!(dir, Dir::Bi), "granting more streams");
            match dir {
                Dir::Bi => self.wt.set_max_concurrent_bi_streams(n),
                Dir::Uni => self.wt.set_max_concurrent_uni_streams(n),
            }
        }
        StreamSlot { session: self.clone(), dir }
    }

    pub fn next_alias(&self) -> u64 {
        self.next_alias.fetch_add(1, Ordering::Relaxed)
    }

    pub fn next_request_id(&self) -> u64 {
        self.next_request.fetch_add(2, Ordering::Relaxed)
    }

    /// Registers an upstream alias; false if the peer already uses it for
    /// another track (DUPLICATE_TRACK_ALIAS, §11.1).
    pub fn add_alias(&self, alias: u64, track: Arc<Track>, default_priority: u8) -> bool {
        let mut a = self.aliases.lock().unwrap_or_else(|e| e.into_inner());
        if a.get(&alias).is_some_and(|(t, _)| !Arc::ptr_eq(t, &track)) {
            return false;
        }
        a.insert(alias, (track, default_priority));
        self.alias_generation.fetch_add(1, Ordering::Release);
        drop(a);
        self.alias_added.notify_waiters();
        true
    }

    pub fn remove_alias(&self, alias: u64) {
        let mut a = self.aliases.lock().unwrap_or_else(|e| e.into_inner());
        a.remove(&alias);
        self.alias_generation.fetch_add(1, Ordering::Release);
    }

    pub fn alias_generation(&self) -> u64 {
        self.alias_generation.load(Ordering::Acquire)
    }

    pub fn alias(&self, alias: u64) -> Option<(Arc<Track>, u8)> {
        self.aliases.lock().unwrap_or_else(|e| e.into_inner()).get(&alias).cloned()
    }

    /// Waits briefly for an alias whose SUBSCRIBE_OK / PUBLISH may still be in
    /// flight (§11.4.2 allows buffering a stream with an unknown alias).
    pub async fn wait_alias(&self, alias: u64, t: Duration) -> Option<(Arc<Track>, u8)> {
        let deadline = tokio::time::Instant::now() + t;
        loop {
            let notified = self.alias_added.notified();
            if let Some(x) = self.alias(alias) {
                return Some(x);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    pub fn establish(&self, request_id: u64, e: Established) {
        self.established.lock().unwrap_or_else(|e| e.into_inner()).insert(request_id, e);
        self.established_added.notify_waiters();
    }

    /// A Joining FETCH may arrive before the SUBSCRIBE it joins is
    /// established; the publisher buffers it until then or a timeout (§10.12.2).
    pub async fn wait_established(&self, request_id: u64, t: Duration) -> Option<Established> {
        let deadline = tokio::time::Instant::now() + t;
        loop {
            let notified = self.established_added.notified();
            if let Some(e) = self.established(request_id) {
                return Some(e);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
    pub fn unestablish(&self, request_id: u64) {
        self.established.lock().unwrap_or_else(|e| e.into_inner()).remove(&request_id);
    }
    pub fn established(&self, request_id: u64) -> Option<Established> {
        self.established.lock().unwrap_or_else(|e| e.into_inner()).get(&request_id).cloned()
    }

    /// Closes the whole session with a §3.5 code.
    pub fn close(&self, code: u32, reason: &str) {
        tracing::info!(session = self.id, code, reason, "closing session");
        self.wt.close(code, reason.as_bytes());
    }

    /// Sends GOAWAY on our control stream (§10.4).
    pub async fn go_away(&self, timeout: Duration) {
        let msg = crate::wire::control::Response::GoAway { uri: String::new(), timeout_ms: timeout.as_millis() as u64 }.encode();
        if let Some(ctl) = self.control.lock().await.as_mut() {
            let _ = io::write(ctl, &msg).await;
        }
    }
}

/// Runs a session until the peer leaves or breaks the protocol.
pub async fn run(relay: Arc<Relay>, wt: web_transport_quinn::Session) {
    let id = relay.next_id();
    let session = Arc::new(SessionHandle::new(id, wt.clone(), relay.limits.session_queue_bytes, relay.metrics.evicted.clone()));
    relay.add_session(session.clone());
    relay.metrics.sessions.fetch_add(1, Ordering::Relaxed);
    relay.metrics.sessions_total.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(session = id, "session started");

    let writer = tokio::spawn(data::writer(relay.clone(), session.clone()));
    let datagrams = tokio::spawn(data::datagrams(relay.clone(), session.clone()));
    if let Err(e) = open_control(&session).await {
        tracing::debug!(session = id, error = %e, "could not open control stream");
    } else {
        serve(&relay, &session).await;
    }

    session.outbound.close();
    writer.abort();
    datagrams.abort();
    relay.remove_session(id);
    relay.metrics.sessions.fetch_sub(1, Ordering::Relaxed);
    tracing::debug!(session = id, "session ended");
}

async fn open_control(session: &SessionHandle) -> anyhow::Result<()> {
    let mut send = session.wt.open_uni().await?;
    let mut params = KeyValuePairs::new();
    params.set_bytesvalue(MOQT_IMPLEMENTATION, format!("moq-phone-relay/{}", env!("CARGO_PKG_VERSION")).into_bytes());
    let setup = moq_wire::setup::Setup { params };
    let mut buf = BytesMut::new();
    setup.encode_full(&mut buf)?;
    send.write_all(&buf).await?;
    *session.control.lock().await = Some(send);
    Ok(())
}

async fn serve(relay: &Arc<Relay>, session: &Arc<SessionHandle>) {
    let setup_deadline = tokio::time::sleep(relay.limits.handshake_timeout);
    tokio::pin!(setup_deadline);
    let mut setup_checked = false;
    let wt = session.wt.clone();
    loop {
        tokio::select! {
            res = wt.accept_uni() => match res {
                Ok(recv) => {
                    tracing::trace!(session = session.id, "accepted uni stream");
                    let slot = session.stream_slot(Dir::Uni);
                    let (relay, session) = (relay.clone(), session.clone());
                    tokio::spawn(async move {
                        uni(relay, session, recv).await;
                        drop(slot);
                    });
                }
                Err(_) => return,
            },
            res = wt.accept_bi() => match res {
                Ok((send, recv)) => {
                    let slot = session.stream_slot(Dir::Bi);
                    let (relay, session) = (relay.clone(), session.clone());
                    tokio::spawn(async move {
                        request::run(relay, session, send, recv).await;
                        drop(slot);
                    });
                }
                Err(_) => return,
            },
            _ = &mut setup_deadline, if !setup_checked => {
                // The guard is only evaluated when select! starts, so check again.
                setup_checked = true;
                if !session.setup_done.load(Ordering::Relaxed) {
                    session.close(session_error::CONTROL_MESSAGE_TIMEOUT, "no SETUP received");
                    return;
                }
            }
        }
    }
}

/// Dispatches an incoming uni stream on its type (§3.4).
async fn uni(relay: Arc<Relay>, session: Arc<SessionHandle>, mut recv: RecvStream) {
    let mut buf = BytesMut::new();
    let t = tokio::time::timeout(relay.limits.handshake_timeout, async {
        loop {
            if let Some((t, _)) = varint::read(&buf) {
                return Ok(t);
            }
            match recv.read_chunk(4096, true).await {
                Ok(Some(c)) => buf.extend_from_slice(&c.bytes),
                Ok(None) => return Err(()),
                Err(_) => return Err(()),
            }
        }
    })
    .await;
    let t = match t {
        Ok(Ok(t)) => t,
        Ok(Err(())) => return,
        Err(_) => {
            // A stream that never says what it is: stop it, keep the session.
            let _ = recv.stop(crate::wire::stream_error::CANCELLED);
            return;
        }
    };
    tracing::trace!(session = session.id, stream_type = t, "uni stream");
    match t {
        // Boxed so the task is sized for the stream it turned out to be.
        SETUP => Box::pin(control(relay, session, recv, buf)).await,
        PADDING => while let Ok(Some(_)) = recv.read_chunk(64 * 1024, true).await {},
        t if crate::wire::subgroup::is_subgroup_type(t) => Box::pin(data::subgroup(relay, session, recv, buf)).await,
        crate::wire::fetch::FETCH_HEADER => {
            // We never send FETCH upstream, so no FETCH stream is expected.
            let _ = recv.stop(crate::wire::stream_error::CANCELLED);
        }
        other => {
            relay.metrics.error("unknown_stream_type");
            session.close(session_error::PROTOCOL_VIOLATION, &format!("unknown stream type {other:#x}"));
        }
    }
}

/// The peer's control stream: SETUP, then only GOAWAY (§3.3, §10.4).
async fn control(relay: Arc<Relay>, session: Arc<SessionHandle>, recv: RecvStream, mut buf: BytesMut) {
    if session.setup_done.swap(true, Ordering::Relaxed) {
        session.close(session_error::PROTOCOL_VIOLATION, "second control stream");
        return;
    }
    session.setup_seen.notify_waiters();
    // Re-frame SETUP as a control message: type already identified.
    let mut reader = io::FrameReader::with_buffer(recv, std::mem::take(&mut buf));
    match reader.next_within(relay.limits.handshake_timeout).await {
        Ok(f) if f.kind == SETUP => {
            if moq_wire::coding::KeyValuePairs::decode_bounded(&mut &f.payload[..], f.payload.len()).is_err() {
                relay.metrics.error("malformed_setup");
                session.close(session_error::KEY_VALUE_FORMATTING_ERROR, "malformed SETUP options");
                return;
            }
        }
        Ok(_) => unreachable_setup(&session),
        Err(e) => {
            relay.metrics.error("setup");
            session.close(session_error::PROTOCOL_VIOLATION, &format!("bad SETUP: {e}"));
            return;
        }
    }
    let mut goaways = 0;
    loop {
        // After SETUP only GOAWAY may appear on the control stream (§10).
        match reader.next_if(|k| k == crate::wire::control::kind::GOAWAY).await {
            Ok(f) if f.kind == crate::wire::control::kind::GOAWAY && goaways == 0 => goaways += 1,
            Ok(f) => {
                relay.metrics.error("control_message");
                session.close(session_error::PROTOCOL_VIOLATION, &format!("unexpected message {:#x} on control stream", f.kind));
                return;
            }
            Err(io::StreamError::Transport(_)) => return,
            Err(e) => {
                relay.metrics.error("control_stream");
                session.close(session_error::PROTOCOL_VIOLATION, &format!("control stream: {e}"));
                return;
            }
        }
    }
}

fn unreachable_setup(session: &SessionHandle) {
    session.close(session_error::PROTOCOL_VIOLATION, "control stream did not start with SETUP");
}
