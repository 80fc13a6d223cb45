//! FETCH_HEADER streams (draft-ietf-moq-transport-18 §11.4.4): the one
//! writer ([`header`], [`FetchWriter`]), used by the relay when it answers a
//! FETCH from its cache and by a publishing client, and the one parser
//! ([`FetchParser`]).
//!
//! Every object is written with explicit fields where the flags allow it
//! (subgroup present, object/group delta present, priority present), which is
//! always valid and keeps a receiver's "prior object" state trivial. The
//! parser accepts every serialization §11.4.4.1 allows, elided fields and End
//! of Range markers (§11.4.4.2) included.

use super::{varint, WireError};
use bytes::{Buf, Bytes, BytesMut};
use moq_transport::coding::Location;

/// FETCH_HEADER stream type (§3.4, §11.4.4).
pub const FETCH_HEADER: u64 = 0x05;

/// Serialization Flags bits (§11.4.4.1).
mod flags {
    /// Mask of the two-bit Subgroup ID encoding; 0x03 means the field is present.
    pub const SUBGROUP_MASK: u64 = 0x03;
    pub const SUBGROUP_PRESENT: u64 = 0x03;
    pub const OBJECT_DELTA: u64 = 0x04;
    pub const GROUP_DELTA: u64 = 0x08;
    pub const PRIORITY: u64 = 0x10;
    pub const PROPERTIES: u64 = 0x20;
    pub const DATAGRAM: u64 = 0x40;
}
use flags::*;

/// Serialization Flags values of End of Range markers (§11.4.4.2).
pub const END_OF_NON_EXISTENT_RANGE: u64 = 0x8C;
pub const END_OF_UNKNOWN_RANGE: u64 = 0x10C;

/// Writes the stream header (§11.4.4 FETCH_HEADER: Type, Request ID).
pub fn header(request_id: u64, out: &mut Vec<u8>) {
    varint::write(out, FETCH_HEADER);
    varint::write(out, request_id);
}

/// State for serializing ascending-order fetch objects.
#[derive(Default)]
pub struct FetchWriter {
    prior: Option<(u64, u64)>,
}

/// One object to write, for [`FetchWriter::object`].
pub struct FetchObject<'a> {
    pub group_id: u64,
    pub object_id: u64,
    /// `None` for objects that arrived as datagrams.
    pub subgroup_id: Option<u64>,
    pub priority: u8,
    pub properties: &'a [u8],
    pub payload: &'a [u8],
}

impl FetchWriter {
    /// Serializes one object (§11.4.4 "Fetch Object Fields"). Objects must be
    /// given in ascending (group, object) order.
    pub fn object(&mut self, o: &FetchObject<'_>, out: &mut Vec<u8>) {
        let mut flags = PRIORITY | OBJECT_DELTA;
        match o.subgroup_id {
            Some(_) => flags |= SUBGROUP_PRESENT,
            None => flags |= DATAGRAM,
        }
        if !o.properties.is_empty() {
            flags |= PROPERTIES;
        }
        // Group delta is absent only when staying in the prior group.
        let (group_delta, object_delta) = match self.prior {
            Some((g, prev_obj)) if g == o.group_id => (None, o.object_id.saturating_sub(prev_obj)),
            Some((g, _)) => (Some(o.group_id.saturating_sub(g).saturating_sub(1)), o.object_id),
            None => (Some(o.group_id), o.object_id),
        };
        if group_delta.is_some() {
            flags |= GROUP_DELTA;
        }
        varint::write(out, flags);
        if let Some(d) = group_delta {
            varint::write(out, d);
        }
        if let Some(s) = o.subgroup_id {
            varint::write(out, s);
        }
        varint::write(out, object_delta);
        out.push(o.priority);
        if !o.properties.is_empty() {
            varint::write(out, o.properties.len() as u64);
            out.extend_from_slice(o.properties);
        }
        varint::write(out, o.payload.len() as u64);
        out.extend_from_slice(o.payload);
        self.prior = Some((o.group_id, o.object_id));
    }
}

/// One object from a fetch stream. Fetched objects carry no Object Status
/// (§11.2.1.1: status is absent in objects delivered via FETCH).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedObject {
    pub group_id: u64,
    /// `None` for objects whose forwarding preference was Datagram (flag 0x40).
    pub subgroup_id: Option<u64>,
    pub object_id: u64,
    pub publisher_priority: u8,
    /// Raw Object Properties (Key-Value-Pairs without the length prefix).
    pub properties: Bytes,
    pub payload: Bytes,
}

impl FetchedObject {
    pub fn location(&self) -> Location {
        Location::new(self.group_id, self.object_id)
    }
}

/// What a fetch stream carries: [`FetchParser`]'s output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    Object(FetchedObject),
    /// Objects up to and including `end` do not exist (`unknown == false`)
    /// or have unknown status (`unknown == true`), §11.4.4.2.
    EndOfRange {
        end: Location,
        unknown: bool,
    },
}

/// Incremental parser of one FETCH_HEADER stream (§11.4.4). Sans-IO: feed it
/// whatever arrived with [`Self::push`], take items from [`Self::next`].
///
/// Each object is serialized relative to the prior one (§11.4.4.1): Group
/// ID Delta, Subgroup ID, Object ID Delta and Priority may each be elided;
/// the parser keeps that "prior object" state. Groups are taken to ascend
/// (a Descending FETCH is never answered with one).
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

fn malformed(what: impl Into<String>) -> WireError {
    WireError::Malformed("fetch stream", what.into())
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

    /// The Request ID once the FETCH_HEADER is complete, `Ok(None)` before.
    pub fn header(&mut self) -> Result<Option<u64>, WireError> {
        if let Some(id) = self.request_id {
            return Ok(Some(id));
        }
        let b = &self.buf[..];
        let mut n = 0;
        let Some(t) = field(b, &mut n) else { return Ok(None) };
        if t != FETCH_HEADER {
            return Err(WireError::InvalidType(t));
        }
        let Some(id) = field(b, &mut n) else { return Ok(None) };
        self.buf.advance(n);
        self.request_id = Some(id);
        Ok(Some(id))
    }

    /// Next complete item, `Ok(None)` when more bytes are needed.
    /// (Not an `Iterator`: "no more yet" and errors are distinct outcomes.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<FetchItem>, WireError> {
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
            return Err(malformed(format!("invalid Serialization Flags {flags:#x}")));
        }
        let first = self.prior_group.is_none();
        let group_delta = if flags & GROUP_DELTA != 0 {
            let Some(d) = field(b, &mut n) else { return Ok(None) };
            Some(d)
        } else {
            None
        };
        let group = match (group_delta, self.prior_group) {
            (Some(d), None) => d,
            (Some(d), Some(g)) => g.checked_add(d).and_then(|x| x.checked_add(1)).ok_or_else(|| malformed("group overflow"))?,
            (None, Some(g)) => g,
            (None, None) => return Err(malformed("first object without Group ID Delta")),
        };
        let no_prior_subgroup = || malformed("prior Subgroup ID referenced without a prior object");
        let subgroup = if flags & DATAGRAM != 0 {
            None
        } else {
            match flags & SUBGROUP_MASK {
                0 => Some(0),
                1 => Some(self.prior_subgroup.ok_or_else(no_prior_subgroup)?),
                2 => Some(self.prior_subgroup.ok_or_else(no_prior_subgroup)?.saturating_add(1)),
                _ => {
                    let Some(s) = field(b, &mut n) else { return Ok(None) };
                    Some(s)
                }
            }
        };
        let object = if flags & OBJECT_DELTA != 0 {
            let Some(d) = field(b, &mut n) else { return Ok(None) };
            match (group_delta, self.prior_object) {
                (Some(_), _) | (None, None) => d,
                (None, Some(p)) => p.checked_add(d).ok_or_else(|| malformed("object overflow"))?,
            }
        } else {
            if first {
                return Err(malformed("first object without Object ID Delta"));
            }
            self.prior_object.unwrap_or(0).checked_add(1).ok_or_else(|| malformed("object overflow"))?
        };
        let priority = if flags & PRIORITY != 0 {
            let Some(&p) = b.get(n) else { return Ok(None) };
            n += 1;
            p
        } else {
            self.prior_priority.ok_or_else(|| malformed("prior Priority referenced without a prior object"))?
        };
        let mut properties = n..n;
        if flags & PROPERTIES != 0 {
            let Some(len) = field(b, &mut n) else { return Ok(None) };
            let len = usize::try_from(len).map_err(|_| WireError::TooLarge(len))?;
            if len > self.max_object_size {
                return Err(WireError::TooLarge(len as u64));
            }
            if b.len() < n + len {
                return Ok(None);
            }
            properties = n..n + len;
            n += len;
        }
        let Some(len) = field(b, &mut n) else { return Ok(None) };
        if len > self.max_object_size as u64 {
            return Err(WireError::TooLarge(len));
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
    pub fn finish(&self) -> Result<(), WireError> {
        if self.request_id.is_some() && self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::Truncated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_object_is_absolute_then_deltas() {
        let mut w = FetchWriter::default();
        let mut out = Vec::new();
        header(6, &mut out);
        assert_eq!(out, vec![0x05, 0x06]);
        out.clear();
        let o = |g, ob, p: &'static [u8]| FetchObject {
            group_id: g,
            object_id: ob,
            subgroup_id: Some(0),
            priority: 128,
            properties: &[],
            payload: p,
        };
        w.object(&o(2, 1, b"a"), &mut out);
        // flags 0x1f: subgroup present, object delta, group delta, priority.
        assert_eq!(out, vec![0x1f, 2, 0, 1, 0x80, 1, b'a']);
        out.clear();
        w.object(&o(2, 3, b"b"), &mut out);
        assert_eq!(out, vec![0x17, 0, 2, 0x80, 1, b'b']);
        out.clear();
        w.object(&o(5, 0, b""), &mut out);
        assert_eq!(out, vec![0x1f, 2, 0, 0, 0x80, 0]);
    }

    /// Group, object, subgroup, properties, payload.
    type Spec = (u64, u64, Option<u64>, &'static [u8], &'static [u8]);

    #[test]
    fn parses_what_the_writer_writes_byte_by_byte() {
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
        let Some(FetchItem::Object(a)) = p.next().unwrap() else { panic!() };
        let Some(FetchItem::Object(b)) = p.next().unwrap() else { panic!() };
        let c = p.next().unwrap().unwrap();
        assert_eq!((a.group_id, a.object_id, a.subgroup_id, a.publisher_priority), (3, 4, Some(0), 9));
        assert_eq!((b.group_id, b.object_id, b.subgroup_id, b.publisher_priority, &b.payload[..]), (3, 5, Some(0), 9, &b"y"[..]));
        assert_eq!(c, FetchItem::EndOfRange { end: Location::new(3, 9), unknown: false });
        p.finish().unwrap();
    }

    #[test]
    fn malformed_streams_are_errors() {
        // First object without Group ID Delta.
        let mut p = FetchParser::new(64);
        p.push(&[0x05, 0x00, 0x10, 9, 0]);
        assert!(matches!(p.next(), Err(WireError::Malformed(..))));
        // Not a FETCH_HEADER.
        let mut p = FetchParser::new(64);
        p.push(&[0x06, 0x00]);
        assert_eq!(p.next(), Err(WireError::InvalidType(6)));
        // Oversize payload, and FIN inside an object.
        let mut p = FetchParser::new(4);
        p.push(&[0x05, 0x00, 0x1f, 0, 0, 0, 0x80, 5]);
        assert_eq!(p.next(), Err(WireError::TooLarge(5)));
        let mut p = FetchParser::new(64);
        p.push(&[0x05, 0x00, 0x1f, 0, 0, 0, 0x80, 5, b'a']);
        assert_eq!(p.next(), Ok(None));
        assert_eq!(p.finish(), Err(WireError::Truncated));
    }
}
