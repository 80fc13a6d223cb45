//! One session's shared handle (draft-ietf-moq-transport-18 §3): what request
//! handlers, the data path and the relay need of a connection — its
//! outbound queue, Track Aliases in both directions (§11.1), Request IDs
//! (§10.1), established subscriptions for joining FETCH (§10.12.2) and the
//! stream credit it grants (§3.3).

use super::credit;
use super::io;
use super::transport::{Conn, Dir, RecvStream, SendStream};
use crate::routing::outbound::Outbound;
use crate::routing::router::SessionId;
use crate::routing::track::Track;
use moq_wire::coding::Location;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// A downstream subscription of this session, for joining FETCH (§10.12.2).
#[derive(Clone)]
pub struct Established {
    pub track: Arc<Track>,
    /// The Largest Object when the subscription began: the Joining Location (§5.1).
    pub joining: Option<Location>,
    pub forward: bool,
}

/// A session's standing with the relay's token checks.
#[derive(Debug, Clone)]
pub enum AuthState {
    /// SETUP not judged yet.
    Pending,
    /// The relay checks no tokens.
    Open,
    Granted(Arc<moq_auth::Grant>),
    /// Refused: the session is being closed.
    Refused,
}

pub struct SessionHandle {
    pub id: SessionId,
    pub wt: Conn,
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
    /// One past the largest Request ID the client used (even, §10.1): the
    /// Request ID of our GOAWAY (§10.4), 0 when it sent none.
    peer_requests: AtomicU64,
    /// The client's Request IDs, each usable once (§10.1).
    request_ids: Mutex<super::ids::RequestIds>,
    /// Established downstream subscriptions by the peer's Request ID.
    established: Mutex<HashMap<u64, Established>>,
    established_added: Notify,
    pub(super) control: tokio::sync::Mutex<Option<SendStream>>,
    pub(super) setup_done: AtomicBool,
    pub(super) setup_seen: Notify,
    /// What SETUP's token decided (issue 13); requests wait for it.
    pub(super) auth: tokio::sync::watch::Sender<AuthState>,
    /// The query of the session's WebTransport URL (`?token=`), if any.
    pub(super) url_query: Option<String>,
    /// Its open requests and request rate against the relay's limits.
    pub(super) quota: Mutex<crate::routing::quota::Quota>,
    /// Stream credit granted to the peer: [request (bidi), data (uni)].
    credit: Mutex<[credit::StreamCredit; 2]>,
    /// FETCHes the relay sent this peer (as its subscriber, §9.1), by our
    /// Request ID, waiting for their FETCH_HEADER stream (§11.4.4).
    fetches: Mutex<HashMap<u64, tokio::sync::oneshot::Sender<(RecvStream, bytes::BytesMut)>>>,
}

/// Holds one unit of stream credit while a peer-opened stream is served.
pub(super) struct StreamSlot {
    session: Arc<SessionHandle>,
    dir: Dir,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.session.credit.lock().unwrap_or_else(|e| e.into_inner())[self.dir as usize].closed();
    }
}

impl SessionHandle {
    pub(super) fn new(id: SessionId, wt: Conn, queue_bytes: usize, evicted: Arc<AtomicU64>) -> Self {
        Self {
            id,
            wt,
            outbound: Arc::new(Outbound::new(queue_bytes, evicted)),
            aliases: Mutex::new(HashMap::new()),
            alias_generation: AtomicU64::new(0),
            alias_added: Notify::new(),
            next_alias: AtomicU64::new(1),
            next_request: AtomicU64::new(1),
            peer_requests: AtomicU64::new(0),
            request_ids: Mutex::new(Default::default()),
            established: Mutex::new(HashMap::new()),
            established_added: Notify::new(),
            control: tokio::sync::Mutex::new(None),
            setup_done: AtomicBool::new(false),
            setup_seen: Notify::new(),
            auth: tokio::sync::watch::channel(AuthState::Pending).0,
            url_query: None,
            quota: Mutex::new(crate::routing::quota::Quota::new(Default::default())),
            credit: Mutex::new([
                credit::StreamCredit::new(credit::BIDI.0, credit::BIDI.1),
                credit::StreamCredit::new(credit::UNI.0, credit::UNI.1),
            ]),
            fetches: Mutex::new(HashMap::new()),
        }
    }

    /// Registers a FETCH we are about to send this peer: its data stream
    /// arrives on the returned receiver (see [`Self::deliver_fetch`]).
    pub fn expect_fetch(&self, request_id: u64) -> tokio::sync::oneshot::Receiver<(RecvStream, bytes::BytesMut)> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.fetches.lock().unwrap_or_else(|e| e.into_inner()).insert(request_id, tx);
        rx
    }

    /// Hands a FETCH_HEADER stream to the FETCH it answers; gives the stream
    /// back when no FETCH of ours has that Request ID (any more).
    pub fn deliver_fetch(&self, request_id: u64, recv: RecvStream, rest: bytes::BytesMut) -> Result<(), RecvStream> {
        let waiting = self.fetches.lock().unwrap_or_else(|e| e.into_inner()).remove(&request_id);
        match waiting {
            Some(tx) => tx.send((recv, rest)).map_err(|(recv, _)| recv),
            None => Err(recv),
        }
    }

    /// Forgets a FETCH that ended without (or before) its data stream.
    pub fn forget_fetch(&self, request_id: u64) {
        self.fetches.lock().unwrap_or_else(|e| e.into_inner()).remove(&request_id);
    }

    /// Accounts for a peer-opened stream and grants more when it is due.
    pub(super) fn stream_slot(self: &Arc<Self>, dir: Dir) -> StreamSlot {
        let grant = self.credit.lock().unwrap_or_else(|e| e.into_inner())[dir as usize].opened();
        if let Some(n) = grant {
            tracing::debug!(session = self.id, streams = n, bidi = matches!(dir, Dir::Bi), "granting more streams");
            self.wt.grant_streams(dir, n);
        }
        StreamSlot { session: self.clone(), dir }
    }

    pub fn next_alias(&self) -> u64 {
        self.next_alias.fetch_add(1, Ordering::Relaxed)
    }

    /// The client sent a message consuming Request ID `id` (a request or a
    /// REQUEST_UPDATE, §10.1); an odd or reused one is refused, and the
    /// caller closes the session with INVALID_REQUEST_ID.
    pub fn claim_request(&self, id: u64) -> Result<(), super::ids::Invalid> {
        self.request_ids.lock().unwrap_or_else(|e| e.into_inner()).claim(id)?;
        self.peer_requests.fetch_max(id.saturating_add(2), Ordering::Relaxed);
        Ok(())
    }

    /// A REQUEST_UPDATE from the client for a request of kind `updated`: it
    /// consumes a Request ID (§10.1) and may carry only what §10.2 lists for
    /// that kind, with allowed values. Anything else closes the session with
    /// the draft's code, and the error tells the caller to stop.
    pub fn accept_update(
        &self,
        id: u64,
        params: &moq_wire::coding::KeyValuePairs,
        updated: moq_wire::request::Updated,
    ) -> Result<(), io::StreamError> {
        if let Err(why) = self.claim_request(id) {
            self.invalid_request_id(why);
            return Err(io::StreamError::Transport(why.reason().into()));
        }
        if let Err(r) = moq_wire::request::check_params(moq_wire::request::Scope::Update(updated), params) {
            self.close(r.code, &format!("REQUEST_UPDATE: {}", r.reason));
            return Err(io::StreamError::Transport(r.reason));
        }
        Ok(())
    }

    /// Closes the session for a Request ID [`Self::claim_request`] refused.
    /// The peer began a control message (on the control stream or a
    /// request stream) and sent nothing more for the stall timeout: "the
    /// peer took too long" (§3.5 CONTROL_MESSAGE_TIMEOUT). Counted as
    /// `moq_relay_errors_total{code="control_message_timeout"}`.
    pub fn message_stalled(&self, metrics: &crate::metrics::Metrics, stream: &str) {
        metrics.error("control_message_timeout");
        tracing::debug!(session = self.id, stream, "partial control message stalled");
        self.close(
            crate::wire::session_error::CONTROL_MESSAGE_TIMEOUT,
            &format!("a control message on a {stream} stream stalled half-way"),
        );
    }

    pub fn invalid_request_id(&self, why: super::ids::Invalid) {
        self.close(crate::wire::session_error::INVALID_REQUEST_ID, why.reason());
    }

    /// Waits (at most `t`) until SETUP was judged; `Pending` if it never was.
    pub async fn auth_state(&self, t: Duration) -> AuthState {
        let mut rx = self.auth.subscribe();
        let judged = tokio::time::timeout(t, rx.wait_for(|s| !matches!(s, AuthState::Pending))).await;
        match judged {
            Ok(Ok(s)) => s.clone(),
            _ => AuthState::Pending,
        }
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
        self.wt.close(code, reason);
    }

    /// Sends GOAWAY on our control stream (§10.4).
    pub async fn go_away(&self, timeout: Duration) {
        // The smallest client Request ID not processed (§10.4): every request
        // that arrived so far was processed (or refused while draining).
        let request_id = Some(self.peer_requests.load(Ordering::Relaxed));
        let msg = crate::wire::control::GoAway { uri: String::new(), timeout_ms: timeout.as_millis() as u64, request_id }
            .encode_as(self.wt.version());
        if let Some(ctl) = self.control.lock().await.as_mut() {
            let _ = io::write(ctl, &msg).await;
        }
    }
}
