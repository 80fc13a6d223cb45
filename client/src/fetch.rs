//! FETCH responses (draft-ietf-moq-transport-18 §10.12, §10.13, §11.4.4): the
//! incremental parser for FETCH_HEADER streams and the result types.
//!
//! Each object on a fetch stream is serialized relative to the prior one
//! (§11.4.4 "Flags"): Group ID Delta, Subgroup ID, Object ID Delta and
//! Priority may each be elided. The parser keeps that "prior object" state.

use crate::error::{Error, Result};
use bytes::{Buf, Bytes, BytesMut};
use moq_wire::coding::{KeyValuePairs, Location};
use moq_wire::varint;

/// FETCH_HEADER stream type (§3.4, §11.4.4).
pub const FETCH_HEADER: u64 = moq_wire::fetch::FETCH_HEADER;

/// Serialization Flags for End of Range markers (§11.4.4.2).
pub const END_OF_NON_EXISTENT_RANGE: u64 = 0x8C;
pub const END_OF_UNKNOWN_RANGE: u64 = 0x10C;

/// One object from a fetch stream. Fetched objects carry no Object Status
/// (§11.2.1.1: status is absent in objects delivered via FETCH).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedObject {
    pub group_id: u64,
    /// `None` for objects whose forwarding preference was Datagram (flag 0x40).
    pub subgroup_id: Option<u64>,
    pub object_id: u64,
    pub publisher_priority: u8,
    pub properties: Bytes,
    pub payload: Bytes,
}

impl FetchedObject {
    pub fn location(&self) -> Location {
        Location::new(self.group_id, self.object_id)
    }
}

/// What a fetch stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    Object(FetchedObject),
    /// Objects up to and including `end` do not exist (`unknown == false`)
    /// or have unknown status (`unknown == true`).
    EndOfRange {
        end: Location,
        unknown: bool,
    },
}

/// The completed answer to a FETCH.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub request_id: u64,
    pub end_of_track: bool,
    /// FETCH_OK End Location: the last object plus one, or object 0 for a whole group.
    pub end_location: Location,
    pub params: KeyValuePairs,
    /// Raw Track Properties from FETCH_OK.
    pub properties: Bytes,
    pub items: Vec<FetchItem>,
}

impl Fetched {
    /// Just the objects, in stream order.
    pub fn objects(&self) -> Vec<&FetchedObject> {
        self.items
            .iter()
            .filter_map(|i| match i {
                FetchItem::Object(o) => Some(o),
                FetchItem::EndOfRange { .. } => None,
            })
            .collect()
    }
}

/// Incremental parser of one FETCH_HEADER stream, fed with whatever arrived.
pub struct FetchParser {
    buf: BytesMut,
    request_id: Option<u64>,
    prior_group: Option<u64>,
    prior_object: Option<u64>,
    prior_subgroup: Option<u64>,
    prior_priority: Option<u8>,
    max_object_size: usize,
}

/// Reads a vi64 at `*n`, advancing it; `None` when more bytes are needed.
fn field(b: &[u8], n: &mut usize) -> Option<u64> {
    let (v, l) = varint::read(&b[*n..])?;
    *n += l;
    Some(v)
}

fn violation(what: &str) -> Error {
    Error::Protocol(format!("fetch stream: {what}"))
}

impl FetchParser {
    pub fn new(max_object_size: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            request_id: None,
            prior_group: None,
            prior_object: None,
            prior_subgroup: None,
            prior_priority: None,
            max_object_size,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Parses the FETCH_HEADER (type and Request ID) once it is complete.
    pub fn header(&mut self) -> Result<Option<u64>> {
        if let Some(id) = self.request_id {
            return Ok(Some(id));
        }
        let b = &self.buf[..];
        let mut n = 0;
        let Some(t) = field(b, &mut n) else { return Ok(None) };
        if t != FETCH_HEADER {
            return Err(violation(&format!("stream type {t:#x} is not FETCH_HEADER")));
        }
        let Some(id) = field(b, &mut n) else { return Ok(None) };
        self.buf.advance(n);
        self.request_id = Some(id);
        Ok(Some(id))
    }

    /// Next complete item, `Ok(None)` when more bytes are needed.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<FetchItem>> {
        if self.header()?.is_none() {
            return Ok(None);
        }
        let b = &self.buf[..];
        let mut n = 0;
        let Some(flags) = field(b, &mut n) else { return Ok(None) };
        if flags == END_OF_NON_EXISTENT_RANGE || flags == END_OF_UNKNOWN_RANGE {
            let Some(group) = field(b, &mut n) else { return Ok(None) };
            let Some(object) = field(b, &mut n) else { return Ok(None) };
            self.buf.advance(n);
            self.prior_group = Some(group);
            self.prior_object = Some(object);
            return Ok(Some(FetchItem::EndOfRange { end: Location::new(group, object), unknown: flags == END_OF_UNKNOWN_RANGE }));
        }
        if flags >= 128 {
            return Err(violation(&format!("invalid Serialization Flags {flags:#x}")));
        }
        let first = self.prior_group.is_none();
        let group_delta = if flags & 0x08 != 0 {
            let Some(d) = field(b, &mut n) else { return Ok(None) };
            Some(d)
        } else {
            None
        };
        let group = match (group_delta, self.prior_group) {
            (Some(d), None) => d,
            // Ascending order (we never request Descending).
            (Some(d), Some(g)) => g.checked_add(d).and_then(|x| x.checked_add(1)).ok_or_else(|| violation("group overflow"))?,
            (None, Some(g)) => g,
            (None, None) => return Err(violation("first object without Group ID Delta")),
        };
        let subgroup = if flags & 0x40 != 0 {
            None
        } else {
            match flags & 0x03 {
                0 => Some(0),
                1 => Some(self.prior_subgroup.ok_or_else(|| violation("prior Subgroup ID referenced without a prior object"))?),
                2 => Some(
                    self.prior_subgroup.ok_or_else(|| violation("prior Subgroup ID referenced without a prior object"))?.saturating_add(1),
                ),
                _ => {
                    let Some(s) = field(b, &mut n) else { return Ok(None) };
                    Some(s)
                }
            }
        };
        let object = if flags & 0x04 != 0 {
            let Some(d) = field(b, &mut n) else { return Ok(None) };
            match (group_delta, self.prior_object) {
                (Some(_), _) | (None, None) => d,
                (None, Some(p)) => p.checked_add(d).ok_or_else(|| violation("object overflow"))?,
            }
        } else {
            if first {
                return Err(violation("first object without Object ID Delta"));
            }
            self.prior_object.unwrap_or(0).checked_add(1).ok_or_else(|| violation("object overflow"))?
        };
        let priority = if flags & 0x10 != 0 {
            let Some(&p) = b.get(n) else { return Ok(None) };
            n += 1;
            p
        } else {
            self.prior_priority.ok_or_else(|| violation("prior Priority referenced without a prior object"))?
        };
        let mut properties = n..n;
        if flags & 0x20 != 0 {
            let Some(len) = field(b, &mut n) else { return Ok(None) };
            let len = usize::try_from(len).map_err(|_| violation("properties too long"))?;
            if len > self.max_object_size {
                return Err(violation("properties too long"));
            }
            if b.len() < n + len {
                return Ok(None);
            }
            properties = n..n + len;
            n += len;
        }
        let Some(len) = field(b, &mut n) else { return Ok(None) };
        if len > self.max_object_size as u64 {
            return Err(violation(&format!("object of {len} bytes")));
        }
        let len = len as usize;
        if b.len() < n + len {
            return Ok(None);
        }
        let payload = n..n + len;
        n += len;
        let raw = self.buf.split_to(n).freeze();
        self.prior_group = Some(group);
        self.prior_object = Some(object);
        if subgroup.is_some() {
            self.prior_subgroup = subgroup;
        }
        self.prior_priority = Some(priority);
        Ok(Some(FetchItem::Object(FetchedObject {
            group_id: group,
            subgroup_id: subgroup,
            object_id: object,
            publisher_priority: priority,
            properties: raw.slice(properties),
            payload: raw.slice(payload),
        })))
    }

    /// Call at FIN: the stream may not end inside an object (§11.4).
    pub fn finish(&self) -> Result<()> {
        if self.request_id.is_some() && self.buf.is_empty() {
            Ok(())
        } else {
            Err(violation("FIN inside an object or before the header"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moq_wire::fetch::{header, FetchObject, FetchWriter};

    /// Group, object, subgroup, properties, payload.
    type Spec = (u64, u64, Option<u64>, &'static [u8], &'static [u8]);

    #[test]
    fn parses_what_the_relay_writes() {
        let mut out = Vec::new();
        header(6, &mut out);
        let mut w = FetchWriter::default();
        let objs: Vec<Spec> =
            vec![(2, 1, Some(0), b"", b"a"), (2, 3, Some(0), b"\x02\x05", b"bb"), (5, 0, None, b"", b""), (5, 1, Some(4), b"", b"c")];
        for (g, o, s, props, payload) in &objs {
            w.object(&FetchObject { group_id: *g, object_id: *o, subgroup_id: *s, priority: 7, properties: props, payload }, &mut out);
        }
        let mut p = FetchParser::new(1 << 20);
        let mut items = Vec::new();
        for b in &out {
            p.push(&[*b]);
            while let Some(i) = p.next().unwrap() {
                items.push(i);
            }
        }
        p.finish().unwrap();
        assert_eq!(p.header().unwrap(), Some(6));
        let got: Vec<_> = items
            .iter()
            .map(|i| match i {
                FetchItem::Object(o) => (o.group_id, o.object_id, o.subgroup_id, o.properties.to_vec(), o.payload.to_vec()),
                other => panic!("{other:?}"),
            })
            .collect();
        let want: Vec<_> = objs.iter().map(|(g, o, s, pr, pa)| (*g, *o, *s, pr.to_vec(), pa.to_vec())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn elided_fields_follow_the_prior_object() {
        // Header, then: flags 0x1c (group delta, object delta, priority; subgroup 0)
        // group 3 object 4 prio 9 "x"; flags 0x01 (prior subgroup, object+1,
        // same group, prior priority) "y"; end of non-existent range at 3/9.
        let mut wire = vec![0x05, 0x02, 0x1c, 3, 4, 9, 1, b'x', 0x01, 1, b'y'];
        varint::write(&mut wire, END_OF_NON_EXISTENT_RANGE);
        wire.extend_from_slice(&[3, 9]);
        let mut p = FetchParser::new(64);
        p.push(&wire);
        let a = p.next().unwrap().unwrap();
        let b = p.next().unwrap().unwrap();
        let c = p.next().unwrap().unwrap();
        let FetchItem::Object(a) = a else { panic!() };
        let FetchItem::Object(b) = b else { panic!() };
        assert_eq!((a.group_id, a.object_id, a.subgroup_id, a.publisher_priority), (3, 4, Some(0), 9));
        assert_eq!((b.group_id, b.object_id, b.subgroup_id, b.publisher_priority, &b.payload[..]), (3, 5, Some(0), 9, &b"y"[..]));
        assert_eq!(c, FetchItem::EndOfRange { end: Location::new(3, 9), unknown: false });
        p.finish().unwrap();
    }

    #[test]
    fn first_object_must_be_absolute() {
        let mut p = FetchParser::new(64);
        p.push(&[0x05, 0x00, 0x10, 9, 0]);
        assert!(p.next().is_err());
    }
}
