//! State shared by every session of one relay process: the router, the live
//! sessions, namespace watchers, limits and metrics.

use crate::metrics::Metrics;
use crate::routing::router::{Notice, Router, SessionId};
use crate::routing::signal::Signal;
use crate::session::handle::SessionHandle;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Resource limits; every buffer the relay keeps is bounded by one of these.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest object (payload or properties) accepted on a data stream.
    pub max_object_size: usize,
    /// Outbound queue per session, in bytes; the oldest data is dropped beyond it.
    pub session_queue_bytes: usize,
    /// Per-track cache for FETCH.
    pub cache_groups: usize,
    pub cache_bytes: usize,
    /// Time a peer has to send SETUP, a request's first message or a data stream header.
    pub handshake_timeout: Duration,
    /// How long a header, object or control message begun and not finished
    /// may wait for its next bytes before the session closes with
    /// DATA_STREAM_TIMEOUT or CONTROL_MESSAGE_TIMEOUT (draft-18 §3.5). Idle
    /// time between whole objects or messages is never timed out.
    pub stall_timeout: Duration,
    /// Upper bound on how long a SUBSCRIBE may wait for its track to appear.
    pub max_rendezvous: Duration,
    /// Time a SUBSCRIBE waits for the upstream publisher's answer.
    pub upstream_timeout: Duration,
    /// Queued NAMESPACE notices per SUBSCRIBE_NAMESPACE before its stream is reset.
    pub namespace_queue: usize,
    /// Requests a session may hold open, and how fast it may send new ones.
    pub quota: crate::routing::quota::QuotaLimits,
    /// Sessions (QUIC connections) open at once from one source address.
    pub sessions_per_address: usize,
    /// Sessions open at once in total (QUIC and WebRTC).
    pub sessions: usize,
    /// A session whose peer sends nothing for this long is gone (QUIC idle timeout).
    pub idle_timeout: Duration,
    /// How long a session may stay after its token expired (GOAWAY at expiry).
    pub token_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_object_size: 1 << 20,
            session_queue_bytes: 1 << 20,
            cache_groups: 32,
            cache_bytes: 256 << 10,
            handshake_timeout: Duration::from_secs(10),
            // Over twice a 2 s outage plus QUIC's backed-off retransmission,
            // which a call must survive with a unit caught half-way.
            stall_timeout: Duration::from_secs(5),
            max_rendezvous: Duration::from_secs(30),
            upstream_timeout: Duration::from_secs(10),
            namespace_queue: 1024,
            quota: Default::default(),
            sessions_per_address: 256,
            sessions: 10_000,
            idle_timeout: Duration::from_secs(30),
            token_grace: Duration::from_secs(600),
        }
    }
}

pub struct Relay {
    router: Mutex<Router>,
    /// Notified whenever a namespace or track appears, to wake rendezvous waiters.
    pub changed: Signal,
    sessions: Mutex<HashMap<SessionId, Arc<SessionHandle>>>,
    watchers: Mutex<HashMap<u64, mpsc::Sender<Notice>>>,
    next_id: AtomicU64,
    pub limits: Limits,
    pub metrics: Metrics,
    /// Set once a GOAWAY went out: new requests are refused with GOING_AWAY.
    pub going_away: watch::Sender<bool>,
    /// Token checks; `None`: an open relay.
    pub auth: Option<crate::auth::Auth>,
    /// Who may open sessions when `auth` is `None` (open to all, or to this machine).
    pub access: crate::login::Access,
    /// Connections per source address.
    pub per_address: Mutex<crate::routing::quota::PerAddress>,
}

impl Relay {
    pub fn new(limits: Limits) -> Arc<Self> {
        Self::with_auth(limits, None)
    }

    /// Tokens when `auth` is given, else open to everyone.
    pub fn with_auth(limits: Limits, auth: Option<crate::auth::Auth>) -> Arc<Self> {
        let access = if auth.is_some() { crate::login::Access::Tokens } else { crate::login::Access::Open };
        Self::with_access(limits, auth, access)
    }

    pub fn with_access(limits: Limits, auth: Option<crate::auth::Auth>, access: crate::login::Access) -> Arc<Self> {
        Arc::new(Self {
            router: Mutex::new(Router::with_cache(limits.cache_groups, limits.cache_bytes)),
            changed: Signal::new(),
            sessions: Mutex::new(HashMap::new()),
            watchers: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            limits,
            metrics: Metrics::default(),
            going_away: watch::channel(false).0,
            auth,
            access,
            per_address: Mutex::new(Default::default()),
        })
    }

    /// A relay-unique id (sessions, subscriptions, streams, watches).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn router(&self) -> MutexGuard<'_, Router> {
        self.router.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn bump(&self) {
        self.changed.notify();
    }

    pub fn add_session(&self, s: Arc<SessionHandle>) {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(s.id, s);
    }
    pub fn remove_session(&self, id: SessionId) {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }
    pub fn session(&self, id: SessionId) -> Option<Arc<SessionHandle>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned()
    }
    pub fn sessions(&self) -> Vec<Arc<SessionHandle>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    pub fn add_watcher(&self, id: u64, tx: mpsc::Sender<Notice>) {
        self.watchers.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
    }
    pub fn remove_watcher(&self, id: u64) {
        self.watchers.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        self.router().unwatch(id);
    }

    /// Delivers namespace notices without waiting; a watcher whose queue is
    /// full loses its channel, and its handler resets the stream (§10.18 allows
    /// resetting a blocked SUBSCRIBE_NAMESPACE response stream).
    pub fn notify(&self, notices: Vec<Notice>) {
        if notices.is_empty() {
            return;
        }
        let mut w = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        for n in notices {
            let id = n.watch();
            if let Some(tx) = w.get(&id) {
                if tx.try_send(n).is_err() {
                    w.remove(&id);
                }
            }
        }
    }
}
