//! Drives one [`Call`] state machine over a MoQ session: executes its
//! outputs (announce, publish events, subscribe, media) and feeds it what
//! arrives (peer events, devices, audio, the user, time).

use super::media::{Media, MediaConfig, Recording};
use super::progress::Progress;
use super::tracks::{self, Shared};
use super::Phone;
use crate::call::{Call, EndReason, Event, Input, Output, UserAction};
use moq_interop::{NamespaceEvent, SubscribeParams};
use moq_transport::coding::TrackNamespace;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Something the driver loop must react to.
pub enum Msg {
    Input(Input),
    Audio { group: u64, object: u64, properties: bytes::Bytes, payload: bytes::Bytes },
}

/// How the call ended, and what was heard.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub reason: EndReason,
    pub established: bool,
    pub recording: Recording,
}

pub struct Driver<'a> {
    pub phone: &'a Phone,
    pub call: Call,
    /// Our namespace in this call (caller or callee namespace).
    pub own: TrackNamespace,
    /// Caller: `…/call/<sid>/<callee>` prefix of callee namespaces.
    /// Callee: the caller's namespace.
    pub peer_base: TrackNamespace,
    pub published: Shared,
    pub tx: mpsc::UnboundedSender<Msg>,
    pub rx: mpsc::UnboundedReceiver<Msg>,
    pub user: mpsc::UnboundedReceiver<UserAction>,
    /// Progress of the call ("ringing", "established", …) goes here.
    pub report: mpsc::UnboundedSender<Progress>,
}

fn peer_ns(base: &TrackNamespace, device: &Option<String>) -> TrackNamespace {
    let mut n = base.clone();
    if let Some(d) = device {
        n.add(moq_transport::coding::TupleField::from_utf8(d));
    }
    n
}

impl Driver<'_> {
    pub async fn run(mut self, first: Vec<Output>, media: MediaConfig) -> Outcome {
        let start = Instant::now();
        let _ = self.report.send(Progress::Session { sid: self.call.sid.clone() });
        let now = |s: Instant| s.elapsed().as_millis() as u64;
        let (mut media, mut live) = match Media::new(media) {
            Ok(m) => m,
            Err(e) => {
                let _ = self.report.send(Progress::Error(format!("audio: {e}")));
                return Outcome { reason: EndReason::LostPeer, established: false, recording: Recording::default() };
            }
        };
        let mut tasks: HashMap<String, JoinHandle<()>> = HashMap::new();
        let mut sending = false;
        let mut established = false;
        let mut ended = None;
        let mut tick = tokio::time::interval(Duration::from_millis(crate::audio::FRAME_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut pending = first;
        loop {
            // Execute outputs.
            for o in std::mem::take(&mut pending) {
                match o {
                    Output::Announce => match self.phone.session.publish_namespace(&self.own).await {
                        Ok(h) => self.published.lock().unwrap_or_else(|e| e.into_inner()).announce = Some(h),
                        Err(e) => {
                            let _ = self.report.send(Progress::Error(format!("cannot announce the call: {e}")));
                        }
                    },
                    // Done after a grace period by the phone (tracks::linger_then_end).
                    Output::Withdraw => {}
                    Output::Send { event } => tracks::send_event(&self.published, event).await,
                    Output::WatchDevices => {
                        tasks.insert(
                            "watch".into(),
                            tokio::spawn(watch_devices(self.phone.clone(), self.peer_base.clone(), self.tx.clone())),
                        );
                    }
                    Output::SubscribeEvents { device } => {
                        let key = format!("events/{device:?}");
                        let n = peer_ns(&self.peer_base, &device);
                        tasks.insert(key, tokio::spawn(follow_events(self.phone.clone(), n, device, self.tx.clone())));
                    }
                    Output::SubscribeAudio { device } => {
                        let n = peer_ns(&self.peer_base, &device);
                        tasks.insert("audio".into(), tokio::spawn(follow_audio(self.phone.clone(), n, device, self.tx.clone())));
                    }
                    Output::Unsubscribe { device } => {
                        if let Some(t) = tasks.remove(&format!("events/{:?}", Some(device))) {
                            t.abort();
                        }
                    }
                    Output::Media { on } => sending = on,
                    Output::Ring { on } => {
                        let _ = self.report.send(Progress::Ringing { on });
                    }
                    Output::Established { device } => {
                        established = true;
                        let _ = self.report.send(Progress::Established { device });
                    }
                    Output::Dtmf { digit } => {
                        let _ = self.report.send(Progress::Dtmf { digit });
                    }
                    Output::PeerHold { on } => {
                        let _ = self.report.send(Progress::PeerHold { on });
                    }
                    Output::Ended(r) => ended = Some(r),
                }
            }
            if let Some(reason) = ended {
                for (_, t) in tasks {
                    t.abort();
                }
                let _ = self.report.send(Progress::Ended(reason.clone()));
                return Outcome { reason, established, recording: media.finish() };
            }
            let deadline = self.call.poll_timeout().map(|t| tokio::time::Instant::from_std(start + Duration::from_millis(t)));
            tokio::select! {
                f = async { match live.as_mut() { Some(r) => r.recv().await, None => std::future::pending().await } } => match f {
                    Some(f) if sending => {
                        for (n, props, opus) in media.live_outgoing(f) {
                            tracks::send_audio(&self.published, media.mapping(), n, props, opus).await;
                        }
                    }
                    Some(_) => {}
                    None => live = None,
                },
                _ = tick.tick() => {
                    if sending && !media.is_live() {
                        if let Some((n, props, opus)) = media.next_outgoing() {
                            tracks::send_audio(&self.published, media.mapping(), n, props, opus).await;
                        }
                    }
                    if established {
                        media.playout();
                    }
                }
                m = self.rx.recv() => match m {
                    Some(Msg::Input(i)) => {
                        if let Input::Peer { event: Event::Invite { from, to, display, .. }, .. } = &i {
                            if self.call.state() == crate::call::State::Setup {
                                let (from, to, display) = (from.clone(), to.clone(), display.clone());
                                let _ = self.report.send(Progress::Invited { from, to, display });
                            }
                        }
                        pending = self.call.handle(i, now(start));
                    }
                    Some(Msg::Audio { group, object, properties, payload }) => {
                        media.incoming(group, object, &properties, &payload);
                        pending = self.call.handle(Input::Media { device: self.call_peer() }, now(start));
                    }
                    None => {}
                },
                a = self.user.recv() => if let Some(a) = a {
                    pending = self.call.handle(Input::User(a), now(start));
                },
                _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                    pending = self.call.handle_timeout(now(start));
                }
            }
        }
    }

    fn call_peer(&self) -> Option<String> {
        match self.call.role {
            crate::call::Role::Callee => None,
            crate::call::Role::Caller => self.call.peer_device(),
        }
    }
}

pub fn describe(r: &EndReason) -> String {
    match r {
        EndReason::Hangup { by_peer: true } => "hangup by peer".into(),
        EndReason::Hangup { by_peer: false } => "hangup".into(),
        EndReason::Busy => "busy".into(),
        EndReason::Declined => "declined".into(),
        EndReason::NoAnswer => "no answer".into(),
        EndReason::Offline => "offline (no device of the callee is online)".into(),
        EndReason::Cancelled => "cancelled".into(),
        EndReason::AnsweredElsewhere => "answered elsewhere".into(),
        EndReason::LostPeer => "lost peer".into(),
        EndReason::Glare => "glare".into(),
    }
}

/// Caller: NAMESPACE / NAMESPACE_DONE of callee devices under `…/call/<sid>/<callee>`.
async fn watch_devices(phone: Phone, base: TrackNamespace, tx: mpsc::UnboundedSender<Msg>) {
    let prefix = moq_transport::coding::TrackNamespacePrefix { fields: base.fields[..base.fields.len() - 1].to_vec() };
    let Ok(mut w) = phone.session.subscribe_namespace(&prefix).await else { return };
    loop {
        let ev = match w.next(Duration::from_secs(3600)).await {
            Ok(e) => e,
            Err(_) => return,
        };
        // Suffix: <callee>/<device>.
        let (suffix, gone) = match ev {
            NamespaceEvent::Namespace(s) => (s, false),
            NamespaceEvent::Done(s) => (s, true),
        };
        let Some(device) = suffix.fields.get(1).map(|f| String::from_utf8_lossy(&f.value).into_owned()) else { continue };
        let input = if gone { Input::DeviceGone { device } } else { Input::DeviceAppeared { device } };
        if tx.send(Msg::Input(input)).is_err() {
            return;
        }
    }
}

/// SUBSCRIBE to a peer's `events` plus a joining FETCH for what it already
/// sent; each event once, in order; PUBLISH_DONE becomes `PeerGone`.
///
/// Events are one object per group, groups numbered from 0 (CALLS.md §5), so
/// a gap is visible: a live event beyond the next expected group, or silence
/// after subscribing, is filled with a standalone FETCH from the relay's
/// cache. This covers relays that attach a subscriber to a shared upstream
/// subscription without the objects that were in flight.
async fn follow_events(phone: Phone, n: TrackNamespace, device: Option<String>, tx: mpsc::UnboundedSender<Msg>) {
    use moq_transport::coding::Location;
    let mut sub = match phone.session.subscribe(&n, "events", SubscribeParams::new()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, namespace = %n, "cannot subscribe to peer events");
            let _ = tx.send(Msg::Input(Input::PeerGone { device }));
            return;
        }
    };
    let mut next_group = 0u64;
    let mut pending: std::collections::BTreeMap<u64, bytes::Bytes> = Default::default();
    // Delivers buffered events in group order, as far as they are contiguous.
    let flush = |next: &mut u64, pending: &mut std::collections::BTreeMap<u64, bytes::Bytes>| {
        while let Some(p) = pending.remove(next) {
            deliver(&tx, &device, &p);
            *next += 1;
        }
    };
    // Events sent before our subscription: from the relay's cache (§10.12.2).
    // A relay with nothing cached answers INVALID_RANGE, which is fine.
    if let Ok(history) = phone.session.joining_fetch(sub.request_id, 1_000_000, true).await {
        for o in history.objects() {
            pending.entry(o.group_id).or_insert_with(|| o.payload.clone());
        }
        flush(&mut next_group, &mut pending);
    }
    let mut filled_for = None;
    loop {
        let got = sub.next_object(Duration::from_millis(500)).await;
        let gap_to = match &got {
            Ok(o) if o.group_id >= next_group => {
                pending.entry(o.group_id).or_insert_with(|| o.payload.clone());
                (o.group_id > next_group).then_some(o.group_id)
            }
            Ok(_) => None,
            // Quiet: if nothing arrived at all yet, the first events may be missing.
            Err(moq_interop::Error::Timeout(_)) => (next_group == 0 && pending.is_empty()).then_some(1 << 32),
            Err(_) => {
                flush(&mut next_group, &mut pending);
                let _ = tx.send(Msg::Input(Input::PeerGone { device: device.clone() }));
                return;
            }
        };
        if let Some(to) = gap_to.filter(|_| filled_for != Some(next_group)) {
            filled_for = Some(next_group);
            let end = if to == 1 << 32 { Location::new(to, 0) } else { Location::new(to - 1, 1) };
            if let Ok(f) = phone.session.fetch(&n, "events", Location::new(next_group, 0), end).await {
                for o in f.objects() {
                    pending.entry(o.group_id).or_insert_with(|| o.payload.clone());
                }
            }
            // Whatever the cache did not have does not exist any more: skip it.
            if !pending.contains_key(&next_group) {
                if let Some(&k) = pending.keys().next() {
                    next_group = k;
                }
            }
        }
        flush(&mut next_group, &mut pending);
    }
}

fn deliver(tx: &mpsc::UnboundedSender<Msg>, device: &Option<String>, payload: &[u8]) {
    match Event::decode(payload) {
        Ok(Event::Unknown(t)) => tracing::info!(event = t, "ignoring unknown event type"),
        Ok(event) => {
            let _ = tx.send(Msg::Input(Input::Peer { device: device.clone(), event }));
        }
        Err(e) => tracing::warn!(error = %e, "dropping malformed event"),
    }
}

async fn follow_audio(phone: Phone, n: TrackNamespace, device: Option<String>, tx: mpsc::UnboundedSender<Msg>) {
    let Ok(mut sub) = phone.session.subscribe(&n, "audio", SubscribeParams::new()).await else {
        let _ = tx.send(Msg::Input(Input::PeerGone { device }));
        return;
    };
    while let Ok(o) = sub.next_object(Duration::from_secs(3600)).await {
        let m = Msg::Audio { group: o.group_id, object: o.object_id, properties: o.properties, payload: o.payload };
        if tx.send(m).is_err() {
            return;
        }
    }
}
