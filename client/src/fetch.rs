//! FETCH responses (draft-ietf-moq-transport-18 §10.12, §10.13, §11.4.4):
//! the result types, and the FETCH_HEADER stream parser as the session uses
//! it. The parser itself is moq-wire's ([`moq_wire::fetch::FetchParser`],
//! sans-IO); this only turns its errors into the client's.

use crate::error::Result;
use bytes::Bytes;
use moq_wire::coding::{KeyValuePairs, Location};

pub use moq_wire::fetch::{FetchItem, FetchedObject, END_OF_NON_EXISTENT_RANGE, END_OF_UNKNOWN_RANGE, FETCH_HEADER};

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

/// Incremental parser of one FETCH_HEADER stream, fed with whatever arrived:
/// [`moq_wire::fetch::FetchParser`] with the client's error type.
pub struct FetchParser(moq_wire::fetch::FetchParser);

impl FetchParser {
    pub fn new(max_object_size: usize) -> Self {
        Self(moq_wire::fetch::FetchParser::new(max_object_size))
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.0.push(chunk);
    }

    /// The Request ID once the FETCH_HEADER is complete.
    pub fn header(&mut self) -> Result<Option<u64>> {
        Ok(self.0.header()?)
    }

    /// Next complete item, `Ok(None)` when more bytes are needed.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<FetchItem>> {
        Ok(self.0.next()?)
    }

    /// Call at FIN: the stream may not end inside an object (§11.4).
    pub fn finish(&self) -> Result<()> {
        Ok(self.0.finish()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn wire_errors_are_protocol_violations() {
        let mut p = FetchParser::new(64);
        p.push(&[0x05, 0x02, 0x10, 9, 0]);
        assert_eq!(p.header().unwrap(), Some(2));
        let Err(Error::Protocol(why)) = p.next() else { panic!("accepted") };
        assert!(why.contains("fetch stream"), "{why}");
        assert!(matches!(p.finish(), Err(Error::Protocol(_))));
    }
}
