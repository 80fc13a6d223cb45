//! The gateway between Asterisk and MoQ calls, written only against the
//! safe layer ([`crate::ast`]) and pub-sub-audio's call library.
//!
//! One [`Gateway`] per loaded module: a tokio runtime, one registered MoQ
//! session (user `pbx` by default, docs/CALLS.md §1) kept up with backoff,
//! and the live legs. `module reload` swaps the configuration; a changed
//! relay or identity opens a new session while calls in progress keep the
//! old one until they end.

pub mod causes;
pub mod conf;
pub mod leg;
pub mod logging;

use crate::ast::{self, Level};
use conf::Config;
use pub_sub_audio::call::Timers;
use pub_sub_audio::phone::reconnect::{os_random, Backoff, BackoffPolicy};
use pub_sub_audio::phone::{Phone, PhoneConfig};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// What `moq show channels` lists about a leg.
#[derive(Debug, Clone, Default)]
pub struct LegView {
    pub channel: String,
    pub direction: &'static str,
    pub remote: String,
    pub sid: String,
    pub state: String,
}

#[derive(Debug, Clone, Default)]
struct Status {
    connected: bool,
    last_error: Option<String>,
    sessions: u64,
}

pub struct Gateway {
    /// Taken out and shut down at unload; tasks hold `Arc<Gateway>`, so the
    /// runtime must not depend on the gateway being freed.
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    rt: tokio::runtime::Handle,
    cfg: RwLock<Arc<Config>>,
    /// The current MoQ session, if connected.
    phone: watch::Sender<Option<Phone>>,
    status: Mutex<Status>,
    legs: Mutex<BTreeMap<u64, LegView>>,
    next_leg: AtomicU64,
    /// Wakes the connection loop early (reload with a new relay / identity).
    reconnect: Notify,
}

impl Gateway {
    /// Starts the runtime and the connection loop.
    pub fn start(cfg: Config) -> Result<Arc<Gateway>, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("chan_moq")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the I/O runtime: {e}"))?;
        let gw = Arc::new(Gateway {
            rt: rt.handle().clone(),
            runtime: Mutex::new(Some(rt)),
            cfg: RwLock::new(Arc::new(cfg)),
            phone: watch::channel(None).0,
            status: Mutex::default(),
            legs: Mutex::default(),
            next_leg: AtomicU64::new(1),
            reconnect: Notify::new(),
        });
        gw.rt.spawn(connection_loop(Arc::downgrade(&gw)));
        Ok(gw)
    }

    pub fn config(&self) -> Arc<Config> {
        self.cfg.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies a re-read `moq.conf`. Calls in progress are not touched.
    pub fn reload(&self, cfg: Config) {
        let reconnect = !self.config().same_session(&cfg);
        *self.cfg.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg);
        if reconnect {
            ast::log(Level::Notice, "moq.conf: relay or identity changed; opening a new session (calls in progress keep theirs)");
            self.phone.send_replace(None);
            self.reconnect.notify_one();
        }
    }

    /// The registered session, if any.
    pub fn phone(&self) -> Option<Phone> {
        self.phone.borrow().clone()
    }

    fn track(&self, view: LegView) -> u64 {
        let id = self.next_leg.fetch_add(1, Ordering::Relaxed);
        self.legs.lock().unwrap_or_else(|e| e.into_inner()).insert(id, view);
        id
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut LegView)) {
        if let Some(v) = self.legs.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&id) {
            f(v);
        }
    }

    fn untrack(&self, id: u64) {
        self.legs.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    pub fn live_legs(&self) -> usize {
        self.legs.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// `moq show status`.
    pub fn status_text(&self) -> String {
        let c = self.config();
        let s = self.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut t = String::new();
        t += &format!("Relay:        {}\n", c.relay);
        t += &format!("Identity:     {}/{}\n", c.user, c.device);
        t += &format!("Registered:   {}\n", if s.connected { "yes" } else { "no" });
        t += &format!("Sessions:     {} opened\n", s.sessions);
        if let Some(e) = &s.last_error {
            t += &format!("Last error:   {e}\n");
        }
        t += &format!("Context:      {}\n", c.context);
        t += &format!("Codecs:       {}\n", c.codecs.iter().map(|c| format!("{c:?}").to_lowercase()).collect::<Vec<_>>().join(", "));
        t += &format!("Active calls: {}\n", self.live_legs());
        t
    }

    /// `moq show channels`.
    pub fn channels_text(&self) -> String {
        let legs = self.legs.lock().unwrap_or_else(|e| e.into_inner());
        let mut t = format!("{:<28} {:<4} {:<16} {:<34} {}\n", "Channel", "Dir", "Remote", "Session", "State");
        for v in legs.values() {
            t += &format!("{:<28} {:<4} {:<16} {:<34} {}\n", v.channel, v.direction, v.remote, v.sid, v.state);
        }
        t += &format!("{} active MOQ channel{}\n", legs.len(), if legs.len() == 1 { "" } else { "s" });
        t
    }

    /// Stops everything: every task is dropped (ending the MoQ sessions)
    /// and the runtime's threads are joined, so no code of this module runs
    /// after unload returns. Channels must be gone first (see unload).
    pub fn shutdown(&self) {
        self.phone.send_replace(None);
        if let Some(rt) = self.runtime.lock().unwrap_or_else(|e| e.into_inner()).take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

fn phone_config(c: &Config) -> PhoneConfig {
    let timers = Timers { no_answer: c.no_answer.as_millis() as u64, ..Timers::default() };
    PhoneConfig {
        url: c.relay.clone(),
        tls: c.tls(),
        user: c.user.clone(),
        device: c.device.clone(),
        display: c.display.clone(),
        timers,
        token: c.token.clone(),
    }
}

/// Keeps one registered session up: register, serve incoming calls until
/// the session ends, then retry on pub-sub-audio's schedule (the phone's
/// [`Backoff`]: the ceiling starts at `reconnect_ms` and doubles to 30 s,
/// each wait drawn uniformly below it, so PBXs that lost the same relay do
/// not come back in the same millisecond; a session up for 10 s resets it).
async fn connection_loop(gw: std::sync::Weak<Gateway>) {
    let epoch = tokio::time::Instant::now();
    let ms = || epoch.elapsed().as_millis() as u64;
    let policy = |first: Duration| BackoffPolicy { first: first.as_millis() as u64, cap: 30_000, stable: 10_000 };
    let mut backoff = match gw.upgrade() {
        Some(g) => Backoff::new(policy(g.config().reconnect)),
        None => return,
    };
    // Register only once Asterisk can run a call: loaded at boot (or during a
    // `core restart`), the module is up before the core is, and a call taken
    // then could only be declined (ast_pbx_start refuses until fully booted).
    // The core announces no event a module can await here, so the flag is
    // polled, briefly.
    while !crate::ast::fully_booted() {
        if gw.upgrade().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loop {
        let Some(g) = gw.upgrade() else { return };
        let cfg = g.config();
        match Phone::register(phone_config(&cfg)).await {
            Ok((phone, mut incoming)) => {
                phone.set_multi_line(true);
                {
                    let mut s = g.status.lock().unwrap_or_else(|e| e.into_inner());
                    s.connected = true;
                    s.sessions += 1;
                    s.last_error = None;
                }
                ast::log(Level::Notice, &format!("chan_moq: registered as {}/{} on {}", cfg.user, cfg.device, cfg.relay));
                g.phone.send_replace(Some(phone.clone()));
                backoff.connected(ms());
                drop(g);
                loop {
                    let Some(g) = gw.upgrade() else { return };
                    tokio::select! {
                        inc = incoming.recv() => match inc {
                            Some(inc) => leg::inbound(&g, phone.clone(), inc),
                            None => break,
                        },
                        _ = g.reconnect.notified() => break,
                    }
                }
                let Some(g) = gw.upgrade() else { return };
                g.status.lock().unwrap_or_else(|e| e.into_inner()).connected = false;
                g.phone.send_if_modified(|p| p.take().is_some());
                ast::log(Level::Warning, "chan_moq: the relay session ended; reconnecting");
            }
            Err(e) => {
                let msg = e.to_string();
                let mut s = g.status.lock().unwrap_or_else(|e| e.into_inner());
                if s.last_error.as_deref() != Some(&msg) {
                    ast::log(Level::Warning, &format!("chan_moq: {msg}; retrying with backoff"));
                }
                s.connected = false;
                s.last_error = Some(msg);
            }
        }
        let Some(g) = gw.upgrade() else { return };
        let wait = Duration::from_millis(backoff.next_delay(ms(), os_random()));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            // `moq reload` (or a new moq.conf): start over from its reconnect_ms.
            _ = g.reconnect.notified() => backoff = Backoff::new(policy(g.config().reconnect)),
        }
    }
}

/// The gateway of the loaded module.
pub static GATEWAY: RwLock<Option<Arc<Gateway>>> = RwLock::new(None);

pub fn gateway() -> Option<Arc<Gateway>> {
    GATEWAY.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Reads `moq.conf` from Asterisk's configuration directory; a missing
/// file means defaults.
pub fn read_config() -> Result<Config, String> {
    let path = ast::config_dir().join("moq.conf");
    match std::fs::read_to_string(&path) {
        Ok(text) => Config::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            ast::log(Level::Notice, &format!("{} not found; using defaults", path.display()));
            Ok(Config::default())
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}
