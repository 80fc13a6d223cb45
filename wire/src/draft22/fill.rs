//! FILL_PARAMETERS (0x23): the backfill a draft-22 subscriber asks for with
//! its SUBSCRIBE or a REQUEST_UPDATE, in place of draft-18's Joining FETCH
//! (docs/DRAFT22.md §6).
//!
//! The value is a nested parameter block. Its LOCATION_FILTER (or, when it
//! has none, the subscription's) is resolved the way a FETCH range is,
//! against the Largest Object when the request is processed, and capped at
//! it; the publisher sends those Objects on a fetch stream whose
//! FETCH_HEADER carries the Request ID of the SUBSCRIBE (or of the
//! REQUEST_UPDATE), with no FETCH_OK. An empty range opens no stream.

use super::filter::LocationFilter;
use super::params::{self, param, Scope};
use crate::request::Rejected;
use moq_transport::coding::{KeyValuePairs, Location, Value};

/// A backfill request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fill {
    /// The range; `None`: the subscription's own filter.
    pub filter: Option<LocationFilter>,
    /// GROUP_ORDER (1 ascending, 2 descending), if given.
    pub group_order: Option<u64>,
    /// The nested block holds Range Filters, which are refused with
    /// INVALID_FILTER (no MAX_FILTER_RANGES was advertised).
    pub range_filters: bool,
}

impl Fill {
    /// Reads a FILL_PARAMETERS value (without its Length): a count, then the
    /// parameters a fill may carry. Anything else is a PROTOCOL_VIOLATION.
    pub fn decode(mut b: &[u8]) -> Result<Self, Rejected> {
        let d = params::decode(Scope::Fill, &mut b)?;
        if !b.is_empty() {
            return Err(crate::request::violation("bytes after the FILL_PARAMETERS block"));
        }
        let group_order = d.params.0.iter().find(|p| p.key == param::GROUP_ORDER).and_then(|p| match p.value {
            Value::IntValue(v) => Some(v),
            Value::BytesValue(_) => None,
        });
        let range_filters = d.params.0.iter().any(|p| (param::SUBGROUP_FILTER..=param::TRACK_PROPERTY_FILTER).contains(&p.key));
        Ok(Self { filter: d.filter, group_order, range_filters })
    }

    /// The FILL_PARAMETERS value (without its Length) asking for this fill.
    pub fn encode(&self) -> Vec<u8> {
        let mut inner = KeyValuePairs::new();
        if let Some(o) = self.group_order {
            inner.set_intvalue(param::GROUP_ORDER, o);
        }
        let mut out = Vec::new();
        params::encode(Scope::Fill, &inner, self.filter, &mut out);
        out
    }

    /// The fill a parameter block asks for, if any (its value was checked
    /// when the block was decoded).
    pub fn of(params: &KeyValuePairs) -> Option<Self> {
        params.0.iter().find(|p| p.key == param::FILL_PARAMETERS).and_then(|p| match &p.value {
            Value::BytesValue(v) => Self::decode(v).ok(),
            Value::IntValue(_) => None,
        })
    }

    /// The Objects to send, `[first, last]` inclusive, for a subscription
    /// whose own filter is `subscription` with `largest` the Largest Object
    /// now; `None` when the range is empty or nothing was published.
    pub fn range(&self, subscription: Option<LocationFilter>, largest: Option<Location>) -> Option<(Location, Location)> {
        let largest = largest?;
        let filter = self.filter.or(subscription).unwrap_or(LocationFilter::None);
        let (first, last) = match filter {
            LocationFilter::None => (Location::new(0, 0), largest),
            LocationFilter::RelativeStart(n) => (Location::new((largest.group_id + 1).saturating_sub(n), 0), largest),
            LocationFilter::AbsoluteStart(s) => (s, largest),
            LocationFilter::AbsoluteGroupEnd(s, d) => (s, Location::new(s.group_id.saturating_add(d), u64::MAX)),
            LocationFilter::AbsoluteRange(s, d, o) => (s, Location::new(s.group_id.saturating_add(d), o)),
            LocationFilter::NextObject => return None,
        };
        let last = if (last.group_id, last.object_id) > (largest.group_id, largest.object_id) { largest } else { last };
        if (first.group_id, first.object_id) > (last.group_id, last.object_id) {
            return None;
        }
        Some((first, last))
    }
}
