//! What a running call tells its user interface: the CLI prints it, tests
//! script on it, and chan_moq maps it to Asterisk control frames.

use crate::call::EndReason;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The call's session id (docs/CALLS.md §1), first of all.
    Session {
        sid: String,
    },
    /// Callee: the caller's INVITE (docs/CALLS.md §5), before ringing; `to`
    /// may carry an extension (`pbx/100`).
    Invited {
        from: String,
        to: String,
        display: String,
    },
    /// Callee: ringing; caller: a callee device rings (ringback).
    Ringing {
        on: bool,
    },
    Established {
        device: Option<String>,
    },
    Dtmf {
        digit: char,
    },
    PeerHold {
        on: bool,
    },
    /// Something went wrong but the call may go on.
    Error(String),
    /// A line for people (registration, audio statistics).
    Info(String),
    Ended(EndReason),
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Session { sid } => write!(f, "session {sid}"),
            Progress::Invited { from, to, .. } => write!(f, "invite from {from} to {to}"),
            Progress::Ringing { on: true } => f.write_str("ringing"),
            Progress::Ringing { on: false } => f.write_str("ringing stopped"),
            Progress::Established { device: Some(d) } => write!(f, "established with device {d}"),
            Progress::Established { device: None } => f.write_str("established"),
            Progress::Dtmf { digit } => write!(f, "dtmf {digit}"),
            Progress::PeerHold { on: true } => f.write_str("peer hold"),
            Progress::PeerHold { on: false } => f.write_str("peer unhold"),
            Progress::Error(e) => write!(f, "error: {e}"),
            Progress::Info(s) => f.write_str(s),
            Progress::Ended(r) => write!(f, "ended: {}", describe(r)),
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
