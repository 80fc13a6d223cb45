//! Catch-up encoding: cached objects re-sent to a subscriber that attached
//! after they reached the relay. Objects between a SUBSCRIBE and its
//! SUBSCRIBE_OK belong to the subscription (draft-ietf-moq-transport-18
//! §5.1.2) but would otherwise fall in the gap; the track sends them from its
//! cache under its lock, so each object goes out exactly once.
//!
//! Every byte is written by moq-wire's encoders (§11.3.1, §11.4.2); this
//! module only maps cached objects onto their fields.

use crate::routing::cache::CachedObject;
use crate::wire::subgroup::{bits, ObjectWriter, SubgroupHeader};
use crate::wire::{datagram, status};
use bytes::Bytes;

/// A cached datagram object for one subscriber (§11.3.1): priority always
/// present, a status datagram when the payload is empty.
pub fn datagram(alias: u64, group: u64, o: &CachedObject) -> Bytes {
    let mut d = Vec::with_capacity(o.payload.len() + o.properties.len() + 24);
    let is_status = o.payload.is_empty();
    // Only Normal objects may carry properties (§11.2.1.2).
    let properties = if is_status && o.status != status::NORMAL { &[][..] } else { &o.properties[..] };
    let fields = datagram::Fields {
        track_alias: alias,
        group_id: group,
        object_id: o.object_id,
        publisher_priority: Some(o.priority),
        end_of_group: false,
        properties,
        status: is_status.then_some(o.status),
        payload: &o.payload,
    };
    datagram::encode(&fields, &mut d);
    d.into()
}

/// SUBGROUP_HEADER type 0x15 (§11.4.2): explicit Subgroup ID, properties
/// present, publisher priority — fits any cached subgroup.
pub fn subgroup_header(alias: u64, group: u64, subgroup: u64, priority: u8) -> Bytes {
    let mut header = Vec::with_capacity(16);
    SubgroupHeader::new(alias, group, subgroup, Some(priority), bits::PROPERTIES).encode(&mut header);
    header.into()
}

/// Cached objects of one subgroup as stream objects, in one buffer (§11.4.2
/// "Subgroup Object Fields"): Object ID deltas from the first, which carries
/// its absolute ID; properties only when the stream type has the field.
pub fn subgroup_objects<'a>(objects: impl Iterator<Item = &'a CachedObject>, properties: bool) -> Bytes {
    let mut body = Vec::new();
    let mut w = ObjectWriter::new(properties);
    for o in objects {
        let props = if properties { &o.properties[..] } else { &[][..] };
        // The cache holds one entry per Location, in ascending order, of
        // objects that parsed, so each can be written; one that cannot (the
        // writer refuses it whole) is left out rather than sent malformed.
        let written = w.write(o.object_id, props, o.status, &o.payload, &mut body);
        debug_assert!(written.is_ok(), "catch-up object {}: {written:?}", o.object_id);
    }
    body.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::datagram::Datagram;
    use crate::wire::subgroup::{Event, SubgroupParser};

    fn obj(id: u64, payload: &'static [u8]) -> CachedObject {
        CachedObject { object_id: id, subgroup_id: Some(0), priority: 3, properties: Bytes::new(), payload: payload.into(), status: 0 }
    }

    #[test]
    fn objects_parse_back_under_both_header_kinds() {
        let objects = [obj(2, b"a"), obj(3, b"bc"), obj(7, b""), obj(9, b"d")];
        for (stream_type, props) in [(0x15u64, true), (0x14, false)] {
            let mut bytes = subgroup_header(5, 1, 0, 3).to_vec();
            assert_eq!(bytes, [0x15, 5, 1, 0, 3]);
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

    #[test]
    fn datagrams_parse_back() {
        let end = CachedObject { status: status::END_OF_GROUP, ..obj(4, b"") };
        for o in [obj(0, b"x"), CachedObject { properties: Bytes::from_static(&[0x02, 0x05]), ..obj(9, b"yz") }, end] {
            let d = Datagram::parse(datagram(8, 6, &o)).unwrap();
            assert_eq!((d.track_alias, d.group_id, d.object_id, d.publisher_priority), (8, 6, o.object_id, Some(3)));
            assert_eq!((d.properties(), d.payload(), d.status), (o.properties.clone(), o.payload.clone(), o.status));
        }
    }
}
