//! LOC packaging (draft-ietf-moq-loc): one Opus packet per object, its
//! capture time in the Timestamp property ("LOC Properties" → "Common
//! Properties" → "Timestamp": ID 0x10, a vi64, microseconds since the Unix
//! epoch when no Timescale property is given).
//!
//! Under loss the sender may also carry an older frame whole, in the
//! application property [`REDUNDANT_FRAME`] (docs/design/quality.md §4.2).
//!
//! Here rather than in pub-sub-audio because both the phone (which encodes and
//! plays its own audio) and the relay's WebRTC gateway (which turns RTP into
//! the objects a phone would send, docs/design/webrtc.md §3) write these
//! objects, and the relay must not link the phone crate (docs/ARCHITECTURE.md).
//! The web phone's copy is `webapp/src/media/loc.ts`.

use crate::properties::{self, Value};
use crate::varint;

/// The Timestamp property type (draft-ietf-moq-loc, IANA "MOQ Properties").
pub const TIMESTAMP: u64 = 0x10;

/// An older frame of the same track, whole (docs/design/quality.md §4.2):
/// the value is a varint `k` ≥ 1, then the Opus packet of frame `n − k`
/// (n = this object's frame number, CALLS.md §6). `k` rides in the value
/// because the sender changes its redundancy distance during a call and a
/// receiver must not guess it. Odd type, so length-prefixed bytes; 0x39 is
/// in the range moqt-18 §1.4.3 ("Properties") reserves for applications,
/// which relays forward unchanged.
pub const REDUNDANT_FRAME: u64 = 0x39;

/// Largest distance accepted in a REDUNDANT_FRAME (the sender uses 1 or 2;
/// anything beyond the playout buffer is useless).
pub const MAX_REDUNDANT_DISTANCE: u64 = 16;

/// A copy of frame `n − k` carried by frame `n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redundant {
    pub k: u64,
    pub opus: Vec<u8>,
}

/// A decoded LOC audio object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocFrame {
    pub capture_us: Option<u64>,
    pub opus: Vec<u8>,
    /// A REDUNDANT_FRAME, if the object carried a well-formed one.
    pub redundant: Option<Redundant>,
}

/// Object properties for a frame captured at `capture_us`.
pub fn properties(capture_us: u64) -> Vec<u8> {
    properties_with(capture_us, None)
}

/// Object properties for a frame captured at `capture_us` that also carries
/// the Opus packet of the frame `k` before it.
pub fn properties_with(capture_us: u64, redundant: Option<(u64, &[u8])>) -> Vec<u8> {
    let mut props = vec![(TIMESTAMP, Value::Int(capture_us))];
    if let Some((k, opus)) = redundant {
        let mut v = Vec::with_capacity(1 + opus.len());
        varint::write(&mut v, k);
        v.extend_from_slice(opus);
        props.push((REDUNDANT_FRAME, Value::Bytes(v)));
    }
    let mut out = Vec::with_capacity(12 + props.len() * 80);
    properties::encode(&props, &mut out);
    out
}

/// Reads a LOC object. Malformed properties are an error (the caller logs
/// and drops the object; the call goes on). An empty payload is not audio.
/// A REDUNDANT_FRAME that does not parse (no distance, a distance of 0 or
/// beyond [`MAX_REDUNDANT_DISTANCE`], no packet) is ignored: the primary
/// frame is still good.
pub fn decode(props: &[u8], payload: &[u8]) -> Result<LocFrame, crate::WireError> {
    if payload.is_empty() {
        return Err(crate::WireError::Malformed("LOC object", "empty payload".into()));
    }
    let mut capture_us = None;
    let mut redundant = None;
    for (t, v) in properties::decode(props)? {
        match (t, v) {
            (TIMESTAMP, Value::Int(us)) if capture_us.is_none() => capture_us = Some(us),
            (REDUNDANT_FRAME, Value::Bytes(b)) if redundant.is_none() => redundant = redundant_copy(&b),
            _ => {}
        }
    }
    Ok(LocFrame { capture_us, opus: payload.to_vec(), redundant })
}

fn redundant_copy(b: &[u8]) -> Option<Redundant> {
    let (k, used) = varint::read(b)?;
    let opus = &b[used..];
    ((1..=MAX_REDUNDANT_DISTANCE).contains(&k) && !opus.is_empty()).then(|| Redundant { k, opus: opus.to_vec() })
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
        assert_eq!(f.redundant, None);
        assert!(decode(&[0x11, 0x09], &[1]).is_err());
        assert!(decode(&p, &[]).is_err());
        assert_eq!(decode(&[], &[1]).unwrap().capture_us, None);
    }

    #[test]
    fn redundant_frame_round_trip() {
        let p = properties_with(5, Some((2, &[0xf8, 0x01, 0x02])));
        // TIMESTAMP (delta 0x10, 5), then REDUNDANT_FRAME (delta 0x29, 4 bytes: k=2 + packet).
        assert_eq!(p, [0x10, 0x05, 0x29, 0x04, 0x02, 0xf8, 0x01, 0x02]);
        let f = decode(&p, &[0xf8]).unwrap();
        assert_eq!(f.redundant, Some(Redundant { k: 2, opus: vec![0xf8, 0x01, 0x02] }));
    }

    #[test]
    fn a_bad_redundant_frame_is_ignored_not_fatal() {
        for bad in [&[][..], &[0x00, 0xf8], &[0x02], &[0x11, 0xf8], &[0x40]] {
            let mut p = Vec::new();
            properties::encode(&[(TIMESTAMP, Value::Int(1)), (REDUNDANT_FRAME, Value::Bytes(bad.to_vec()))], &mut p);
            let f = decode(&p, &[0xf8]).unwrap();
            assert_eq!((f.capture_us, f.redundant), (Some(1), None), "{bad:?}");
        }
    }
}
