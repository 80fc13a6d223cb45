//! Drives one [`Call`] state machine over a MoQ session: executes its
//! outputs (announce, publish events, subscribe, media) and feeds it what
//! arrives (peer events, devices, audio, the user, time).

use super::media::{Media, MediaConfig, Recording};
/// How an ended call is described to people (CLI lines, Asterisk variables).
pub use super::progress::describe;
use super::progress::Progress;
use super::tracks::{self, Shared};
use super::Phone;
use crate::call::{Call, EarlyAudio, EndReason, Event, Input, Output, UserAction};
use moq_client::{Delivery, NamespaceEvent, SubscribeParams};
use moq_wire::coding::TrackNamespace;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Something the driver loop must react to.
pub enum Msg {
    Input(Input),
    /// An object on the `audio` of `device` (`None`: the caller's, at a callee).
    Audio {
        device: Option<String>,
        frame: AudioObject,
    },
}

/// One received audio object, as [`Media::incoming`] takes it.
pub struct AudioObject {
    pub group: u64,
    pub object: u64,
    pub properties: bytes::Bytes,
    pub payload: bytes::Bytes,
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
        n.add(moq_wire::coding::TupleField::from_utf8(d));
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
        // Sending (file audio) and playout have their own 20 ms ticks: the
        // playout tick re-phases to the first object after idle, the
        // sender's keeps its pace.
        let mut tick = tokio::time::interval(Duration::from_millis(crate::audio::FRAME_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut play_tick = tokio::time::interval(Duration::from_millis(crate::audio::FRAME_MS));
        play_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        // Frames heard before the call is established with their sender
        // (CALLS.md §6, "Before the answer").
        let mut early: EarlyAudio<AudioObject> = EarlyAudio::new();
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
                        let key = format!("audio/{device:?}");
                        let n = peer_ns(&self.peer_base, &device);
                        if let Some(old) = tasks.insert(key, tokio::spawn(follow_audio(self.phone.clone(), n, device, self.tx.clone()))) {
                            old.abort();
                        }
                    }
                    Output::Unsubscribe { device } => {
                        for track in ["events", "audio"] {
                            if let Some(t) = tasks.remove(&format!("{track}/{:?}", Some(&device))) {
                                t.abort();
                            }
                        }
                    }
                    Output::Media { on } => sending = on,
                    Output::Ring { on } => {
                        let _ = self.report.send(Progress::Ringing { on });
                    }
                    Output::Established { device } => {
                        established = true;
                        let kept = early.established(&device);
                        let _ = self.report.send(Progress::Established { device });
                        // Kept frames start the playout at once, if it is idle
                        // (quality.md §5 item 4).
                        let mut start_now = false;
                        for f in kept {
                            start_now |= media.incoming(f.group, f.object, &f.properties, &f.payload);
                        }
                        if start_now {
                            play_tick.reset_immediately();
                        }
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
                // Whichever noticed first (the session check, a peer track
                // or the lost-peer timer), say why before the end line.
                if let Some(why) = self.phone.session_ended() {
                    let _ = self.report.send(Progress::Error(format!("relay session ended: {why}")));
                }
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
                // Both ticks always run (a disabled branch would let missed
                // beats pile up and burst out when it is enabled).
                _ = tick.tick() => {
                    if self.phone.session_ended().is_some() {
                        pending = session_lost();
                        continue;
                    }
                    if sending && !media.is_live() {
                        if let Some((n, props, opus)) = media.next_outgoing() {
                            tracks::send_audio(&self.published, media.mapping(), n, props, opus).await;
                        }
                    }
                }
                _ = play_tick.tick() => {
                    if established {
                        media.playout();
                    }
                }
                m = self.rx.recv() => match m {
                    Some(Msg::Input(i)) => {
                        // The peer's report on our audio re-tunes our encoder (quality.md §4.2).
                        if let Input::Peer { event: Event::Keepalive { rx: Some(rx) }, .. } = &i {
                            media.peer_report(rx);
                        }
                        if let Input::Peer { event: Event::Invite { from, to, display, .. }, .. } = &i {
                            if self.call.state() == crate::call::State::Setup {
                                let (from, to, display) = (from.clone(), to.clone(), display.clone());
                                let _ = self.report.send(Progress::Invited { from, to, display });
                            }
                        }
                        pending = self.call.handle(i, now(start));
                    }
                    Some(Msg::Audio { device, frame }) => {
                        if let Some(f) = early.frame(&device, frame) {
                            // The tick re-phases only when the playout controller was
                            // idle (nothing to play), never on a mere gap in arrivals:
                            // under jitter, re-phasing on every 60 ms gap added early
                            // ticks, so playout ran ~1 % fast and the delay drifted
                            // up through the call (jitter60: 172 → 420 ms).
                            if media.incoming(f.group, f.object, &f.properties, &f.payload) {
                                play_tick.reset_immediately();
                            }
                        }
                        pending = self.call.handle(Input::Media { device }, now(start));
                    }
                    None => {}
                },
                a = self.user.recv() => if let Some(a) = a {
                    pending = self.call.handle(Input::User(a), now(start));
                },
                _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                    // Our report on the peer's audio rides on the keepalives (quality.md §4.1).
                    self.call.set_rx(media.rx_report());
                    pending = self.call.handle_timeout(now(start));
                }
            }
        }
    }
}

/// The relay session under the call is gone (the relay was killed or
/// restarted, the link was down past the idle timeout, or the relay closed
/// it after GOAWAY, draft-18 §3.5, §3.6): nothing of the call can reach the
/// peer any more, so it ends now, as a lost peer. The peer's tracks would
/// end it too, but only once each subscription noticed, and a caller still
/// waiting for devices would wait for its timers.
fn session_lost() -> Vec<Output> {
    vec![Output::Ended(EndReason::LostPeer)]
}

/// Caller: NAMESPACE / NAMESPACE_DONE of callee devices under `…/call/<sid>/<callee>`.
async fn watch_devices(phone: Phone, base: TrackNamespace, tx: mpsc::UnboundedSender<Msg>) {
    let prefix = moq_wire::coding::TrackNamespacePrefix { fields: base.fields[..base.fields.len() - 1].to_vec() };
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

/// What a background FETCH of events returned: the groups it covered
/// (`from..to`) and the objects found there (group, payload).
struct Fetched {
    from: u64,
    to: u64,
    objects: Vec<(u64, bytes::Bytes)>,
}

/// Runs a FETCH of events in the background and reports what it found.
fn spawn_fetch(
    (from, to): (u64, u64),
    fetch: impl std::future::Future<Output = moq_client::Result<moq_client::Fetched>> + Send + 'static,
    done: mpsc::UnboundedSender<Fetched>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let objects = match fetch.await {
            Ok(f) => f.objects().into_iter().filter(|o| o.object_id == 0).map(|o| (o.group_id, o.payload.clone())).collect(),
            Err(e) => {
                tracing::debug!(error = %e, from, to, "event FETCH failed");
                Vec::new()
            }
        };
        let _ = done.send(Fetched { from, to, objects });
    })
}

/// SUBSCRIBE to a peer's `events`, plus a Joining FETCH for what it sent
/// before; delivers each event once, in group order; the end of the
/// session (or a refused SUBSCRIBE) becomes `PeerGone`.
///
/// The rules — Joining FETCH, holes waited for, fetched or skipped, the
/// quiet-start FETCH (CALLS.md §5; draft-18 §10.7, §10.12, §2.3.1) — are
/// the sans-IO [`EventSequencer`](crate::call::EventSequencer), tested by
/// the shared vectors (docs/vectors/sequencer.json). This only feeds it
/// what arrives (subscription objects, FETCH answers, its wake time) and
/// carries out what it asks for. The Joining FETCH is Absolute, from group
/// 0 (§10.12.2), which a relay may answer from its cache or forward to the
/// publisher (§9.1: caching is optional). (A Relative Joining FETCH with a
/// huge Joining Start does not mean "everything": the start is "Joining
/// Location.Group - Joining Start", §10.12.2.1, and moq-relay-ietf refuses
/// the underflow with INVALID_RANGE.)
async fn follow_events(phone: Phone, n: TrackNamespace, device: Option<String>, tx: mpsc::UnboundedSender<Msg>) {
    use crate::call::sequencer::{self, EventSequencer};
    use moq_wire::coding::Location;
    use tokio::time::Instant;
    let mut sub = match phone.session.subscribe(&n, "events", SubscribeParams::new()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, namespace = %n, "cannot subscribe to peer events");
            let _ = tx.send(Msg::Input(Input::PeerGone { device }));
            return;
        }
    };
    let (fetched_tx, mut fetched_rx) = mpsc::unbounded_channel::<Fetched>();
    let mut fetches: Vec<JoinHandle<()>> = Vec::new();
    let joining = sub.largest().map(|l| l.group_id);
    // The sequencer's clock: milliseconds since `started`.
    let started = Instant::now();
    let ms = |t: Instant| t.duration_since(started).as_millis() as u64;
    let mut seq = EventSequencer::new(joining, 0);
    let mut wake = seq.step(0);
    let (end, late) = loop {
        while let Some(o) = seq.poll_output() {
            match o {
                sequencer::Output::Deliver { payload, .. } => deliver(&tx, &device, &payload),
                sequencer::Output::FetchJoining => {
                    let (session, id) = (phone.session.clone(), sub.request_id);
                    let f = async move { session.joining_fetch(id, 0, false).await };
                    fetches.push(spawn_fetch((0, joining.map_or(0, |g| g + 1)), f, fetched_tx.clone()));
                }
                sequencer::Output::FetchRange { from, to } => {
                    // End Location is "last + 1" (§10.12.1); object 0 of
                    // group EVERYTHING asks for all of it.
                    let end = if to >= sequencer::EVERYTHING { Location::new(to, 0) } else { Location::new(to - 1, 1) };
                    let (session, n2) = (phone.session.clone(), n.clone());
                    let f = async move { session.fetch(&n2, "events", Location::new(from, 0), end).await };
                    fetches.push(spawn_fetch((from, to), f, fetched_tx.clone()));
                }
                sequencer::Output::Skipped { from, to } => tracing::debug!(from, to, namespace = %n, "events missing; skipped"),
            }
        }
        let timer = async {
            match wake {
                Some(t) => tokio::time::sleep_until(started + Duration::from_millis(t)).await,
                None => std::future::pending().await,
            }
        };
        wake = tokio::select! {
            got = sub.next_delivery(Duration::from_secs(24 * 3600)) => match got {
                Ok(Delivery::Object(o)) if o.object_id == 0 => {
                    if o.group_id < seq.expected() {
                        tracing::debug!(group = o.group_id, "event already delivered or skipped");
                    }
                    seq.object(o.group_id, o.payload, ms(Instant::now()))
                }
                Ok(Delivery::Object(_)) | Err(moq_client::Error::Timeout(_)) => seq.step(ms(Instant::now())),
                Ok(Delivery::Done { status, reason, .. }) => {
                    // The peer's events ended (CALLS.md §4: PUBLISH_DONE ends
                    // the call) — also how a relay reports a peer whose session
                    // vanished. PUBLISH_DONE can overtake the last events on
                    // their streams (§10.11): take what still comes.
                    let mut late = Vec::new();
                    while let Ok(o) = sub.next_object(Duration::from_millis(sequencer::GAP_WAIT_MS)).await {
                        if o.object_id == 0 {
                            late.push((o.group_id, o.payload));
                        }
                    }
                    break (format!("PUBLISH_DONE (status {status}: {reason})"), late);
                }
                Err(e) => break (e.to_string(), Vec::new()),
            },
            Some(f) = fetched_rx.recv() => seq.fetched(f.from, f.to, f.objects, ms(Instant::now())),
            _ = timer => seq.step(ms(Instant::now())),
        };
    };
    for f in fetches {
        f.abort();
    }
    // The track is over: nothing will fill a hole now, so what is left goes
    // out in group order.
    seq.finish(late);
    while let Some(o) = seq.poll_output() {
        if let sequencer::Output::Deliver { payload, .. } = o {
            deliver(&tx, &device, &payload);
        }
    }
    tracing::debug!(why = %end, namespace = %n, "peer events ended");
    let _ = tx.send(Msg::Input(Input::PeerGone { device }));
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

/// SUBSCRIBE to a peer's `audio` and pass on what arrives. A refused
/// SUBSCRIBE is only logged: a ringing device that rejects withdraws its
/// namespace, and its `reject` event, not the audio, must decide the
/// outcome; an established peer that sends nothing is lost by the
/// lost-peer timer (CALLS.md §4).
async fn follow_audio(phone: Phone, n: TrackNamespace, device: Option<String>, tx: mpsc::UnboundedSender<Msg>) {
    let mut sub = match phone.session.subscribe(&n, "audio", SubscribeParams::new()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, namespace = %n, "cannot subscribe to peer audio");
            return;
        }
    };
    while let Ok(o) = sub.next_object(Duration::from_secs(3600)).await {
        let frame = AudioObject { group: o.group_id, object: o.object_id, properties: o.properties, payload: o.payload };
        let m = Msg::Audio { device: device.clone(), frame };
        if tx.send(m).is_err() {
            return;
        }
    }
}
