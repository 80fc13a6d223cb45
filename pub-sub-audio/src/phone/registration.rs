//! A phone that stays registered: when its relay session ends (the relay
//! was killed or restarted, the link was down past the idle timeout, or the
//! relay sent GOAWAY), it connects again on the schedule of
//! [`Backoff`] and re-publishes its registration and its ring
//! subscription (docs/CALLS.md §3, "Re-registration").
//!
//! Why a handle with one event stream, not a `Phone` that swaps its session
//! underneath its users: a call lives on one session (its namespaces,
//! subscriptions and Request IDs belong to it, draft-18 §3), so a call that
//! was running when the session died cannot move; it ends (the driver says
//! why) and the next call uses the new session. Each ring therefore comes
//! with the [`Phone`] of the session it arrived on, and a call placed now
//! uses [`Registration::phone`], the current one. chan_moq keeps its own
//! loop around [`Phone::register`] (its status and `moq reload` live there);
//! the CLI and other long-running phones use this.

use super::reconnect::{os_random, Backoff, BackoffPolicy};
use super::{Incoming, Phone, PhoneConfig, PhoneError};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// What a [`Registration`] reports, in order.
#[derive(Clone)]
pub enum RegistrationEvent {
    /// A call rings on the session of `phone`: take it with that phone.
    Incoming { phone: Phone, call: Incoming },
    /// The session ended; the next attempt starts after `retry_in`.
    SessionEnded { reason: String, retry_in: Duration },
    /// An attempt to connect and register again failed.
    RetryFailed { error: String, retry_in: Duration },
    /// Registered again on a new session.
    Registered,
    /// The relay refused our credentials when we came back (an expired or
    /// revoked token, draft-18 §3.5): the same token will not do, so the
    /// registration stops here; this is its last event.
    GaveUp { error: String },
}

impl std::fmt::Debug for RegistrationEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistrationEvent::Incoming { call, .. } => f.debug_struct("Incoming").field("call", call).finish(),
            RegistrationEvent::SessionEnded { reason, retry_in } => {
                f.debug_struct("SessionEnded").field("reason", reason).field("retry_in", retry_in).finish()
            }
            RegistrationEvent::RetryFailed { error, retry_in } => {
                f.debug_struct("RetryFailed").field("error", error).field("retry_in", retry_in).finish()
            }
            RegistrationEvent::Registered => f.write_str("Registered"),
            RegistrationEvent::GaveUp { error } => f.debug_struct("GaveUp").field("error", error).finish(),
        }
    }
}

/// How often the supervisor looks for a GOAWAY (the client library records
/// it; nothing wakes us for it). A drain gives seconds (moq-relay: 5 s).
const GOAWAY_POLL: Duration = Duration::from_millis(250);

/// A registration kept up by a background task; dropping it unregisters.
pub struct Registration {
    events: mpsc::UnboundedReceiver<RegistrationEvent>,
    current: watch::Receiver<Option<Phone>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(p) = self.current.borrow().clone() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { p.close().await });
            }
        }
    }
}

impl Registration {
    /// Registers once (an error here is the caller's to report: a wrong
    /// URL, certificate or token will not fix itself), then keeps the
    /// registration up in the background.
    pub async fn start(cfg: PhoneConfig, policy: BackoffPolicy) -> Result<Registration, PhoneError> {
        let (phone, rings) = Phone::register(cfg.clone()).await?;
        let (tx, events) = mpsc::unbounded_channel();
        let (current_tx, current) = watch::channel(Some(phone.clone()));
        let task = tokio::spawn(supervise(cfg, policy, phone, rings, tx, current_tx));
        Ok(Registration { events, current, task })
    }

    /// The phone of the current session, if registered now.
    pub fn phone(&self) -> Option<Phone> {
        self.current.borrow().clone()
    }

    /// The next event; `None` only if the supervisor stopped (it does not,
    /// short of a panic).
    pub async fn next(&mut self) -> Option<RegistrationEvent> {
        self.events.recv().await
    }
}

/// Serves one session after another: forwards rings, notices the end,
/// waits per the backoff, registers again.
async fn supervise(
    mut cfg: PhoneConfig,
    policy: BackoffPolicy,
    mut phone: Phone,
    mut rings: mpsc::UnboundedReceiver<Incoming>,
    tx: mpsc::UnboundedSender<RegistrationEvent>,
    current: watch::Sender<Option<Phone>>,
) {
    let epoch = Instant::now();
    let ms = || epoch.elapsed().as_millis() as u64;
    let mut backoff = Backoff::new(policy);
    backoff.connected(ms());
    loop {
        let Some(reason) = serve(&phone, &mut rings, &tx, &mut cfg).await else { return };
        current.send_replace(None);
        phone.close().await;
        let mut wait = Duration::from_millis(backoff.next_delay(ms(), os_random()));
        if tx.send(RegistrationEvent::SessionEnded { reason, retry_in: wait }).is_err() {
            return;
        }
        (phone, rings) = loop {
            tokio::time::sleep(wait).await;
            match Phone::register(cfg.clone()).await {
                Ok(ok) => break ok,
                Err(e) if e.is_auth_refusal() => {
                    let _ = tx.send(RegistrationEvent::GaveUp { error: e.to_string() });
                    return;
                }
                Err(e) => {
                    wait = Duration::from_millis(backoff.next_delay(ms(), os_random()));
                    if tx.send(RegistrationEvent::RetryFailed { error: e.to_string(), retry_in: wait }).is_err() {
                        return;
                    }
                }
            }
        };
        backoff.connected(ms());
        current.send_replace(Some(phone.clone()));
        if tx.send(RegistrationEvent::Registered).is_err() {
            return;
        }
    }
}

/// Forwards rings until the session ends; returns why (`None`: nobody
/// listens any more). A GOAWAY (draft-18 §3.6, §10.4) ends the session
/// once no call runs on it and the last call's tracks stopped lingering
/// (the relay's drain timeout still bounds that: calls are not dropped
/// for a drain), and a New Session URI in it becomes the relay to
/// reconnect to.
async fn serve(
    phone: &Phone,
    rings: &mut mpsc::UnboundedReceiver<Incoming>,
    tx: &mpsc::UnboundedSender<RegistrationEvent>,
    cfg: &mut PhoneConfig,
) -> Option<String> {
    let mut poll = tokio::time::interval(GOAWAY_POLL);
    let mut goaway_seen = false;
    loop {
        tokio::select! {
            ring = rings.recv() => match ring {
                Some(call) => tx.send(RegistrationEvent::Incoming { phone: phone.clone(), call }).ok()?,
                None => {
                    return Some(phone.session_ended().unwrap_or_else(|| "the relay ended our ring subscription".into()));
                }
            },
            _ = poll.tick() => {
                if tx.is_closed() {
                    return None;
                }
                let Some(goaway) = phone.session.goaway() else { continue };
                if !goaway_seen {
                    goaway_seen = true;
                    if let Ok(url) = goaway.uri.parse::<url::Url>() {
                        cfg.url = url;
                    }
                }
                if phone.is_idle() {
                    return Some(format!("GOAWAY from the relay (next: {})", cfg.url));
                }
            }
        }
    }
}
