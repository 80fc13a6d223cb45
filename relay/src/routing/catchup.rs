//! Catch-up encoding: cached objects re-sent to a subscriber that attached
//! after they reached the relay. Objects between a SUBSCRIBE and its
//! SUBSCRIBE_OK belong to the subscription (draft-ietf-moq-transport-18
//! §5.1.2) but would otherwise fall in the gap; the track sends them from its
//! cache under its lock, so each object goes out exactly once.

use crate::routing::cache::CachedObject;
use crate::wire::varint;
use bytes::Bytes;

/// A cached datagram object for one subscriber (§11.3): type 0x01
/// (properties, Object ID and priority present) or 0x21 for a status.
pub fn datagram(alias: u64, group: u64, o: &CachedObject) -> Bytes {
    let mut d = Vec::with_capacity(o.payload.len() + 24);
    let status = o.payload.is_empty();
    let props = !o.properties.is_empty();
    varint::write(&mut d, if status { 0x20 } else { 0 } | u64::from(props));
    for v in [alias, group, o.object_id] {
        varint::write(&mut d, v);
    }
    d.push(o.priority);
    if props {
        varint::write(&mut d, o.properties.len() as u64);
        d.extend_from_slice(&o.properties);
    }
    if status {
        varint::write(&mut d, o.status);
    } else {
        d.extend_from_slice(&o.payload);
    }
    d.into()
}

/// SUBGROUP_HEADER type 0x15 (§11.4.2): explicit Subgroup ID, properties
/// present, publisher priority — fits any cached subgroup.
pub fn subgroup_header(alias: u64, group: u64, subgroup: u64, priority: u8) -> Bytes {
    let mut header = Vec::with_capacity(16);
    varint::write(&mut header, 0x15);
    for v in [alias, group, subgroup] {
        varint::write(&mut header, v);
    }
    header.push(priority);
    header.into()
}

/// Cached objects of one subgroup as stream objects (§11.4.2 "Subgroup
/// Object Fields"): Object ID deltas from the first, which carries its
/// absolute ID; the properties field only when the stream type has it.
pub fn subgroup_objects<'a>(objects: impl Iterator<Item = &'a CachedObject>, properties: bool) -> Bytes {
    let mut body = Vec::new();
    let mut prev: Option<u64> = None;
    for o in objects {
        varint::write(&mut body, prev.map_or(o.object_id, |p| o.object_id - p - 1));
        if properties {
            varint::write(&mut body, o.properties.len() as u64);
            body.extend_from_slice(&o.properties);
        }
        varint::write(&mut body, o.payload.len() as u64);
        if o.payload.is_empty() {
            varint::write(&mut body, o.status);
        }
        body.extend_from_slice(&o.payload);
        prev = Some(o.object_id);
    }
    body.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::subgroup::{Event, SubgroupParser};

    fn obj(id: u64, payload: &'static [u8]) -> CachedObject {
        CachedObject { object_id: id, subgroup_id: Some(0), priority: 3, properties: Bytes::new(), payload: payload.into(), status: 0 }
    }

    #[test]
    fn objects_parse_back_under_both_header_kinds() {
        let objects = [obj(2, b"a"), obj(3, b"bc"), obj(7, b""), obj(9, b"d")];
        for (stream_type, props) in [(0x15u64, true), (0x14, false)] {
            let mut bytes = subgroup_header(5, 1, 0, 3).to_vec();
            bytes[0] = stream_type as u8;
            bytes.extend_from_slice(&subgroup_objects(objects.iter(), props));
            let mut p = SubgroupParser::new(1 << 16);
            p.push(&bytes);
            let mut got = Vec::new();
            while let Some(e) = p.next().unwrap() {
                if let Event::Object(o) = e {
                    got.push((o.object_id, o.payload().to_vec()));
                }
            }
            let want: Vec<_> = objects.iter().map(|o| (o.object_id, o.payload.to_vec())).collect();
            assert_eq!(got, want, "stream type {stream_type:#x}");
        }
    }
}
