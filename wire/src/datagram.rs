//! OBJECT_DATAGRAM (draft-ietf-moq-transport-18 §11.3.1): the parser, the one
//! encoder ([`encode`]) and Track Alias rewriting.
//!
//! A relay only needs the alias (to find the track), the location (to cache
//! and to apply subscription filters) and a way to re-emit the datagram with
//! the downstream alias; everything after the alias is copied verbatim, so
//! object properties pass through unchanged (§9 "Relay Object Handling").

use super::{status, varint, WireError};
use bytes::Bytes;

/// Datagram type bits (§11.3.1).
pub const PROPERTIES: u64 = 0x01;
pub const END_OF_GROUP: u64 = 0x02;
pub const ZERO_OBJECT_ID: u64 = 0x04;
pub const DEFAULT_PRIORITY: u64 = 0x08;
pub const STATUS: u64 = 0x20;

/// The fields of an OBJECT_DATAGRAM to send, for [`encode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields<'a> {
    pub track_alias: u64,
    pub group_id: u64,
    /// Object 0 is sent with ZERO_OBJECT_ID and no Object ID field.
    pub object_id: u64,
    /// `None` sets DEFAULT_PRIORITY.
    pub publisher_priority: Option<u8>,
    /// Sets END_OF_GROUP; not with a status (an object status cannot signal
    /// end of group, §11.3.1), where it is ignored.
    pub end_of_group: bool,
    /// Raw Object Properties (Key-Value-Pairs without the length prefix);
    /// empty means the PROPERTIES bit is clear, since PROPERTIES with length 0
    /// is a protocol violation.
    pub properties: &'a [u8],
    /// `Some(status)` sets STATUS: the Object Status is sent instead of a payload.
    pub status: Option<u64>,
    /// The payload; ignored with a status.
    pub payload: &'a [u8],
}

impl Fields<'_> {
    /// The Type these fields are sent with.
    pub fn datagram_type(&self) -> u64 {
        let mut t = 0;
        if !self.properties.is_empty() {
            t |= PROPERTIES;
        }
        if self.end_of_group && self.status.is_none() {
            t |= END_OF_GROUP;
        }
        if self.object_id == 0 {
            t |= ZERO_OBJECT_ID;
        }
        if self.publisher_priority.is_none() {
            t |= DEFAULT_PRIORITY;
        }
        if self.status.is_some() {
            t |= STATUS;
        }
        t
    }
}

/// Serializes one OBJECT_DATAGRAM (§11.3.1): Type, Track Alias, Group ID,
/// [Object ID], [Publisher Priority], [Properties], then the Object Status or
/// the payload, which runs to the end of the datagram. The one encoder of
/// this format.
pub fn encode(f: &Fields<'_>, out: &mut Vec<u8>) {
    let t = f.datagram_type();
    debug_assert!(f.status.is_none_or(|s| s == status::NORMAL || f.properties.is_empty()), "properties on a status datagram");
    write_type_and_alias(t, f.track_alias, out);
    varint::write(out, f.group_id);
    if t & ZERO_OBJECT_ID == 0 {
        varint::write(out, f.object_id);
    }
    if let Some(p) = f.publisher_priority {
        out.push(p);
    }
    if !f.properties.is_empty() {
        varint::write(out, f.properties.len() as u64);
        out.extend_from_slice(f.properties);
    }
    match f.status {
        Some(s) => varint::write(out, s),
        None => out.extend_from_slice(f.payload),
    }
}

/// The fields every datagram starts with; the rest depends on the Type.
fn write_type_and_alias(datagram_type: u64, alias: u64, out: &mut Vec<u8>) {
    varint::write(out, datagram_type);
    varint::write(out, alias);
}

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
        let mut status = status::NORMAL;
        if t & STATUS != 0 {
            let (s, l) = varint::read(&b[n..]).ok_or(WireError::Truncated)?;
            n += l;
            if s != status::NORMAL && !properties.is_empty() {
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

    /// The same datagram under another Track Alias: the forwarding fast path
    /// beside [`encode`], copying the fields after the alias as received.
    pub fn with_alias(&self, alias: u64) -> Bytes {
        let mut out = Vec::with_capacity(self.raw.len() + 8);
        write_type_and_alias(self.datagram_type, alias, &mut out);
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
    fn encode_round_trips_through_the_parser() {
        let props = [0x02, 0x07];
        let base = Fields {
            track_alias: 77,
            group_id: 5,
            object_id: 0,
            publisher_priority: Some(128),
            end_of_group: false,
            properties: &[],
            status: None,
            payload: b"hello",
        };
        for f in [
            base,
            Fields { object_id: 9, publisher_priority: None, properties: &props, end_of_group: true, ..base },
            Fields { object_id: 4, status: Some(status::END_OF_GROUP), end_of_group: true, ..base },
        ] {
            let mut out = Vec::new();
            encode(&f, &mut out);
            let d = Datagram::parse(Bytes::from(out)).unwrap();
            assert_eq!(d.datagram_type, f.datagram_type());
            assert_eq!((d.track_alias, d.group_id, d.object_id, d.publisher_priority), (77, 5, f.object_id, f.publisher_priority));
            assert_eq!(d.datagram_type & END_OF_GROUP != 0, f.end_of_group && f.status.is_none());
            assert_eq!((&d.properties()[..], d.status), (f.properties, f.status.unwrap_or(status::NORMAL)));
            assert_eq!(&d.payload()[..], if f.status.is_some() { &b""[..] } else { f.payload });
        }
        // Object 0 without its field, priority present: type 0x04.
        let mut out = Vec::new();
        encode(&base, &mut out);
        assert_eq!(out, [&[0x04, 77, 5, 0x80][..], b"hello"].concat());
    }

    #[test]
    fn invalid_types_rejected() {
        for t in [0x22u8, 0x2f, 0x10, 0x40] {
            assert!(Datagram::parse(Bytes::from(vec![t, 0, 0, 0])).is_err());
        }
        assert!(Datagram::parse(Bytes::from_static(&[0x0c])).is_err());
    }
}
