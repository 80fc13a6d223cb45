//! OBJECT_DATAGRAM parsing and Track Alias rewriting
//! (draft-ietf-moq-transport-18 §11.3.1).
//!
//! A relay only needs the alias (to find the track), the location (to cache
//! and to apply subscription filters) and a way to re-emit the datagram with
//! the downstream alias; everything after the alias is copied verbatim, so
//! object properties pass through unchanged (§9 "Relay Object Handling").

use super::{varint, WireError};
use bytes::Bytes;

pub const PROPERTIES: u64 = 0x01;
pub const END_OF_GROUP: u64 = 0x02;
pub const ZERO_OBJECT_ID: u64 = 0x04;
pub const DEFAULT_PRIORITY: u64 = 0x08;
pub const STATUS: u64 = 0x20;

/// Valid types are 0b00X0XXXX without STATUS|END_OF_GROUP together.
pub fn is_datagram_type(t: u64) -> bool {
    t & !0x2f == 0 && !(t & STATUS != 0 && t & END_OF_GROUP != 0)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub datagram_type: u64,
    pub track_alias: u64,
    pub group_id: u64,
    pub object_id: u64,
    pub publisher_priority: Option<u8>,
    pub properties: std::ops::Range<usize>,
    pub status: u64,
    pub payload: std::ops::Range<usize>,
    /// Offset right after the Track Alias.
    pub after_alias: usize,
    pub raw: Bytes,
}

impl Datagram {
    pub fn parse(raw: Bytes) -> Result<Self, WireError> {
        let b = &raw[..];
        let (t, mut n) = varint::read(b).ok_or(WireError::Truncated)?;
        if !is_datagram_type(t) {
            return Err(WireError::InvalidType(t));
        }
        let (alias, l) = varint::read(&b[n..]).ok_or(WireError::Truncated)?;
        n += l;
        let after_alias = n;
        let (group_id, l) = varint::read(&b[n..]).ok_or(WireError::Truncated)?;
        n += l;
        let object_id = if t & ZERO_OBJECT_ID != 0 {
            0
        } else {
            let (o, l) = varint::read(&b[n..]).ok_or(WireError::Truncated)?;
            n += l;
            o
        };
        let publisher_priority = if t & DEFAULT_PRIORITY != 0 {
            None
        } else {
            let p = *b.get(n).ok_or(WireError::Truncated)?;
            n += 1;
            Some(p)
        };
        let mut properties = n..n;
        if t & PROPERTIES != 0 {
            let (plen, l) = varint::read(&b[n..]).ok_or(WireError::Truncated)?;
            n += l;
            // §11.3.1: PROPERTIES set with a zero length is a protocol violation.
            if plen == 0 || (b.len() - n) < plen as usize {
                return Err(WireError::Truncated);
            }
            properties = n..n + plen as usize;
            n += plen as usize;
        }
        let mut status = super::subgroup::status::NORMAL;
        if t & STATUS != 0 {
            let (s, l) = varint::read(&b[n..]).ok_or(WireError::Truncated)?;
            n += l;
            if s != 0 && !properties.is_empty() {
                return Err(WireError::PropertiesOnStatus);
            }
            status = s;
        }
        let payload = n..b.len();
        Ok(Self {
            datagram_type: t,
            track_alias: alias,
            group_id,
            object_id,
            publisher_priority,
            properties,
            status,
            payload,
            after_alias,
            raw,
        })
    }

    /// The same datagram under another Track Alias.
    pub fn with_alias(&self, alias: u64) -> Bytes {
        let mut out = Vec::with_capacity(self.raw.len() + 8);
        varint::write(&mut out, self.datagram_type);
        varint::write(&mut out, alias);
        out.extend_from_slice(&self.raw[self.after_alias..]);
        Bytes::from(out)
    }

    pub fn payload(&self) -> Bytes {
        self.raw.slice(self.payload.clone())
    }
    pub fn properties(&self) -> Bytes {
        self.raw.slice(self.properties.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_rewrite_keeps_properties() {
        // type 0x01: properties, object id and priority present.
        let raw = Bytes::from_static(&[0x01, 0x05, 0x02, 0x03, 0x80, 0x02, 0x0a, 0x01, b'h', b'i']);
        let d = Datagram::parse(raw).unwrap();
        assert_eq!((d.track_alias, d.group_id, d.object_id, d.publisher_priority), (5, 2, 3, Some(0x80)));
        assert_eq!(&d.properties()[..], &[0x0a, 0x01]);
        assert_eq!(&d.payload()[..], b"hi");
        let out = d.with_alias(300);
        let d2 = Datagram::parse(out).unwrap();
        assert_eq!(d2.track_alias, 300);
        assert_eq!((&d2.payload()[..], &d2.properties()[..]), (&b"hi"[..], &[0x0a, 0x01][..]));
    }

    #[test]
    fn invalid_types_rejected() {
        for t in [0x22u8, 0x2f, 0x10, 0x40] {
            assert!(Datagram::parse(Bytes::from(vec![t, 0, 0, 0])).is_err());
        }
        assert!(Datagram::parse(Bytes::from_static(&[0x0c])).is_err());
    }
}
