//! The async shell of a phone: one MoQ session to any draft-18 relay,
//! registration and presence, ringing, and one [`driver::Driver`] per call
//! (docs/CALLS.md). The call logic itself is the sans-IO [`crate::call`].
//! A [`Phone`] is one session; [`Registration`] keeps a phone registered
//! across sessions (relay restarts, partitions, GOAWAY) on the schedule of
//! [`reconnect`] (docs/CALLS.md §3 "Re-registration").

pub mod driver;
pub mod media;
pub mod progress;
pub mod reconnect;
pub mod registration;
pub mod tracks;

use crate::call::{Address, Call, Namespaces, Timers, UserAction};
use driver::{Driver, Outcome};
use media::MediaConfig;
use moq_client::{NamespaceEvent, Session, Tls};
use moq_wire::coding::{TrackNamespace, TrackNamespacePrefix, TupleField};
pub use progress::Progress;
pub use registration::{Registration, RegistrationEvent};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Builds a MoQ namespace from CALLS.md fields.
pub fn ns(fields: Vec<String>) -> TrackNamespace {
    TrackNamespace { fields: fields.iter().map(|f| TupleField::from_utf8(f)).collect() }
}

fn prefix(fields: Vec<String>) -> TrackNamespacePrefix {
    TrackNamespacePrefix { fields: fields.iter().map(|f| TupleField::from_utf8(f)).collect() }
}

fn path(n: &TrackNamespace) -> String {
    n.fields.iter().map(|f| String::from_utf8_lossy(&f.value).into_owned()).collect::<Vec<_>>().join("/")
}

#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    #[error("cannot reach the relay at {url}: {source}")]
    Connect { url: String, source: moq_client::Error },
    #[error("the relay refused {what}: {source}")]
    Refused { what: String, source: moq_client::Error },
    #[error("{0}")]
    Address(#[from] crate::call::AddressError),
    #[error("no incoming call within {0:?}")]
    NoCall(Duration),
}

impl PhoneError {
    /// The relay refused our token at SETUP (see
    /// [`moq_client::Error::is_auth_refusal`]): retrying with it is futile.
    pub fn is_auth_refusal(&self) -> bool {
        matches!(self, PhoneError::Connect { source, .. } | PhoneError::Refused { source, .. } if source.is_auth_refusal())
    }
}

#[derive(Debug, Clone)]
pub struct PhoneConfig {
    pub url: url::Url,
    pub tls: Tls,
    pub user: String,
    pub device: String,
    pub display: String,
    pub timers: Timers,
    /// Access token for the relay (a CAT from `moq-relay token`), if it wants one.
    pub token: Option<Vec<u8>>,
}

/// An incoming call seen under our ring prefix.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub sid: String,
    pub from: String,
}

/// A registered device. Cheap to clone.
#[derive(Clone)]
pub struct Phone {
    pub session: Session,
    pub cfg: Arc<PhoneConfig>,
    /// Our call namespaces (path) → what we publish there.
    published: Arc<Mutex<HashMap<String, tracks::Shared>>>,
    busy: Arc<Mutex<bool>>,
    /// A gateway takes any number of calls at once (never busy by itself).
    multi_line: Arc<std::sync::atomic::AtomicBool>,
    /// Calls running on this session ([`Phone::call`], [`Phone::take`]).
    calls: Arc<AtomicUsize>,
    /// The registration's request stream and the background tasks serving
    /// this session, released by [`Phone::close`] (a reconnecting phone
    /// must not keep a dead session's streams and sockets).
    held: Arc<Mutex<Held>>,
}

#[derive(Default)]
struct Held {
    registration: Option<moq_client::RequestHandle>,
    tasks: Vec<tokio::task::AbortHandle>,
}

/// Counts a call in progress for as long as it lives.
struct CallGuard(Arc<AtomicUsize>);

impl CallGuard {
    fn new(calls: &Arc<AtomicUsize>) -> Self {
        calls.fetch_add(1, Ordering::Relaxed);
        CallGuard(calls.clone())
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A token as `moq-relay token` prints it (base64url, padding tolerated).
pub fn parse_token(text: &str) -> Option<Vec<u8>> {
    moq_client::token_from_text(text)
}

/// A device's session settings: a 5 s QUIC idle timeout with 300 ms
/// keep-alives (docs/CALLS.md §3, §7), so the relay drops a device that
/// vanished within about 5 s — ending its registration, its presence and
/// any call still ringing it — instead of after the generic 30 s, while a
/// 2 s outage of its link (a hand-over) leaves the session and the call up
/// (docs/design/quality.md §3.6). The handshake may take 10 s and SETUP 5 s:
/// a phone on a lossy link (5 % bursty loss in bench/quality) loses Initial
/// packets, and QUIC's retransmission backs off (RFC 9002 §6.2) past the
/// 1.5 s that suits a test client.
pub fn device_options(token: Option<Vec<u8>>) -> moq_client::Options {
    moq_client::Options {
        token,
        handshake_timeout: std::time::Duration::from_secs(10),
        setup_timeout: std::time::Duration::from_secs(5),
        idle_timeout: std::time::Duration::from_secs(5),
        keep_alive: std::time::Duration::from_millis(300),
        implementation: format!("moq-phone/{}", env!("CARGO_PKG_VERSION")),
        ..Default::default()
    }
}

impl Phone {
    /// Connects, registers `…/users/<user>/<device>` and starts answering the
    /// relay's SUBSCRIBEs for our tracks.
    pub async fn register(cfg: PhoneConfig) -> Result<(Phone, mpsc::UnboundedReceiver<Incoming>), PhoneError> {
        crate::call::address::check_name(&cfg.user)?;
        crate::call::address::check_name(&cfg.device)?;
        let session = moq_client::Client::connect_with(&cfg.url, &cfg.tls, &device_options(cfg.token.clone()))
            .await
            .map_err(|source| PhoneError::Connect { url: cfg.url.to_string(), source })?;
        let phone = Phone {
            session,
            cfg: Arc::new(cfg),
            published: Default::default(),
            busy: Default::default(),
            multi_line: Default::default(),
            calls: Default::default(),
            held: Default::default(),
        };
        let reg = phone
            .session
            .publish_namespace(&ns(Namespaces::device(&phone.cfg.user, &phone.cfg.device)))
            .await
            .map_err(|source| PhoneError::Refused { what: "the registration".into(), source })?;
        // Keep the registration for the life of the session.
        phone.held().registration = Some(reg);
        let ring = phone
            .session
            .subscribe_namespace(&prefix(Namespaces::ring_prefix(&phone.cfg.user)))
            .await
            .map_err(|source| PhoneError::Refused { what: "the ring subscription".into(), source })?;
        let (tx, rx) = mpsc::unbounded_channel();
        let ring_task = tokio::spawn(watch_ring(ring, tx)).abort_handle();
        let serve_task = tokio::spawn(serve_subscribes(phone.clone())).abort_handle();
        phone.held().tasks.extend([ring_task, serve_task]);
        Ok((phone, rx))
    }

    /// Connects and registers like [`Phone::register`], then stays
    /// registered: see [`Registration`].
    pub async fn stay_registered(cfg: PhoneConfig, policy: reconnect::BackoffPolicy) -> Result<Registration, PhoneError> {
        Registration::start(cfg, policy).await
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls (placed or taken) running on this session now.
    pub fn calls_in_progress(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// No call runs on this session and no ended call's tracks linger
    /// (so closing it now loses no final event, [`tracks::LINGER`]).
    pub fn is_idle(&self) -> bool {
        self.calls_in_progress() == 0 && self.published.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    /// Why this phone's session ended, if it has: the relay closed it, went
    /// silent past the idle timeout, or we closed it.
    pub fn session_ended(&self) -> Option<String> {
        self.session.close_reason()
    }

    /// Leaves the relay: stops serving this session, closes it (NO_ERROR,
    /// draft-18 §3.5) and releases its registration. Calls still running on
    /// it end as their peer's tracks do.
    pub async fn close(&self) {
        let (registration, tasks) = {
            let mut held = self.held();
            (held.registration.take(), std::mem::take(&mut held.tasks))
        };
        for t in tasks {
            t.abort();
        }
        let _ = self.session.clone().close().await;
        drop(registration);
    }

    fn publish_space(&self, own: &TrackNamespace) -> tracks::Shared {
        let shared = tracks::Shared::default();
        self.published.lock().unwrap_or_else(|e| e.into_inner()).insert(path(own), shared.clone());
        shared
    }

    /// Keeps the call's tracks up for [`tracks::LINGER`], then ends them and
    /// forgets the namespace.
    fn release(&self, own: &TrackNamespace) {
        let this = self.clone();
        let key = path(own);
        tokio::spawn(async move {
            let shared = this.published.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
            if let Some(s) = shared {
                tracks::linger_then_end(s).await;
            }
            this.published.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        });
    }

    /// Places a call and runs it to the end. `report` receives progress lines.
    pub async fn call(
        &self,
        to: &Address,
        media: MediaConfig,
        user: mpsc::UnboundedReceiver<UserAction>,
        report: mpsc::UnboundedSender<Progress>,
    ) -> Outcome {
        let sid = new_sid();
        let own = ns(Namespaces::caller(&to.user, &sid, &self.cfg.user));
        let peer_base = ns(Namespaces::call_prefix(&sid).into_iter().chain([to.user.clone()]).collect());
        let published = self.publish_space(&own);
        let (call, first) = Call::outgoing(&sid, &self.cfg.user, &to.to_string(), &self.cfg.display, self.cfg.timers, 0);
        let _counted = CallGuard::new(&self.calls);
        *self.busy.lock().unwrap_or_else(|e| e.into_inner()) = true;
        let out = self.drive(call, own.clone(), peer_base, published, first, media, user, report).await;
        *self.busy.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.release(&own);
        out
    }

    /// Takes part in an incoming call: rings, then answers / declines as the
    /// user says (through `user`), and runs the call to the end.
    pub async fn take(
        &self,
        inc: &Incoming,
        media: MediaConfig,
        user: mpsc::UnboundedReceiver<UserAction>,
        report: mpsc::UnboundedSender<Progress>,
    ) -> Outcome {
        let own = ns(Namespaces::callee(&inc.sid, &self.cfg.user, &self.cfg.device));
        let peer_base = ns(Namespaces::caller(&self.cfg.user, &inc.sid, &inc.from));
        let published = self.publish_space(&own);
        let busy = *self.busy.lock().unwrap_or_else(|e| e.into_inner()) && !self.multi_line.load(std::sync::atomic::Ordering::Relaxed);
        let (call, first) = Call::incoming(&inc.sid, &self.cfg.device, busy, self.cfg.timers, 0);
        let _counted = CallGuard::new(&self.calls);
        if !busy {
            *self.busy.lock().unwrap_or_else(|e| e.into_inner()) = true;
        }
        let out = self.drive(call, own.clone(), peer_base, published, first, media, user, report).await;
        if !busy {
            *self.busy.lock().unwrap_or_else(|e| e.into_inner()) = false;
        }
        self.release(&own);
        out
    }

    /// Lets this device take calls while in a call (a PBX gateway's many lines).
    pub fn set_multi_line(&self, on: bool) {
        self.multi_line.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Marks this device busy (already in a call elsewhere), for tests and gateways.
    pub fn set_busy(&self, busy: bool) {
        *self.busy.lock().unwrap_or_else(|e| e.into_inner()) = busy;
    }

    #[allow(clippy::too_many_arguments)]
    async fn drive(
        &self,
        call: Call,
        own: TrackNamespace,
        peer_base: TrackNamespace,
        published: tracks::Shared,
        first: Vec<crate::call::Output>,
        media: MediaConfig,
        user: mpsc::UnboundedReceiver<UserAction>,
        report: mpsc::UnboundedSender<Progress>,
    ) -> Outcome {
        let (tx, rx) = mpsc::unbounded_channel();
        let d = Driver { phone: self, call, own, peer_base, published, tx, rx, user, report };
        d.run(first, media).await
    }
}

/// A fresh session id: 16 random bytes as hex (CALLS.md §1).
pub fn new_sid() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("OS randomness");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn watch_ring(mut ring: moq_client::NamespaceSubscription, tx: mpsc::UnboundedSender<Incoming>) {
    loop {
        match ring.next(Duration::from_secs(24 * 3600)).await {
            Ok(NamespaceEvent::Namespace(s)) if s.fields.len() == 2 => {
                let f = |i: usize| String::from_utf8_lossy(&s.fields[i].value).into_owned();
                if tx.send(Incoming { sid: f(0), from: f(1) }).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(moq_client::Error::Timeout(_)) => {}
            Err(_) => return,
        }
    }
}

/// Answers the relay's SUBSCRIBEs and FETCHes for tracks in our call
/// namespaces.
async fn serve_subscribes(phone: Phone) {
    use moq_client::PublisherRequest;
    loop {
        let req = match phone.session.accept_publisher_request(Duration::from_secs(24 * 3600)).await {
            Ok(r) => r,
            Err(moq_client::Error::Timeout(_)) => continue,
            Err(_) => return,
        };
        match req {
            PublisherRequest::Subscribe(req) => {
                let space = path(req.namespace());
                let shared = phone.published.lock().unwrap_or_else(|e| e.into_inner()).get(&space).cloned();
                match shared {
                    Some(s) => {
                        tokio::spawn(tracks::serve(s, req, space));
                    }
                    None => {
                        tokio::spawn(async move {
                            let _ = req.reject(0x10, "no such call here").await;
                        });
                    }
                }
            }
            PublisherRequest::Fetch(f) => {
                tokio::spawn(serve_fetch(phone.clone(), f));
            }
        }
    }
}

/// A FETCH the relay forwarded to us, the original publisher (draft-18
/// §10.12): Standalone by track name, Joining by the subscription it names.
async fn serve_fetch(phone: Phone, f: moq_client::IncomingFetch) {
    use moq_wire::message::RequestErrorCode;
    let found = {
        let published = phone.published.lock().unwrap_or_else(|e| e.into_inner());
        match (f.track(), f.joining()) {
            (Some((n, track)), _) => {
                let space = path(n);
                published.get(&space).cloned().map(|s| (s, space, track, f.range()))
            }
            (None, Some((id, start, relative))) => published.iter().find_map(|(space, s)| {
                let (track, joining) = s.lock().unwrap_or_else(|e| e.into_inner()).joined(id)?;
                Some((s.clone(), space.clone(), track, tracks::joining_range(joining, start, relative)))
            }),
            (None, None) => None,
        }
    };
    match found {
        Some((s, space, track, Some(range))) => tracks::serve_fetch(&s, f, &space, &track, range).await,
        // §10.12.2: no objects when the joined subscription was accepted.
        Some((_, _, _, None)) => {
            let _ = f.reject(RequestErrorCode::InvalidRange as u64, "nothing to join").await;
        }
        None if f.joining().is_some() => {
            let _ = f.reject(RequestErrorCode::InvalidJoiningRequestId as u64, "no such subscription").await;
        }
        None => {
            let _ = f.reject(RequestErrorCode::DoesNotExist as u64, "no such call here").await;
        }
    }
}
