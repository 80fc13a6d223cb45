//! Objects on the wire (draft-ietf-moq-transport-18 §11): what a subscriber
//! receives, and the writers a publisher uses to send SUBGROUP streams
//! (§11.4.2) and OBJECT_DATAGRAMs (§11.3.1).

use crate::error::{Error, Result};
use bytes::Bytes;
use moq_wire::coding::Location;
use moq_wire::varint;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use web_transport_quinn::SendStream;

/// Object Status values (§11.2.1.1).
pub mod status {
    pub const NORMAL: u64 = 0x0;
    pub const END_OF_GROUP: u64 = 0x3;
    pub const END_OF_TRACK: u64 = 0x4;
}

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

    /// The stream type: explicit Subgroup ID (mode 0b10) and FIRST_OBJECT,
    /// since we are the original publisher and start at the first object.
    pub fn stream_type(&self) -> u64 {
        let mut t = 0x10 | 0x04 | 0x40;
        if self.properties {
            t |= 0x01;
        }
        if self.end_of_group {
            t |= 0x08;
        }
        if self.priority.is_none() {
            t |= 0x20;
        }
        t
    }

    /// Serializes the SUBGROUP_HEADER for `alias`.
    pub fn encode(&self, alias: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        varint::write(&mut out, self.stream_type());
        varint::write(&mut out, alias);
        varint::write(&mut out, self.group_id);
        varint::write(&mut out, self.subgroup_id);
        if let Some(p) = self.priority {
            out.push(p);
        }
        out
    }
}

/// Writes one SUBGROUP stream: header first, then objects in ascending
/// Object ID order with delta encoding (§11.4.2 "Subgroup Object Fields").
pub struct SubgroupWriter {
    stream: SendStream,
    spec: SubgroupSpec,
    prev: Option<u64>,
}

impl SubgroupWriter {
    pub(crate) async fn open(wt: &web_transport_quinn::Session, alias: u64, spec: SubgroupSpec, opened: &Arc<AtomicU64>) -> Result<Self> {
        let mut stream = wt.open_uni().await?;
        if let Some(p) = spec.priority {
            // Lower publisher priority values are more urgent (§7).
            let _ = stream.set_priority(255 - i32::from(p));
        }
        stream.write_all(&spec.encode(alias)).await?;
        opened.fetch_add(1, Ordering::Relaxed);
        Ok(Self { stream, spec, prev: None })
    }

    pub fn spec(&self) -> &SubgroupSpec {
        &self.spec
    }

    fn delta(&mut self, object_id: u64) -> Result<u64> {
        let d = match self.prev {
            None => object_id,
            Some(p) if object_id > p => object_id - p - 1,
            Some(p) => return Err(Error::Transport(format!("object {object_id} after object {p}: IDs must ascend in a subgroup"))),
        };
        self.prev = Some(object_id);
        Ok(d)
    }

    /// Serializes one Normal object (without writing it).
    pub fn encode(&mut self, object_id: u64, properties: &[u8], payload: &[u8]) -> Result<Vec<u8>> {
        if !properties.is_empty() && !self.spec.properties {
            return Err(Error::Transport("object properties on a subgroup without the PROPERTIES bit".into()));
        }
        let mut out = Vec::with_capacity(payload.len() + 16);
        varint::write(&mut out, self.delta(object_id)?);
        if self.spec.properties {
            varint::write(&mut out, properties.len() as u64);
            out.extend_from_slice(properties);
        }
        varint::write(&mut out, payload.len() as u64);
        if payload.is_empty() {
            // Zero-length objects carry an explicit Normal status.
            varint::write(&mut out, status::NORMAL);
        }
        out.extend_from_slice(payload);
        Ok(out)
    }

    /// Sends a Normal object with no properties.
    pub async fn write(&mut self, object_id: u64, payload: &[u8]) -> Result<()> {
        self.write_with_properties(object_id, &[], payload).await
    }

    /// Sends a Normal object with raw Object Properties (Key-Value-Pairs).
    pub async fn write_with_properties(&mut self, object_id: u64, properties: &[u8], payload: &[u8]) -> Result<()> {
        let bytes = self.encode(object_id, properties, payload)?;
        self.stream.write_all(&bytes).await?;
        Ok(())
    }

    /// Sends a status-only object (End of Group, End of Track; §11.2.1.1).
    pub async fn write_status(&mut self, object_id: u64, status: u64) -> Result<()> {
        let mut out = Vec::with_capacity(8);
        varint::write(&mut out, self.delta(object_id)?);
        if self.spec.properties {
            varint::write(&mut out, 0);
        }
        varint::write(&mut out, 0);
        varint::write(&mut out, status);
        self.stream.write_all(&out).await?;
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

    /// The datagram type: PROPERTIES 0x01, END_OF_GROUP 0x02,
    /// ZERO_OBJECT_ID 0x04, DEFAULT_PRIORITY 0x08, STATUS 0x20.
    pub fn datagram_type(&self) -> u64 {
        let mut t = 0;
        if !self.properties.is_empty() {
            t |= 0x01;
        }
        if self.end_of_group && self.status.is_none() {
            t |= 0x02;
        }
        if self.object_id == 0 {
            t |= 0x04;
        }
        if self.priority.is_none() {
            t |= 0x08;
        }
        if self.status.is_some() {
            t |= 0x20;
        }
        t
    }

    /// Serializes the datagram for `alias`.
    pub fn encode(&self, alias: u64) -> Bytes {
        let mut out = Vec::with_capacity(self.payload.len() + 24);
        varint::write(&mut out, self.datagram_type());
        varint::write(&mut out, alias);
        varint::write(&mut out, self.group_id);
        if self.object_id != 0 {
            varint::write(&mut out, self.object_id);
        }
        if let Some(p) = self.priority {
            out.push(p);
        }
        if !self.properties.is_empty() {
            varint::write(&mut out, self.properties.len() as u64);
            out.extend_from_slice(&self.properties);
        }
        match self.status {
            Some(s) => varint::write(&mut out, s),
            None => out.extend_from_slice(&self.payload),
        }
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moq_wire::datagram::Datagram;
    use moq_wire::subgroup::{Event, SubgroupParser};

    #[test]
    fn subgroup_header_round_trips_through_the_relay_parser() {
        let spec = SubgroupSpec { group_id: 7, subgroup_id: 3, priority: Some(9), properties: true, end_of_group: true };
        let mut wire = spec.encode(42);
        let mut objects = Vec::new();
        let mut prev = None;
        for (id, payload) in [(0u64, &b"a"[..]), (2, b""), (3, b"xyz")] {
            let d = match prev {
                None => id,
                Some(p) => id - p - 1,
            };
            prev = Some(id);
            let mut o = Vec::new();
            varint::write(&mut o, d);
            varint::write(&mut o, 0);
            varint::write(&mut o, payload.len() as u64);
            if payload.is_empty() {
                varint::write(&mut o, 0);
            }
            o.extend_from_slice(payload);
            objects.push(o);
        }
        for o in &objects {
            wire.extend_from_slice(o);
        }
        let mut p = SubgroupParser::new(1 << 20);
        p.push(&wire);
        let Some(Event::Header(h)) = p.next().unwrap() else { panic!("no header") };
        assert_eq!((h.track_alias, h.group_id, h.subgroup_id, h.publisher_priority), (42, 7, Some(3), Some(9)));
        assert!(h.end_of_group() && h.has_properties());
        let mut ids = Vec::new();
        while let Some(Event::Object(o)) = p.next().unwrap() {
            ids.push((o.object_id, o.payload()));
        }
        assert_eq!(ids, vec![(0, Bytes::from_static(b"a")), (2, Bytes::new()), (3, Bytes::from_static(b"xyz"))]);
    }

    #[test]
    fn datagram_round_trips_through_the_relay_parser() {
        for spec in [
            DatagramSpec::new(5, 0, &b"hello"[..]),
            DatagramSpec { priority: None, properties: Bytes::from_static(&[0x02, 0x07]), ..DatagramSpec::new(5, 9, &b"x"[..]) },
            DatagramSpec { status: Some(status::END_OF_GROUP), ..DatagramSpec::new(6, 4, Bytes::new()) },
        ] {
            let d = Datagram::parse(spec.encode(77)).unwrap();
            assert_eq!((d.track_alias, d.group_id, d.object_id), (77, spec.group_id, spec.object_id));
            assert_eq!(d.publisher_priority, spec.priority);
            assert_eq!(d.properties(), spec.properties);
            assert_eq!(d.status, spec.status.unwrap_or(0));
            assert_eq!(d.payload(), if spec.status.is_some() { Bytes::new() } else { spec.payload.clone() });
        }
    }
}
