//! Objects of the `events` track (docs/CALLS.md §5): one UTF-8 JSON object
//! each, tagged by `"t"`. Unknown members are ignored; an unknown `t` decodes
//! to [`Event::Unknown`] so the call goes on.

use crate::audio::feedback::Report;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectReason {
    Busy,
    Decline,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "kebab-case")]
pub enum Event {
    Invite {
        sid: String,
        from: String,
        to: String,
        #[serde(default)]
        display: String,
    },
    Ringing {
        device: String,
    },
    Answer {
        device: String,
    },
    Reject {
        device: String,
        reason: RejectReason,
    },
    Connect {
        device: String,
    },
    Cancel {
        reason: String,
    },
    Hangup {
        #[serde(default)]
        reason: String,
    },
    Dtmf {
        digit: char,
        #[serde(default = "default_dtmf_ms")]
        duration_ms: u32,
    },
    Hold,
    Unhold,
    Mute {
        on: bool,
    },
    /// Every 500 ms while established (CALLS.md §5, §7). `rx` is the
    /// listener's report on the audio it receives (quality.md §4.1), which
    /// the peer's sender adapts to; a peer that does not know the member
    /// ignores it, one that does not send it sends `{"t":"keepalive"}`.
    Keepalive {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rx: Option<Report>,
    },
    /// An event type this implementation does not know (logged, ignored).
    #[serde(skip)]
    Unknown(String),
}

fn default_dtmf_ms() -> u32 {
    100
}

/// Largest events object accepted; anything bigger is dropped.
pub const MAX_EVENT_BYTES: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("event object of {0} bytes is larger than {MAX_EVENT_BYTES}")]
    TooLarge(usize),
    #[error("event object is not a JSON object with a \"t\" member: {0}")]
    Malformed(String),
}

impl Event {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, EventError> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(EventError::TooLarge(bytes.len()));
        }
        match serde_json::from_slice::<Event>(bytes) {
            Ok(e) => Ok(e),
            Err(err) => {
                // Well-formed JSON with an unknown "t" is not an error.
                let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| EventError::Malformed(e.to_string()))?;
                match v.get("t").and_then(|t| t.as_str()) {
                    Some(t) if !KNOWN.contains(&t) => Ok(Event::Unknown(t.to_string())),
                    _ => Err(EventError::Malformed(err.to_string())),
                }
            }
        }
    }
}

const KNOWN: [&str; 12] =
    ["invite", "ringing", "answer", "reject", "connect", "cancel", "hangup", "dtmf", "hold", "unhold", "mute", "keepalive"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form() {
        let e = Event::Reject { device: "d1".into(), reason: RejectReason::Busy };
        assert_eq!(String::from_utf8(e.encode()).unwrap(), r#"{"t":"reject","device":"d1","reason":"busy"}"#);
        assert_eq!(Event::decode(br#"{"t":"keepalive"}"#).unwrap(), Event::Keepalive { rx: None });
        assert_eq!(String::from_utf8(Event::Keepalive { rx: None }.encode()).unwrap(), r#"{"t":"keepalive"}"#);
        assert_eq!(Event::decode(br#"{"t":"dtmf","digit":"5","extra":1}"#).unwrap(), Event::Dtmf { digit: '5', duration_ms: 100 });
    }

    #[test]
    fn keepalive_carries_the_listeners_report() {
        let rx = Report { n: 4711, loss: 50, burst: 25, late: 10, fec: 3, red: 2, conceal_ms: 40, target_ms: 60 };
        let e = Event::Keepalive { rx: Some(rx) };
        let text = r#"{"t":"keepalive","rx":{"n":4711,"loss":50,"burst":25,"late":10,"fec":3,"red":2,"conceal_ms":40,"target_ms":60}}"#;
        assert_eq!(String::from_utf8(e.encode()).unwrap(), text);
        assert_eq!(Event::decode(text.as_bytes()).unwrap(), e);
        // A newer peer's extra members, in the report and beside it, are ignored.
        let newer = r#"{"t":"keepalive","rx":{"loss":7,"m2e_ms":90},"x":1}"#;
        assert_eq!(Event::decode(newer.as_bytes()).unwrap(), Event::Keepalive { rx: Some(Report { loss: 7, ..Report::default() }) });
        // A report that is not an object is malformed (the keepalive is dropped, as any bad event).
        assert!(Event::decode(br#"{"t":"keepalive","rx":5}"#).is_err());
    }

    #[test]
    fn unknown_and_bad_input() {
        assert_eq!(Event::decode(br#"{"t":"video-upgrade","x":1}"#).unwrap(), Event::Unknown("video-upgrade".into()));
        assert!(Event::decode(b"not json").is_err());
        assert!(Event::decode(br#"{"t":"reject","device":"d"}"#).is_err());
        assert!(matches!(Event::decode(&vec![b' '; 5000]), Err(EventError::TooLarge(5000))));
    }
}
