//! LOC packaging (draft-ietf-moq-loc): one Opus packet per object, its
//! capture time in the Timestamp property ("LOC Properties" → "Common
//! Properties" → "Timestamp": ID 0x10, a vi64, microseconds since the Unix
//! epoch when no Timescale property is given).
//!
//! Here rather than in pub-sub-audio because both the phone (which encodes and
//! plays its own audio) and the relay's WebRTC gateway (which turns RTP into
//! the objects a phone would send, docs/design/webrtc.md §3) write these
//! objects, and the relay must not link the phone crate (docs/ARCHITECTURE.md).
//! The web phone's copy is `webapp/src/media/loc.ts`.

use crate::properties::{self, Value};

/// The Timestamp property type (draft-ietf-moq-loc, IANA "MOQ Properties").
pub const TIMESTAMP: u64 = 0x10;

/// A decoded LOC audio object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocFrame {
    pub capture_us: Option<u64>,
    pub opus: Vec<u8>,
}

/// Object properties for a frame captured at `capture_us`.
pub fn properties(capture_us: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    properties::encode(&[(TIMESTAMP, Value::Int(capture_us))], &mut out);
    out
}

/// Reads a LOC object. Malformed properties are an error (the caller logs
/// and drops the object; the call goes on). An empty payload is not audio.
pub fn decode(props: &[u8], payload: &[u8]) -> Result<LocFrame, crate::WireError> {
    if payload.is_empty() {
        return Err(crate::WireError::Malformed("LOC object", "empty payload".into()));
    }
    let capture_us = properties::decode(props)?.into_iter().find_map(|(t, v)| match (t, v) {
        (TIMESTAMP, Value::Int(us)) => Some(us),
        _ => None,
    });
    Ok(LocFrame { capture_us, opus: payload.to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_round_trip_and_bad_input() {
        let p = properties(1_763_900_000_000_000);
        assert_eq!(p[0], 0x10);
        let f = decode(&p, &[0xf8, 0xff]).unwrap();
        assert_eq!(f.capture_us, Some(1_763_900_000_000_000));
        assert!(decode(&[0x11, 0x09], &[1]).is_err());
        assert!(decode(&p, &[]).is_err());
        assert_eq!(decode(&[], &[1]).unwrap().capture_us, None);
    }
}
