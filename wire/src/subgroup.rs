//! SUBGROUP_HEADER data streams (draft-ietf-moq-transport-18 §11.4.2
//! "Subgroup Header" and §11.2 "Objects"): the incremental parser and the one
//! encoder of the header ([`SubgroupHeader::encode`]) and of the object fields
//! ([`ObjectWriter`]).
//!
//! Sans-IO: bytes go in with [`SubgroupParser::push`], header and objects come
//! out of [`SubgroupParser::next`]. Each object is handed out as the exact
//! bytes it had on the wire (a zero-copy slice of the receive buffer), plus the
//! offsets a relay needs: forwarding never re-encodes an object except the
//! first one on a stream that joins mid-subgroup (its Object ID Delta becomes
//! absolute, §11.4.2 "The Object ID is the Object ID Delta if it's the first
//! Object in the Subgroup stream").
//!
//! moq-transport has typed decoders for these fields, but they decode into
//! owned structures and log at trace level per field; the relay forwards tens
//! of thousands of objects per second and only needs boundaries, so this is
//! written for that job.

use super::{status, varint, WireError};
use bytes::{Buf, Bytes, BytesMut};

/// Subgroup header type bits (§11.4.2).
pub mod bits {
    /// Every object carries a Properties field.
    pub const PROPERTIES: u64 = 0x01;
    /// Mask of the two-bit SUBGROUP_ID_MODE field.
    pub const SUBGROUP_ID_MODE: u64 = 0x06;
    /// SUBGROUP_ID_MODE 0b10: the Subgroup ID field is present.
    pub const EXPLICIT_SUBGROUP_ID: u64 = 0x04;
    /// This subgroup holds the group's largest object.
    pub const END_OF_GROUP: u64 = 0x08;
    /// Bit 4, set in every SUBGROUP_HEADER type.
    pub const SUBGROUP: u64 = 0x10;
    /// The Priority field is absent: the subscription's priority applies.
    pub const DEFAULT_PRIORITY: u64 = 0x20;
    /// The stream starts at the subgroup's first object as published.
    pub const FIRST_OBJECT: u64 = 0x40;
}

/// How the Subgroup ID is carried (§11.4.2 SUBGROUP_ID_MODE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubgroupIdMode {
    Zero,
    FirstObject,
    Explicit,
}

/// True for every valid SUBGROUP_HEADER type: 0b0XX1XXXX without mode 0b11.
pub fn is_subgroup_type(t: u64) -> bool {
    t < 0x80 && t & bits::SUBGROUP != 0 && t & bits::SUBGROUP_ID_MODE != bits::SUBGROUP_ID_MODE
}

/// A decoded SUBGROUP_HEADER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubgroupHeader {
    pub stream_type: u64,
    pub track_alias: u64,
    pub group_id: u64,
    /// Known for Zero and Explicit modes at once; for FirstObject mode once the
    /// first object has been parsed (see [`SubgroupParser::subgroup_id`]).
    pub subgroup_id: Option<u64>,
    /// `None` when DEFAULT_PRIORITY is set: the track's priority applies.
    pub publisher_priority: Option<u8>,
}

impl SubgroupHeader {
    /// A header with an explicit Subgroup ID (SUBGROUP_ID_MODE 0b10), as an
    /// original publisher or a relay's catch-up writes it. `flags` is any of
    /// [`bits::PROPERTIES`], [`bits::END_OF_GROUP`], [`bits::FIRST_OBJECT`];
    /// DEFAULT_PRIORITY is set when `publisher_priority` is `None`.
    pub fn new(track_alias: u64, group_id: u64, subgroup_id: u64, publisher_priority: Option<u8>, flags: u64) -> Self {
        let mut stream_type = bits::SUBGROUP | bits::EXPLICIT_SUBGROUP_ID;
        stream_type |= flags & (bits::PROPERTIES | bits::END_OF_GROUP | bits::FIRST_OBJECT);
        if publisher_priority.is_none() {
            stream_type |= bits::DEFAULT_PRIORITY;
        }
        Self { stream_type, track_alias, group_id, subgroup_id: Some(subgroup_id), publisher_priority }
    }

    pub fn mode(&self) -> SubgroupIdMode {
        match (self.stream_type & bits::SUBGROUP_ID_MODE) >> 1 {
            0 => SubgroupIdMode::Zero,
            1 => SubgroupIdMode::FirstObject,
            _ => SubgroupIdMode::Explicit,
        }
    }
    pub fn has_properties(&self) -> bool {
        self.stream_type & bits::PROPERTIES != 0
    }
    pub fn end_of_group(&self) -> bool {
        self.stream_type & bits::END_OF_GROUP != 0
    }

    /// Serializes the header (§11.4.2 SUBGROUP_HEADER): Type, Track Alias,
    /// Group ID, then the Subgroup ID if the mode is explicit and the
    /// Publisher Priority unless DEFAULT_PRIORITY is set. The one encoder of
    /// this header.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let t = self.stream_type;
        debug_assert!(is_subgroup_type(t), "invalid SUBGROUP_HEADER type {t:#x}");
        debug_assert_eq!(t & bits::DEFAULT_PRIORITY != 0, self.publisher_priority.is_none(), "priority and DEFAULT_PRIORITY disagree");
        varint::write(out, t);
        varint::write(out, self.track_alias);
        varint::write(out, self.group_id);
        if self.mode() == SubgroupIdMode::Explicit {
            varint::write(out, self.subgroup_id.unwrap_or(0));
        }
        if t & bits::DEFAULT_PRIORITY == 0 {
            out.push(self.publisher_priority.unwrap_or(crate::DEFAULT_PUBLISHER_PRIORITY));
        }
    }

    /// This header with another Track Alias, as a relay sends it on each
    /// downstream subscription (§11.1: aliases are per session).
    ///
    /// With `joined_mid_stream` the copy starts after the upstream stream's
    /// first object, so FIRST_OBJECT is cleared and a FirstObject-mode Subgroup
    /// ID (which would now be derived from the wrong object) is made explicit.
    pub fn forwarded(&self, alias: u64, subgroup_id: u64, joined_mid_stream: bool) -> Self {
        let mut h = Self { track_alias: alias, subgroup_id: Some(subgroup_id), ..self.clone() };
        if joined_mid_stream {
            h.stream_type &= !bits::FIRST_OBJECT;
            if self.mode() == SubgroupIdMode::FirstObject {
                h.stream_type = (h.stream_type & !bits::SUBGROUP_ID_MODE) | bits::EXPLICIT_SUBGROUP_ID;
            }
        }
        h
    }

    /// [`Self::forwarded`], encoded.
    pub fn encode_for(&self, alias: u64, subgroup_id: u64, joined_mid_stream: bool, out: &mut Vec<u8>) {
        self.forwarded(alias, subgroup_id, joined_mid_stream).encode(out);
    }
}

/// Writes the objects of one subgroup stream (§11.4.2 "Subgroup Object
/// Fields"): the first with its absolute Object ID, each later one with the
/// delta from its predecessor. The one encoder of these fields.
#[derive(Debug, Clone)]
pub struct ObjectWriter {
    properties: bool,
    prev: Option<u64>,
}

impl ObjectWriter {
    /// For a stream whose header has the PROPERTIES bit set (`properties`) or not.
    pub fn new(properties: bool) -> Self {
        Self { properties, prev: None }
    }

    /// The Object ID last written.
    pub fn prev(&self) -> Option<u64> {
        self.prev
    }

    /// Appends one object to `out`:
    ///
    /// ```text
    /// Object ID Delta (vi64), [Properties (..),] Object Payload Length (vi64),
    /// [Object Status (vi64),] [Object Payload (..)]
    /// ```
    ///
    /// Properties are written (possibly with length 0) exactly when the
    /// stream has the PROPERTIES bit; the status only when the payload is
    /// empty. Writes nothing and fails when Object IDs do not ascend, when
    /// properties come on a stream without the bit, for an unknown status, or
    /// for properties or a payload on an object whose status is not Normal
    /// (§11.2.1.1, §11.2.1.2).
    pub fn write(&mut self, object_id: u64, properties: &[u8], status: u64, payload: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
        let delta = match self.prev {
            None => object_id,
            Some(p) if object_id > p => object_id - p - 1,
            Some(p) => {
                return Err(WireError::Malformed("subgroup object", format!("object {object_id} after object {p}: IDs must ascend")))
            }
        };
        if !properties.is_empty() && !self.properties {
            return Err(WireError::Malformed("subgroup object", "properties on a stream without the PROPERTIES bit".into()));
        }
        if !status::is_valid(status) {
            return Err(WireError::InvalidStatus(status));
        }
        if status != status::NORMAL && !properties.is_empty() {
            return Err(WireError::PropertiesOnStatus);
        }
        if status != status::NORMAL && !payload.is_empty() {
            return Err(WireError::Malformed("subgroup object", format!("payload on an object with status {status:#x}")));
        }
        varint::write(out, delta);
        if self.properties {
            varint::write(out, properties.len() as u64);
            out.extend_from_slice(properties);
        }
        varint::write(out, payload.len() as u64);
        if payload.is_empty() {
            varint::write(out, status);
        }
        out.extend_from_slice(payload);
        self.prev = Some(object_id);
        Ok(())
    }
}

/// One object as received, with offsets into `raw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub object_id: u64,
    /// The whole serialized object (§11.4.2 "Subgroup Object Fields").
    pub raw: Bytes,
    /// Offset of the first byte after Object ID Delta.
    pub after_delta: usize,
    /// Properties bytes (without their length prefix); empty if none.
    pub properties: std::ops::Range<usize>,
    pub payload: std::ops::Range<usize>,
    pub status: u64,
}

impl Object {
    pub fn payload(&self) -> Bytes {
        self.raw.slice(self.payload.clone())
    }
    pub fn properties(&self) -> Bytes {
        self.raw.slice(self.properties.clone())
    }
    /// Writes this object as the first one on a new stream: Object ID Delta
    /// becomes the absolute Object ID (§11.4.2) and the fields after it are
    /// copied as received: the forwarding fast path beside [`ObjectWriter`].
    pub fn encode_as_first(&self, out: &mut Vec<u8>) {
        varint::write(out, self.object_id);
        out.extend_from_slice(&self.raw[self.after_delta..]);
    }
}

/// Parser output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Header(SubgroupHeader),
    Object(Object),
}

/// Incremental SUBGROUP stream parser. Feed it whatever arrived; it never
/// buffers more than one incomplete object plus one chunk.
pub struct SubgroupParser {
    buf: BytesMut,
    header: Option<SubgroupHeader>,
    prev_object: Option<u64>,
    max_object_size: usize,
}

impl SubgroupParser {
    pub fn new(max_object_size: usize) -> Self {
        Self { buf: BytesMut::new(), header: None, prev_object: None, max_object_size }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    pub fn header(&self) -> Option<&SubgroupHeader> {
        self.header.as_ref()
    }

    /// The stream's Subgroup ID once it is known.
    pub fn subgroup_id(&self) -> Option<u64> {
        self.header.as_ref().and_then(|h| h.subgroup_id)
    }

    /// Bytes received but not yet parsed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Next complete header or object, `Ok(None)` when more bytes are needed.
    /// (Not an `Iterator`: "no more yet" and errors are distinct outcomes.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Event>, WireError> {
        if self.header.is_none() {
            return self.parse_header();
        }
        self.parse_object()
    }

    /// Call at FIN: a stream may not end inside an object (§11.4).
    pub fn finish(&self) -> Result<(), WireError> {
        if self.buf.is_empty() && self.header.is_some() {
            Ok(())
        } else {
            Err(WireError::Truncated)
        }
    }

    fn parse_header(&mut self) -> Result<Option<Event>, WireError> {
        let b = &self.buf[..];
        let Some((t, mut n)) = varint::read(b) else { return Ok(None) };
        if !is_subgroup_type(t) {
            return Err(WireError::InvalidType(t));
        }
        let Some((alias, l)) = varint::read(&b[n..]) else { return Ok(None) };
        n += l;
        let Some((group, l)) = varint::read(&b[n..]) else { return Ok(None) };
        n += l;
        let mode = (t & bits::SUBGROUP_ID_MODE) >> 1;
        let subgroup_id = match mode {
            0 => Some(0),
            1 => None,
            _ => {
                let Some((s, l)) = varint::read(&b[n..]) else { return Ok(None) };
                n += l;
                Some(s)
            }
        };
        let publisher_priority = if t & bits::DEFAULT_PRIORITY != 0 {
            None
        } else {
            let Some(&p) = b.get(n) else { return Ok(None) };
            n += 1;
            Some(p)
        };
        self.buf.advance(n);
        let h = SubgroupHeader { stream_type: t, track_alias: alias, group_id: group, subgroup_id, publisher_priority };
        self.header = Some(h.clone());
        Ok(Some(Event::Header(h)))
    }

    fn parse_object(&mut self) -> Result<Option<Event>, WireError> {
        let has_props = self.header.as_ref().is_some_and(|h| h.has_properties());
        let b = &self.buf[..];
        let Some((delta, after_delta)) = varint::read(b) else { return Ok(None) };
        let mut n = after_delta;
        let mut properties = n..n;
        if has_props {
            let Some((plen, l)) = varint::read(&b[n..]) else { return Ok(None) };
            n += l;
            let plen = usize::try_from(plen).map_err(|_| WireError::TooLarge(u64::MAX))?;
            if plen > self.max_object_size {
                return Err(WireError::TooLarge(plen as u64));
            }
            if b.len() < n + plen {
                return Ok(None);
            }
            properties = n..n + plen;
            n += plen;
        }
        let Some((len, l)) = varint::read(&b[n..]) else { return Ok(None) };
        n += l;
        if len > self.max_object_size as u64 {
            return Err(WireError::TooLarge(len));
        }
        let len = len as usize;
        let mut status = status::NORMAL;
        if len == 0 {
            let Some((s, l)) = varint::read(&b[n..]) else { return Ok(None) };
            n += l;
            if !status::is_valid(s) {
                return Err(WireError::InvalidStatus(s));
            }
            // §11.2.1.2: only Normal objects may carry properties.
            if s != status::NORMAL && !properties.is_empty() {
                return Err(WireError::PropertiesOnStatus);
            }
            status = s;
        }
        if b.len() < n + len {
            return Ok(None);
        }
        let payload = n..n + len;
        n += len;
        let object_id = match self.prev_object {
            None => delta,
            Some(prev) => prev.checked_add(delta).and_then(|v| v.checked_add(1)).ok_or(WireError::ObjectIdOverflow)?,
        };
        self.prev_object = Some(object_id);
        if let Some(h) = self.header.as_mut() {
            if h.subgroup_id.is_none() {
                h.subgroup_id = Some(object_id);
            }
        }
        let raw = self.buf.split_to(n).freeze();
        Ok(Some(Event::Object(Object { object_id, raw, after_delta, properties, payload, status })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(delta: u64, props: Option<&[u8]>, payload: &[u8], status: Option<u64>) -> Vec<u8> {
        let mut v = Vec::new();
        varint::write(&mut v, delta);
        if let Some(p) = props {
            varint::write(&mut v, p.len() as u64);
            v.extend_from_slice(p);
        }
        varint::write(&mut v, payload.len() as u64);
        if let Some(s) = status {
            varint::write(&mut v, s);
        }
        v.extend_from_slice(payload);
        v
    }

    fn drain(p: &mut SubgroupParser) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(e) = p.next().unwrap() {
            out.push(e);
        }
        out
    }

    #[test]
    fn header_explicit_with_priority_then_objects_byte_by_byte() {
        // type 0x14: explicit subgroup id, priority present.
        let mut wire = vec![0x14, 0x07, 0x02, 0x05, 0x80];
        wire.extend(obj(0, None, b"hello", None));
        wire.extend(obj(1, None, b"", Some(status::END_OF_GROUP)));
        let mut p = SubgroupParser::new(1 << 20);
        let mut events = Vec::new();
        for b in &wire {
            p.push(&[*b]);
            events.extend(drain(&mut p));
        }
        assert_eq!(events.len(), 3);
        let Event::Header(h) = &events[0] else { panic!("no header") };
        assert_eq!((h.track_alias, h.group_id, h.subgroup_id, h.publisher_priority), (7, 2, Some(5), Some(0x80)));
        let Event::Object(o) = &events[1] else { panic!() };
        assert_eq!((o.object_id, &o.payload()[..]), (0, &b"hello"[..]));
        let Event::Object(o) = &events[2] else { panic!() };
        assert_eq!((o.object_id, o.status), (2, status::END_OF_GROUP));
        p.finish().unwrap();
    }

    #[test]
    fn first_object_mode_takes_subgroup_id_from_first_object() {
        // 0x33: FirstObject mode, properties, default priority.
        let mut wire = vec![0x33, 0x01, 0x09];
        wire.extend(obj(4, Some(&[0x02, 0x05]), b"x", None));
        let mut p = SubgroupParser::new(1 << 20);
        p.push(&wire);
        let ev = drain(&mut p);
        assert_eq!(p.subgroup_id(), Some(4));
        let Event::Object(o) = &ev[1] else { panic!() };
        assert_eq!(&o.properties()[..], &[0x02, 0x05]);
        assert_eq!(&o.raw[..], &wire[3..]);
    }

    #[test]
    fn rejects_reserved_mode_and_non_subgroup_types() {
        for t in [0x16u8, 0x17, 0x1e, 0x05, 0x20, 0x0f] {
            let mut p = SubgroupParser::new(1024);
            p.push(&[t, 0, 0, 0]);
            assert!(p.next().is_err(), "type {t:#x} accepted");
        }
    }

    #[test]
    fn oversize_and_bad_status_are_errors() {
        let mut p = SubgroupParser::new(4);
        p.push(&[0x10, 0, 0, 0]);
        let mut wire = Vec::new();
        varint::write(&mut wire, 0);
        varint::write(&mut wire, 5_000_000);
        p.push(&wire);
        p.next().unwrap();
        assert!(matches!(p.next(), Err(WireError::TooLarge(5_000_000))));

        let mut p = SubgroupParser::new(64);
        p.push(&[0x10, 0, 0, 0, 0, 0, 0x02]);
        p.next().unwrap();
        assert!(matches!(p.next(), Err(WireError::InvalidStatus(2))));
    }

    #[test]
    fn fin_inside_object_is_truncated() {
        let mut p = SubgroupParser::new(64);
        p.push(&[0x10, 0, 0, 0, 0, 3, b'a']);
        drain(&mut p);
        assert!(matches!(p.finish(), Err(WireError::Truncated)));
    }

    #[test]
    fn rewrite_for_mid_stream_join() {
        let h = SubgroupHeader { stream_type: 0x52, track_alias: 1, group_id: 3, subgroup_id: Some(0), publisher_priority: Some(9) };
        let mut out = Vec::new();
        h.encode_for(42, 0, true, &mut out);
        // FIRST_OBJECT cleared, mode explicit (0x14), alias 42, group 3, subgroup 0, prio 9.
        assert_eq!(out, vec![0x14, 42, 3, 0, 9]);
        let mut out = Vec::new();
        h.encode_for(42, 0, false, &mut out);
        assert_eq!(out, vec![0x52, 42, 3, 9]);
    }

    #[test]
    fn header_encoder_writes_what_publishers_and_catch_up_send() {
        // Catch-up: explicit Subgroup ID, properties, priority (0x15).
        let mut out = Vec::new();
        SubgroupHeader::new(5, 1, 2, Some(3), bits::PROPERTIES).encode(&mut out);
        assert_eq!(out, vec![0x15, 5, 1, 2, 3]);
        // An original publisher: FIRST_OBJECT, END_OF_GROUP, default priority (0x7c).
        let h = SubgroupHeader::new(300, 7, 0, None, bits::FIRST_OBJECT | bits::END_OF_GROUP);
        out.clear();
        h.encode(&mut out);
        assert_eq!(out, vec![0x7c, 0x81, 0x2c, 7, 0]);
        let mut p = SubgroupParser::new(64);
        p.push(&out);
        assert_eq!(p.next().unwrap(), Some(Event::Header(h)));
    }

    #[test]
    fn object_writer_round_trips_and_refuses_what_cannot_be_sent() {
        let mut wire = Vec::new();
        SubgroupHeader::new(1, 0, 0, Some(0), bits::PROPERTIES).encode(&mut wire);
        let mut w = ObjectWriter::new(true);
        w.write(2, &[0x02, 0x05], status::NORMAL, b"a", &mut wire).unwrap();
        w.write(3, &[], status::NORMAL, b"", &mut wire).unwrap();
        w.write(7, &[], status::END_OF_GROUP, b"", &mut wire).unwrap();
        let len = wire.len();
        assert!(w.write(7, &[], status::NORMAL, b"x", &mut wire).is_err(), "IDs must ascend");
        assert!(w.write(8, &[0x02, 0x05], status::END_OF_TRACK, b"", &mut wire).is_err());
        assert!(w.write(8, &[], 2, b"", &mut wire).is_err());
        assert!(w.write(8, &[], status::END_OF_TRACK, b"x", &mut wire).is_err());
        assert!(ObjectWriter::new(false).write(0, &[0x02, 0x05], status::NORMAL, b"a", &mut wire).is_err());
        assert_eq!(wire.len(), len, "failed writes wrote nothing");
        let mut p = SubgroupParser::new(64);
        p.push(&wire);
        let got: Vec<_> = drain(&mut p)
            .into_iter()
            .filter_map(|e| match e {
                Event::Object(o) => Some((o.object_id, o.properties().to_vec(), o.status, o.payload().to_vec())),
                Event::Header(_) => None,
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (2, vec![0x02, 0x05], status::NORMAL, b"a".to_vec()),
                (3, vec![], status::NORMAL, vec![]),
                (7, vec![], status::END_OF_GROUP, vec![])
            ]
        );
        p.finish().unwrap();
    }
}
