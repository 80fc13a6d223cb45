//! How a MoQ call's end (docs/CALLS.md §4, `EndReason`) shows up in
//! Asterisk: the hangup cause (ITU-T Q.850 numbers, as in Asterisk's
//! `causes.h`) and the control frame app_dial turns into DIALSTATUS.
//!
//! app_dial (Asterisk 22, `handle_cause`) reads the callee channel's cause:
//! 17 → BUSY, 19/16 → NOANSWER, 20 → CHANUNAVAIL; a queued
//! `AST_CONTROL_BUSY` also gives BUSY. The cause becomes HANGUPCAUSE.

use pub_sub_audio::call::EndReason;

/// Q.850 cause values used by the driver (`AST_CAUSE_*`).
pub mod q850 {
    pub const NORMAL_CLEARING: i32 = 16;
    pub const USER_BUSY: i32 = 17;
    pub const NO_ANSWER: i32 = 19;
    /// Also `AST_CAUSE_UNREGISTERED`: no device of the user is online.
    pub const SUBSCRIBER_ABSENT: i32 = 20;
    pub const CALL_REJECTED: i32 = 21;
    pub const ANSWERED_ELSEWHERE: i32 = 26;
    pub const DESTINATION_OUT_OF_ORDER: i32 = 27;
    pub const NETWORK_OUT_OF_ORDER: i32 = 38;
    pub const NORMAL_TEMPORARY_FAILURE: i32 = 41;
    pub const NO_ROUTE_DESTINATION: i32 = 3;
}

/// What the channel does when the MoQ side ends the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    pub cause: i32,
    /// Queue `AST_CONTROL_BUSY` before the hangup (so Dial says BUSY even
    /// where the cause is not consulted).
    pub busy_signal: bool,
}

pub fn ending(reason: &EndReason) -> Ending {
    use q850::*;
    let cause = match reason {
        EndReason::Hangup { .. } | EndReason::Cancelled => NORMAL_CLEARING,
        EndReason::Busy => USER_BUSY,
        EndReason::Declined => CALL_REJECTED,
        EndReason::NoAnswer => NO_ANSWER,
        EndReason::Offline => SUBSCRIBER_ABSENT,
        EndReason::AnsweredElsewhere => ANSWERED_ELSEWHERE,
        EndReason::LostPeer => DESTINATION_OUT_OF_ORDER,
        EndReason::Glare => NORMAL_TEMPORARY_FAILURE,
    };
    Ending { cause, busy_signal: matches!(reason, EndReason::Busy) }
}

/// The MoQ user action for an Asterisk-side hangup of a call that is not
/// up yet: a busy cause rejects as busy, anything else declines.
pub fn rejects_as_busy(cause: i32) -> bool {
    cause == q850::USER_BUSY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_outcomes() {
        assert_eq!(ending(&EndReason::Busy), Ending { cause: 17, busy_signal: true });
        assert_eq!(ending(&EndReason::Declined).cause, 21, "decline is 'call rejected'");
        assert_eq!(ending(&EndReason::NoAnswer).cause, 19);
        assert_eq!(ending(&EndReason::Offline).cause, 20);
        assert_eq!(ending(&EndReason::Hangup { by_peer: true }).cause, 16);
        assert!(!ending(&EndReason::Declined).busy_signal);
    }

    #[test]
    fn busy_cause_rejects_as_busy() {
        assert!(rejects_as_busy(17));
        assert!(!rejects_as_busy(16));
    }
}
