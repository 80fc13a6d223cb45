//! FETCH_HEADER streams (draft-ietf-moq-transport-18 §11.4.4), written by the
//! relay when it answers a FETCH from its cache.
//!
//! Every object is serialized with explicit fields where the flags allow it
//! (subgroup present, object/group delta present, priority present), which is
//! always valid and keeps a receiver's "prior object" state trivial.

use super::varint;

pub const FETCH_HEADER: u64 = 0x05;
const SUBGROUP_PRESENT: u64 = 0x03;
const OBJECT_DELTA: u64 = 0x04;
const GROUP_DELTA: u64 = 0x08;
const PRIORITY: u64 = 0x10;
const PROPERTIES: u64 = 0x20;
const DATAGRAM: u64 = 0x40;

/// Writes the stream header.
pub fn header(request_id: u64, out: &mut Vec<u8>) {
    varint::write(out, FETCH_HEADER);
    varint::write(out, request_id);
}

/// State for serializing ascending-order fetch objects.
#[derive(Default)]
pub struct FetchWriter {
    prior: Option<(u64, u64)>,
}

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
}
