//! Driving pub-sub-audio's Phone API from a load generator: the parts the
//! call-setup storm (storm.rs) and the soak (soak.rs) share — phones that
//! register in bounded parallel, live Opus ports that cost no codec CPU, and
//! the wait for a placed call to connect (docs/CALLS.md §4), with the reason
//! a call that did not connect failed.

use crate::relays::Relay;
use bytes::Bytes;
use pub_sub_audio::call::EndReason;
use pub_sub_audio::call::Timers;
use pub_sub_audio::phone::media::{AudioFrame, LivePort};
use pub_sub_audio::phone::{Incoming, Phone, PhoneConfig, PhoneError, Progress};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A live port fed with an Opus-sized packet every 20 ms until the call ends;
/// what the peer says arrives on the returned receiver.
pub fn live_port() -> (LivePort, mpsc::Receiver<AudioFrame>) {
    let (from_tx, from_rx) = mpsc::channel(16);
    let (to_tx, to_rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let pkt = Bytes::from(vec![0x78u8; 80]);
        loop {
            tick.tick().await;
            if from_tx.is_closed() {
                return;
            }
            let _ = from_tx.try_send(AudioFrame::Opus(pkt.clone()));
        }
    });
    (LivePort { from_user: from_rx, to_user: to_tx, opus: true }, to_rx)
}

/// A phone of user `user` (device `d`) on `relay`, certificate unchecked.
pub fn config(relay: &Relay, user: String) -> PhoneConfig {
    PhoneConfig {
        url: relay.url.clone(),
        tls: moq_client::Tls::DisableVerify,
        display: user.clone(),
        user,
        device: "d".into(),
        timers: Timers::default(),
        // Tokens-on relays are not stormed (see compare.rs): the call
        // policy would need one token per phone user.
        token: relay.token.clone(),
    }
}

/// A registered phone and its incoming calls.
pub type Registered = (Phone, mpsc::UnboundedReceiver<Incoming>);

/// Registers every config, at most `parallel` handshakes at once (a burst of
/// hundreds would make the relay's and our own CPU the bottleneck of the
/// setup, not what is measured). Results come keyed by the caller's `K`, in
/// the order the registrations finished; a failed one says why, and a
/// registration task that panicked is reported as an error without a key.
pub async fn register_all<K: Send + 'static>(cfgs: Vec<(K, PhoneConfig)>, parallel: usize) -> Vec<Result<(K, Registered), String>> {
    let sem = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (k, cfg) in cfgs {
        let sem = sem.clone();
        set.spawn(async move {
            let _p = sem.acquire().await;
            Phone::register(cfg).await.map(|r| (k, r)).map_err(|e: PhoneError| e.to_string())
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap_or_else(|e| Err(e.to_string())));
    }
    out
}

/// How far a placed call got, in ms since INVITE (`Phone::call`).
#[derive(Debug, Default, Clone)]
pub struct Connect {
    pub ring: Option<f64>,
    pub established: Option<f64>,
    pub first_audio: Option<f64>,
    /// The call ended before its caller heard the callee.
    pub ended: Option<EndReason>,
}

impl Connect {
    /// Why the call did not connect (the caller never heard the callee),
    /// or `None` when it did.
    pub fn failure(&self, within: Duration) -> Option<String> {
        let s = within.as_secs();
        match (self.first_audio, &self.ended) {
            (Some(_), _) => None,
            (None, Some(r)) => Some(format!("ended: {}", pub_sub_audio::phone::driver::describe(r))),
            (None, None) if self.established.is_some() => Some(format!("established, but no audio within {s} s")),
            (None, None) if self.ring.is_some() => Some(format!("rang, never established within {s} s")),
            (None, None) => Some(format!("no ringback within {s} s")),
        }
    }
}

/// Follows a placed call's progress until the caller plays the callee's
/// first frame, the call ends, or `within` passes.
pub async fn await_connect(
    rep_rx: &mut mpsc::UnboundedReceiver<Progress>,
    heard: &mut mpsc::Receiver<AudioFrame>,
    t0: Instant,
    within: Duration,
) -> Connect {
    let ms = |t0: Instant| t0.elapsed().as_secs_f64() * 1e3;
    let mut s = Connect::default();
    let deadline = tokio::time::sleep(within);
    tokio::pin!(deadline);
    while s.first_audio.is_none() && s.ended.is_none() {
        // Progress first: `Established` is reported before the first frame
        // is played, and both may be waiting here at once.
        tokio::select! {
            biased;
            p = rep_rx.recv() => match p {
                Some(Progress::Ringing { on: true }) => { s.ring.get_or_insert(ms(t0)); }
                Some(Progress::Established { .. }) => { s.established.get_or_insert(ms(t0)); }
                Some(Progress::Ended(r)) => s.ended = Some(r),
                Some(_) => {}
                None => break,
            },
            f = heard.recv() => if f.is_some() { s.first_audio = Some(ms(t0)); },
            _ = &mut deadline => break,
        }
    }
    s
}
