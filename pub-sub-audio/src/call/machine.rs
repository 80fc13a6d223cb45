//! One call, seen from one device, as a sans-IO state machine
//! (docs/CALLS.md §4). Inputs are what the device saw on the relay, what its
//! user did, and the time in milliseconds; outputs say what to announce,
//! publish and subscribe, and what to show. No clock, no socket: the same
//! vectors (`docs/vectors/calls.json`) drive this and the web phone's copy.

use super::event::{Event, RejectReason};
use crate::audio::feedback::Report;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub type Millis = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Caller,
    Callee,
}

/// Why a call ended, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum EndReason {
    /// Either side hung up after the call was established.
    Hangup {
        by_peer: bool,
    },
    Busy,
    Declined,
    NoAnswer,
    /// No device of the callee was online.
    Offline,
    /// The caller gave up before an answer (or, at the callee, the caller did).
    Cancelled,
    AnsweredElsewhere,
    /// The peer vanished (session gone or silent for `lost_peer` ms).
    LostPeer,
    Glare,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum UserAction {
    Answer,
    Decline,
    Hangup,
    Dtmf {
        digit: char,
    },
    Hold,
    Unhold,
    Mute {
        on: bool,
    },
    /// Give up an outgoing call that lost a glare (§4 "Glare").
    CancelGlare,
}

/// What the device observed. `device` is the callee device a caller hears
/// from; at a callee, peer input is from the caller and `device` is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "in", rename_all = "kebab-case")]
pub enum Input {
    /// Caller: NAMESPACE `<callee>/<device>` under `…/call/<sid>`.
    DeviceAppeared {
        device: String,
    },
    /// Caller: NAMESPACE_DONE for that device.
    DeviceGone {
        device: String,
    },
    /// An object on a peer's `events` track.
    Peer {
        device: Option<String>,
        event: Event,
    },
    /// Any object on a peer's `audio` track (proves the peer is alive).
    Media {
        device: Option<String>,
    },
    /// PUBLISH_DONE / NAMESPACE_DONE for the peer's tracks.
    PeerGone {
        device: Option<String>,
    },
    User(UserAction),
}

/// What the device must do or show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "out", rename_all = "kebab-case")]
pub enum Output {
    /// PUBLISH_NAMESPACE our namespace for this call (caller or callee namespace).
    Announce,
    /// Withdraw it, ending our tracks.
    Withdraw,
    /// Publish on our `events` track.
    Send {
        event: Event,
    },
    /// Caller: SUBSCRIBE_NAMESPACE `…/call/<sid>`.
    WatchDevices,
    /// SUBSCRIBE (+ joining FETCH) to a peer's `events`.
    SubscribeEvents {
        device: Option<String>,
    },
    /// SUBSCRIBE to a peer's `audio`: the caller does it for every device
    /// that rings, the callee on its own `answer` (CALLS.md §4), so the
    /// first frame after the answer is already on its way. Until the call
    /// is established with that device, its frames are kept, not played
    /// (CALLS.md §6, "Before the answer").
    SubscribeAudio {
        device: Option<String>,
    },
    /// Stop following a callee device that lost the race (its `events` and
    /// `audio`).
    Unsubscribe {
        device: String,
    },
    /// Start / stop sending our audio (the callee starts at its own
    /// `answer`, the caller once established).
    Media {
        on: bool,
    },
    /// Callee: ring; caller: ringback tone.
    Ring {
        on: bool,
    },
    /// The call is up with `device`: play its audio, frames kept from
    /// before the answer first.
    Established {
        device: Option<String>,
    },
    Dtmf {
        digit: char,
    },
    PeerHold {
        on: bool,
    },
    Ended(EndReason),
}

/// Timer lengths (docs/CALLS.md §7), in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timers {
    pub devices_appear: Millis,
    pub no_answer: Millis,
    pub keepalive: Millis,
    pub lost_peer: Millis,
}

/// Digits a callee may key between answer and connect (CALLS.md §5).
pub const MAX_QUEUED_DTMF: usize = 32;

impl Default for Timers {
    fn default() -> Self {
        // lost_peer outlasts a 2 s hand-over (docs/design/quality.md §3.6).
        Self { devices_appear: 3_000, no_answer: 60_000, keepalive: 500, lost_peer: 5_000 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Caller: invited, no device ringing yet. Callee: waiting for the INVITE.
    Setup,
    Ringing,
    /// Callee: answered, waiting for the caller's `connect`.
    Answered,
    Established,
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeviceState {
    Seen,
    Ringing,
    Rejected(RejectReason),
}

#[derive(Debug, Clone)]
pub struct Call {
    pub sid: String,
    pub role: Role,
    me: String,
    state: State,
    timers: Timers,
    /// Caller: callee devices and what they said.
    devices: BTreeMap<String, DeviceState>,
    /// The peer device of an established call (caller side).
    peer: Option<String>,
    busy: bool,
    on_hold: bool,
    /// Callee: digits keyed between answering and the caller's `connect`,
    /// sent once established (an IVR's first prompt often follows Answer()
    /// at once); at most [`MAX_QUEUED_DTMF`].
    queued_dtmf: Vec<char>,
    deadline_devices: Option<Millis>,
    deadline_answer: Option<Millis>,
    next_keepalive: Option<Millis>,
    lost_at: Option<Millis>,
    /// What our keepalives report on the audio we receive (quality.md §4.1).
    rx: Option<Report>,
}

impl Call {
    fn new(sid: &str, role: Role, me: &str, timers: Timers) -> Self {
        Self {
            sid: sid.into(),
            role,
            me: me.into(),
            state: State::Setup,
            timers,
            devices: BTreeMap::new(),
            peer: None,
            busy: false,
            on_hold: false,
            queued_dtmf: Vec::new(),
            deadline_devices: None,
            deadline_answer: None,
            next_keepalive: None,
            lost_at: None,
            rx: None,
        }
    }

    /// Starts an outgoing call: `me` is the caller's user, `invite` its first event.
    pub fn outgoing(sid: &str, me: &str, to: &str, display: &str, timers: Timers, now: Millis) -> (Self, Vec<Output>) {
        let mut c = Self::new(sid, Role::Caller, me, timers);
        c.deadline_devices = Some(now + timers.devices_appear);
        c.deadline_answer = Some(now + timers.no_answer);
        let invite = Event::Invite { sid: sid.into(), from: me.into(), to: to.into(), display: display.into() };
        (c, vec![Output::Announce, Output::Send { event: invite }, Output::WatchDevices])
    }

    /// A NAMESPACE under our ring prefix: `me` is this device's id, `busy`
    /// whether the device is already in a call.
    pub fn incoming(sid: &str, me: &str, busy: bool, timers: Timers, now: Millis) -> (Self, Vec<Output>) {
        let mut c = Self::new(sid, Role::Callee, me, timers);
        c.busy = busy;
        // The caller must send its INVITE soon; otherwise treat it as gone.
        c.lost_at = Some(now + timers.devices_appear);
        (c, vec![Output::SubscribeEvents { device: None }])
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The listener's report the next keepalives carry as `rx` (quality.md
    /// §4.1). An input like any other: the machine measures nothing, the
    /// shell's loss meter (`audio::feedback`) does and hands it in.
    pub fn set_rx(&mut self, rx: Option<Report>) {
        self.rx = rx;
    }

    /// The callee device of an established call (caller side).
    pub fn peer_device(&self) -> Option<String> {
        self.peer.clone()
    }

    /// The earliest time [`Self::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.state == State::Ended {
            return None;
        }
        [self.deadline_devices, self.deadline_answer, self.next_keepalive, self.lost_at].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now: Millis) -> Vec<Output> {
        let mut out = Vec::new();
        if self.state == State::Ended {
            return out;
        }
        if self.lost_at.is_some_and(|t| now >= t) {
            return self.end(EndReason::LostPeer, false, out);
        }
        if self.deadline_devices.is_some_and(|t| now >= t) {
            self.deadline_devices = None;
            if self.state == State::Setup && !self.devices.values().any(|d| *d != DeviceState::Rejected(RejectReason::Decline)) {
                let reason = if self.devices.is_empty() { EndReason::Offline } else { self.rejection() };
                return self.end(reason, false, out);
            }
        }
        if self.deadline_answer.is_some_and(|t| now >= t) {
            self.deadline_answer = None;
            out.push(Output::Send { event: Event::Cancel { reason: "no-answer".into() } });
            return self.end(EndReason::NoAnswer, false, out);
        }
        if let Some(t) = self.next_keepalive.filter(|t| now >= *t) {
            out.push(Output::Send { event: Event::Keepalive { rx: self.rx } });
            self.next_keepalive = Some(t.max(now) + self.timers.keepalive);
        }
        out
    }

    pub fn handle(&mut self, input: Input, now: Millis) -> Vec<Output> {
        if self.state == State::Ended {
            return Vec::new();
        }
        match (self.role, input) {
            (_, Input::User(a)) => self.user(a, now),
            (Role::Caller, Input::DeviceAppeared { device }) => {
                if self.state == State::Established || self.devices.contains_key(&device) {
                    return Vec::new();
                }
                self.devices.insert(device.clone(), DeviceState::Seen);
                vec![Output::SubscribeEvents { device: Some(device) }]
            }
            (Role::Caller, Input::DeviceGone { device }) => self.device_gone(device, now),
            (Role::Caller, Input::Peer { device: Some(d), event }) => self.caller_event(d, event, now),
            (Role::Callee, Input::Peer { device: None, event }) => self.callee_event(event, now),
            (_, Input::Media { device }) => {
                if self.state == State::Established && device == self.peer_key() {
                    self.lost_at = Some(now + self.timers.lost_peer);
                }
                Vec::new()
            }
            (Role::Caller, Input::PeerGone { device: Some(d) }) => self.device_gone(d, now),
            (Role::Callee, Input::PeerGone { device: None }) => {
                let reason = if self.state == State::Established { EndReason::LostPeer } else { EndReason::Cancelled };
                self.end(reason, false, Vec::new())
            }
            _ => Vec::new(),
        }
    }

    fn peer_key(&self) -> Option<String> {
        match self.role {
            Role::Caller => self.peer.clone(),
            Role::Callee => None,
        }
    }

    /// Ends the call. `withdraw_only` skips nothing; kept explicit for reading.
    fn end(&mut self, reason: EndReason, media_was_on: bool, mut out: Vec<Output>) -> Vec<Output> {
        if self.state == State::Ringing || self.state == State::Answered {
            out.push(Output::Ring { on: false });
        }
        // The callee sends from its own `answer` (CALLS.md §4).
        if media_was_on || self.state == State::Established || self.state == State::Answered {
            out.push(Output::Media { on: false });
        }
        // A callee that never rang has nothing announced unless it rejected.
        let announced = self.role == Role::Caller || self.state != State::Setup || matches!(reason, EndReason::Busy | EndReason::Declined);
        if announced {
            out.push(Output::Withdraw);
        }
        out.push(Output::Ended(reason));
        self.state = State::Ended;
        self.deadline_devices = None;
        self.deadline_answer = None;
        self.next_keepalive = None;
        self.lost_at = None;
        out
    }

    /// `subscribe`: the peer's audio is not subscribed yet (a callee device
    /// that answered without ringing first). The callee's media is already on.
    fn establish(&mut self, device: Option<String>, subscribe: bool, now: Millis, mut out: Vec<Output>) -> Vec<Output> {
        if self.state == State::Ringing || self.state == State::Answered {
            out.push(Output::Ring { on: false });
        }
        if subscribe {
            out.push(Output::SubscribeAudio { device: device.clone() });
        }
        if self.role == Role::Caller {
            out.push(Output::Media { on: true });
        }
        out.push(Output::Established { device: device.clone() });
        for digit in self.queued_dtmf.drain(..) {
            out.push(Output::Send { event: Event::Dtmf { digit, duration_ms: 100 } });
        }
        self.peer = device;
        self.state = State::Established;
        self.deadline_devices = None;
        self.deadline_answer = None;
        self.next_keepalive = Some(now + self.timers.keepalive);
        self.lost_at = Some(now + self.timers.lost_peer);
        out
    }

    fn rejection(&self) -> EndReason {
        if self.devices.values().any(|d| *d == DeviceState::Rejected(RejectReason::Busy)) {
            EndReason::Busy
        } else {
            EndReason::Declined
        }
    }

    fn caller_event(&mut self, device: String, event: Event, now: Millis) -> Vec<Output> {
        if self.state == State::Established {
            if Some(&device) != self.peer.as_ref() {
                return Vec::new();
            }
            return self.in_call_event(event, now);
        }
        let Some(d) = self.devices.get_mut(&device) else { return Vec::new() };
        match event {
            // Its audio from now on, so that what it says right after its
            // answer is already here (CALLS.md §4; quality.md §5).
            Event::Ringing { .. } if *d == DeviceState::Seen => {
                *d = DeviceState::Ringing;
                let mut out = vec![Output::SubscribeAudio { device: Some(device) }];
                if self.state == State::Setup {
                    self.state = State::Ringing;
                    out.push(Output::Ring { on: true });
                }
                out
            }
            Event::Answer { .. } => {
                let subscribe = *d != DeviceState::Ringing;
                let mut out = vec![Output::Send { event: Event::Connect { device: device.clone() } }];
                for other in self.devices.keys().filter(|k| **k != device) {
                    out.push(Output::Unsubscribe { device: other.clone() });
                }
                self.establish(Some(device), subscribe, now, out)
            }
            Event::Reject { reason, .. } => {
                *d = DeviceState::Rejected(reason);
                self.maybe_all_rejected()
            }
            _ => Vec::new(),
        }
    }

    fn maybe_all_rejected(&mut self) -> Vec<Output> {
        let all = !self.devices.is_empty() && self.devices.values().all(|d| matches!(d, DeviceState::Rejected(_)));
        if all {
            let r = self.rejection();
            return self.end(r, false, Vec::new());
        }
        Vec::new()
    }

    fn device_gone(&mut self, device: String, _now: Millis) -> Vec<Output> {
        if self.state == State::Established {
            if Some(&device) == self.peer.as_ref() {
                return self.end(EndReason::LostPeer, true, Vec::new());
            }
            return Vec::new();
        }
        // A device that leaves without answering counts as gone, not as a
        // rejection; rejections it already sent stay recorded.
        match self.devices.get(&device) {
            Some(DeviceState::Rejected(_)) | None => Vec::new(),
            Some(_) => {
                self.devices.remove(&device);
                if self.devices.is_empty() && self.deadline_devices.is_none() {
                    return self.end(EndReason::Offline, false, Vec::new());
                }
                self.maybe_all_rejected()
            }
        }
    }

    fn callee_event(&mut self, event: Event, now: Millis) -> Vec<Output> {
        match (self.state, event) {
            (State::Setup, Event::Invite { .. }) => {
                self.lost_at = None;
                if self.busy {
                    let mut out = vec![Output::Announce];
                    out.push(Output::Send { event: Event::Reject { device: self.me.clone(), reason: RejectReason::Busy } });
                    return self.end(EndReason::Busy, false, out);
                }
                self.state = State::Ringing;
                vec![Output::Announce, Output::Send { event: Event::Ringing { device: self.me.clone() } }, Output::Ring { on: true }]
            }
            (State::Answered, Event::Connect { device }) => {
                if device == self.me {
                    self.establish(None, false, now, Vec::new())
                } else {
                    self.end(EndReason::AnsweredElsewhere, false, Vec::new())
                }
            }
            (State::Ringing, Event::Connect { device }) if device != self.me => self.end(EndReason::AnsweredElsewhere, false, Vec::new()),
            (State::Setup | State::Ringing | State::Answered, Event::Cancel { .. }) => self.end(EndReason::Cancelled, false, Vec::new()),
            (State::Established, e) => self.in_call_event(e, now),
            _ => Vec::new(),
        }
    }

    fn in_call_event(&mut self, event: Event, now: Millis) -> Vec<Output> {
        self.lost_at = Some(now + self.timers.lost_peer);
        match event {
            Event::Hangup { .. } | Event::Cancel { .. } => self.end(EndReason::Hangup { by_peer: true }, true, Vec::new()),
            Event::Dtmf { digit, .. } => vec![Output::Dtmf { digit }],
            Event::Hold => vec![Output::PeerHold { on: true }],
            Event::Unhold => vec![Output::PeerHold { on: false }],
            _ => Vec::new(),
        }
    }

    fn user(&mut self, action: UserAction, now: Millis) -> Vec<Output> {
        match (self.role, self.state, action) {
            // Media starts with the answer, not one relay round later at
            // `connect`; the caller's audio likewise (CALLS.md §4).
            (Role::Callee, State::Ringing, UserAction::Answer) => {
                self.state = State::Answered;
                vec![
                    Output::Send { event: Event::Answer { device: self.me.clone() } },
                    Output::SubscribeAudio { device: None },
                    Output::Media { on: true },
                ]
            }
            (Role::Callee, State::Ringing, UserAction::Decline) => {
                let out = vec![Output::Send { event: Event::Reject { device: self.me.clone(), reason: RejectReason::Decline } }];
                self.end(EndReason::Declined, false, out)
            }
            (Role::Caller, State::Setup | State::Ringing, UserAction::Hangup) => {
                let out = vec![Output::Send { event: Event::Cancel { reason: "caller".into() } }];
                self.end(EndReason::Cancelled, false, out)
            }
            (Role::Caller, State::Setup | State::Ringing, UserAction::CancelGlare) => {
                let out = vec![Output::Send { event: Event::Cancel { reason: "glare".into() } }];
                self.end(EndReason::Glare, false, out)
            }
            (Role::Callee, State::Ringing | State::Answered, UserAction::Hangup) => {
                let out = vec![Output::Send { event: Event::Reject { device: self.me.clone(), reason: RejectReason::Decline } }];
                self.end(EndReason::Declined, false, out)
            }
            (_, State::Established, UserAction::Hangup) => {
                let out = vec![Output::Send { event: Event::Hangup { reason: "normal".into() } }];
                self.end(EndReason::Hangup { by_peer: false }, true, out)
            }
            (_, State::Established, UserAction::Dtmf { digit }) => vec![Output::Send { event: Event::Dtmf { digit, duration_ms: 100 } }],
            (Role::Callee, State::Answered, UserAction::Dtmf { digit }) => {
                if self.queued_dtmf.len() < MAX_QUEUED_DTMF {
                    self.queued_dtmf.push(digit);
                }
                Vec::new()
            }
            (_, State::Established, UserAction::Hold) if !self.on_hold => {
                self.on_hold = true;
                vec![Output::Send { event: Event::Hold }, Output::Media { on: false }]
            }
            (_, State::Established, UserAction::Unhold) if self.on_hold => {
                self.on_hold = false;
                vec![Output::Send { event: Event::Unhold }, Output::Media { on: true }]
            }
            (_, State::Established, UserAction::Mute { on }) => vec![Output::Send { event: Event::Mute { on } }],
            _ => {
                let _ = now;
                Vec::new()
            }
        }
    }
}

/// Glare (docs/CALLS.md §4): the call with the bytewise smaller sid survives.
/// True when our outgoing call `ours` must yield to the incoming `theirs`.
pub fn loses_glare(ours: &str, theirs: &str) -> bool {
    ours.as_bytes() > theirs.as_bytes()
}
