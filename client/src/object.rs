//! Objects on the wire (draft-ietf-moq-transport-18 §11): what a subscriber
//! receives, and the writers a publisher uses to send SUBGROUP streams
//! (§11.4.2) and OBJECT_DATAGRAMs (§11.3.1). The bytes are moq-wire's: its
//! [`SubgroupHeader::encode`], [`ObjectWriter`] and [`datagram::encode`] are
//! the one encoder of each format; this module adds the stream handling.
//! Object Status values are [`moq_wire::status`].

use crate::error::{Error, Result};
use bytes::Bytes;
use moq_wire::coding::Location;
use moq_wire::datagram;
use moq_wire::status;
use moq_wire::subgroup::{bits, ObjectWriter, SubgroupHeader};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use web_transport_quinn::SendStream;

/// How an object reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// On a SUBGROUP stream; the number identifies the stream within the
    /// session (in accept order).
    Stream(u64),
    /// In an OBJECT_DATAGRAM.
    Datagram,
}

/// An object received on a subscription (§11.2.1 "Object Header").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub track_alias: u64,
    pub group_id: u64,
    /// `None` for objects that arrived as datagrams (no Subgroup, §11.2.1).
    pub subgroup_id: Option<u64>,
    pub object_id: u64,
    /// `None` when the header said DEFAULT_PRIORITY.
    pub publisher_priority: Option<u8>,
    pub status: u64,
    /// Raw Object Properties (Key-Value-Pairs without the length prefix).
    pub properties: Bytes,
    pub payload: Bytes,
    pub carrier: Carrier,
}

impl Object {
    pub fn location(&self) -> Location {
        Location::new(self.group_id, self.object_id)
    }
}

/// The header flags of a SUBGROUP stream we open (§11.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubgroupSpec {
    pub group_id: u64,
    pub subgroup_id: u64,
    /// `None` sets DEFAULT_PRIORITY (the track's priority applies).
    pub priority: Option<u8>,
    /// Sets the PROPERTIES bit: every object carries a Properties field.
    pub properties: bool,
    /// Sets END_OF_GROUP: this subgroup holds the group's largest object.
    pub end_of_group: bool,
}

impl SubgroupSpec {
    /// Subgroup `subgroup_id` of `group_id` with priority 128 and no properties.
    pub fn new(group_id: u64, subgroup_id: u64) -> Self {
        Self { group_id, subgroup_id, priority: Some(128), properties: false, end_of_group: false }
    }

    /// The SUBGROUP_HEADER for `alias`: explicit Subgroup ID (mode 0b10) and
    /// FIRST_OBJECT, since we are the original publisher and start at the
    /// first object.
    pub fn header(&self, alias: u64) -> SubgroupHeader {
        let mut flags = bits::FIRST_OBJECT;
        if self.properties {
            flags |= bits::PROPERTIES;
        }
        if self.end_of_group {
            flags |= bits::END_OF_GROUP;
        }
        SubgroupHeader::new(alias, self.group_id, self.subgroup_id, self.priority, flags)
    }

    /// The stream type of [`Self::header`].
    pub fn stream_type(&self) -> u64 {
        self.header(0).stream_type
    }
}

/// Writes one SUBGROUP stream: header first, then objects in ascending
/// Object ID order with delta encoding (§11.4.2 "Subgroup Object Fields").
pub struct SubgroupWriter {
    stream: SendStream,
    spec: SubgroupSpec,
    objects: ObjectWriter,
}

impl SubgroupWriter {
    pub(crate) async fn open(wt: &web_transport_quinn::Session, alias: u64, spec: SubgroupSpec, opened: &Arc<AtomicU64>) -> Result<Self> {
        let mut stream = wt.open_uni().await?;
        if let Some(p) = spec.priority {
            // Lower publisher priority values are more urgent (§7).
            let _ = stream.set_priority(255 - i32::from(p));
        }
        let mut header = Vec::with_capacity(16);
        spec.header(alias).encode(&mut header);
        stream.write_all(&header).await?;
        opened.fetch_add(1, Ordering::Relaxed);
        Ok(Self { stream, spec, objects: ObjectWriter::new(spec.properties) })
    }

    pub fn spec(&self) -> &SubgroupSpec {
        &self.spec
    }

    /// Serializes one object (without writing it); fails, writing nothing,
    /// when IDs do not ascend or the object cannot be sent on this stream.
    fn object(&mut self, object_id: u64, properties: &[u8], status: u64, payload: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(payload.len() + properties.len() + 16);
        self.objects.write(object_id, properties, status, payload, &mut out).map_err(|e| Error::Transport(e.to_string()))?;
        Ok(out)
    }

    /// Sends a Normal object with no properties.
    pub async fn write(&mut self, object_id: u64, payload: &[u8]) -> Result<()> {
        self.write_with_properties(object_id, &[], payload).await
    }

    /// Sends a Normal object with raw Object Properties (Key-Value-Pairs).
    pub async fn write_with_properties(&mut self, object_id: u64, properties: &[u8], payload: &[u8]) -> Result<()> {
        let bytes = self.object(object_id, properties, status::NORMAL, payload)?;
        self.stream.write_all(&bytes).await?;
        Ok(())
    }

    /// Sends a status-only object (End of Group, End of Track; §11.2.1.1).
    pub async fn write_status(&mut self, object_id: u64, status: u64) -> Result<()> {
        let bytes = self.object(object_id, &[], status, &[])?;
        self.stream.write_all(&bytes).await?;
        Ok(())
    }

    /// Ends the subgroup with FIN: every object was delivered (§11.4.3).
    pub fn finish(mut self) {
        let _ = self.stream.finish();
    }

    /// Abandons the subgroup with a reset (§11.4.3).
    pub fn reset(mut self, code: u32) {
        let _ = self.stream.reset(code);
    }
}

/// One OBJECT_DATAGRAM to send (§11.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatagramSpec {
    pub group_id: u64,
    pub object_id: u64,
    /// `None` sets DEFAULT_PRIORITY.
    pub priority: Option<u8>,
    pub end_of_group: bool,
    /// Raw Object Properties; empty means the PROPERTIES bit is clear.
    pub properties: Bytes,
    /// `Some(status)` sends a status datagram (STATUS bit, no payload).
    pub status: Option<u64>,
    pub payload: Bytes,
}

impl DatagramSpec {
    pub fn new(group_id: u64, object_id: u64, payload: impl Into<Bytes>) -> Self {
        Self {
            group_id,
            object_id,
            priority: Some(128),
            end_of_group: false,
            properties: Bytes::new(),
            status: None,
            payload: payload.into(),
        }
    }

    /// The fields moq-wire's encoder takes, for `alias`.
    pub fn fields(&self, alias: u64) -> datagram::Fields<'_> {
        datagram::Fields {
            track_alias: alias,
            group_id: self.group_id,
            object_id: self.object_id,
            publisher_priority: self.priority,
            end_of_group: self.end_of_group,
            properties: &self.properties,
            status: self.status,
            payload: &self.payload,
        }
    }

    /// The datagram type: PROPERTIES 0x01, END_OF_GROUP 0x02,
    /// ZERO_OBJECT_ID 0x04, DEFAULT_PRIORITY 0x08, STATUS 0x20.
    pub fn datagram_type(&self) -> u64 {
        self.fields(0).datagram_type()
    }

    /// The datagram for `alias`, serialized by [`datagram::encode`].
    pub fn encode(&self, alias: u64) -> Bytes {
        let mut out = Vec::with_capacity(self.payload.len() + self.properties.len() + 24);
        datagram::encode(&self.fields(alias), &mut out);
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moq_wire::datagram::Datagram;
    use moq_wire::subgroup::{Event, SubgroupParser};

    #[test]
    fn subgroup_spec_maps_to_the_header_it_always_sent() {
        // Explicit Subgroup ID and FIRST_OBJECT (0x54), plus PROPERTIES,
        // END_OF_GROUP and DEFAULT_PRIORITY as asked.
        for (properties, end_of_group, priority, t) in
            [(false, false, Some(128), 0x54), (true, true, Some(9), 0x5d), (false, true, None, 0x7c), (true, false, None, 0x75)]
        {
            let spec = SubgroupSpec { group_id: 7, subgroup_id: 3, priority, properties, end_of_group };
            assert_eq!(spec.stream_type(), t);
            let mut wire = Vec::new();
            spec.header(42).encode(&mut wire);
            let mut want = vec![t as u8, 42, 7, 3];
            want.extend(priority);
            assert_eq!(wire, want);
            let mut p = SubgroupParser::new(1 << 20);
            p.push(&wire);
            let Some(Event::Header(h)) = p.next().unwrap() else { panic!("no header") };
            assert_eq!((h.track_alias, h.group_id, h.subgroup_id, h.publisher_priority), (42, 7, Some(3), priority));
            assert_eq!((h.end_of_group(), h.has_properties()), (end_of_group, properties));
        }
    }

    #[test]
    fn datagram_round_trips_through_the_relay_parser() {
        for spec in [
            DatagramSpec::new(5, 0, &b"hello"[..]),
            DatagramSpec { priority: None, properties: Bytes::from_static(&[0x02, 0x07]), ..DatagramSpec::new(5, 9, &b"x"[..]) },
            DatagramSpec { status: Some(status::END_OF_GROUP), ..DatagramSpec::new(6, 4, Bytes::new()) },
        ] {
            // The type the client always computed for these fields.
            let mut t = u64::from(!spec.properties.is_empty());
            t |= if spec.end_of_group && spec.status.is_none() { 0x02 } else { 0 };
            t |= if spec.object_id == 0 { 0x04 } else { 0 };
            t |= if spec.priority.is_none() { 0x08 } else { 0 };
            t |= if spec.status.is_some() { 0x20 } else { 0 };
            assert_eq!(spec.datagram_type(), t);
            let d = Datagram::parse(spec.encode(77)).unwrap();
            assert_eq!((d.track_alias, d.group_id, d.object_id), (77, spec.group_id, spec.object_id));
            assert_eq!(d.publisher_priority, spec.priority);
            assert_eq!(d.properties(), spec.properties);
            assert_eq!(d.status, spec.status.unwrap_or(0));
            assert_eq!(d.payload(), if spec.status.is_some() { Bytes::new() } else { spec.payload.clone() });
        }
    }
}
