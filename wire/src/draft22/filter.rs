//! LOCATION_FILTER (Message Parameter 0x21) as draft-22 encodes it
//! (docs/DRAFT22.md §5.1), and its mapping onto the draft-18 forms the rest
//! of the code base works with: the SUBSCRIPTION_FILTER of a subscription
//! (draft-18 §5.1.2) and the Start / End Locations of a Standalone FETCH
//! (draft-18 §10.12.1).
//!
//! Draft-18 gave the filter a Length and four Filter Types; draft-22 drops
//! the Length, renumbers the types (2, 3 and 4 mean different things in the
//! two drafts) and adds a relative start and an object-exact end. The
//! mapping is exact where a draft-18 form exists; where none does
//! ([`LocationFilter::to_subscription`] returns `Err`) the request is
//! refused with a REQUEST_ERROR rather than served differently from what
//! was asked.

use crate::request::{violation, Rejected};
use moq_transport::coding::{Decode, Encode, Location};
use moq_transport::message::{FilterType, SubscriptionFilter};

/// Draft-22 Location Filter Types.
pub mod kind {
    pub const NONE: u64 = 0x0;
    pub const RELATIVE_START: u64 = 0x1;
    pub const ABSOLUTE_START: u64 = 0x2;
    pub const ABSOLUTE_GROUP_END: u64 = 0x3;
    pub const ABSOLUTE_RANGE: u64 = 0x4;
    pub const NEXT_OBJECT: u64 = 0x5;
}

/// A draft-22 Location Filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocationFilter {
    /// No filter: every Object (a FETCH: {0,0} to the Largest Object).
    None,
    /// From the start of group `Largest.Group + 1 - n`: 0 is the next
    /// group, 1 the current one.
    RelativeStart(u64),
    /// From a Location, open-ended.
    AbsoluteStart(Location),
    /// From a Location through the whole group `start.group + delta`.
    AbsoluteGroupEnd(Location, u64),
    /// From a Location through `{start.group + delta, end_object}`, inclusive.
    AbsoluteRange(Location, u64, u64),
    /// From the Object after the Largest one.
    NextObject,
}

/// The largest Group or Object ID: "to the end" in a draft-18 range.
const MAX_ID: u64 = u64::MAX;

impl LocationFilter {
    /// Reads the value of a LOCATION_FILTER parameter: a type, then the
    /// fields it names, with no Length. An unknown type, or an end group
    /// beyond 2^64-1, is a PROTOCOL_VIOLATION.
    pub fn decode(b: &mut &[u8]) -> Result<Self, Rejected> {
        let short = || violation("message ends inside its LOCATION_FILTER");
        let mut v = || u64::decode(b).map_err(|_| short());
        let t = v()?;
        let f = match t {
            kind::NONE => Self::None,
            kind::RELATIVE_START => Self::RelativeStart(v()?),
            kind::ABSOLUTE_START => Self::AbsoluteStart(Location::new(v()?, v()?)),
            kind::ABSOLUTE_GROUP_END => Self::AbsoluteGroupEnd(Location::new(v()?, v()?), v()?),
            kind::ABSOLUTE_RANGE => Self::AbsoluteRange(Location::new(v()?, v()?), v()?, v()?),
            kind::NEXT_OBJECT => Self::NextObject,
            t => return Err(violation(format!("unknown Location Filter Type {t:#x}"))),
        };
        if let Self::AbsoluteGroupEnd(s, d) | Self::AbsoluteRange(s, d, _) = f {
            if s.group_id.checked_add(d).is_none() {
                return Err(violation("LOCATION_FILTER end group beyond 2^64-1"));
            }
        }
        Ok(f)
    }

    /// Writes the parameter's value (without its type).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut put = |v: u64| {
            let _ = v.encode(out);
        };
        match *self {
            Self::None => put(kind::NONE),
            Self::RelativeStart(n) => {
                put(kind::RELATIVE_START);
                put(n);
            }
            Self::AbsoluteStart(s) => {
                put(kind::ABSOLUTE_START);
                put(s.group_id);
                put(s.object_id);
            }
            Self::AbsoluteGroupEnd(s, d) => {
                put(kind::ABSOLUTE_GROUP_END);
                put(s.group_id);
                put(s.object_id);
                put(d);
            }
            Self::AbsoluteRange(s, d, o) => {
                put(kind::ABSOLUTE_RANGE);
                put(s.group_id);
                put(s.object_id);
                put(d);
                put(o);
            }
            Self::NextObject => put(kind::NEXT_OBJECT),
        }
    }

    /// The draft-18 SUBSCRIPTION_FILTER that selects the same Objects of a
    /// subscription: `Ok(None)` for no filter, `Err` with a reason when
    /// draft-18 has no such filter.
    pub fn to_subscription(&self) -> Result<Option<SubscriptionFilter>, String> {
        let f = |filter_type, start_location, end_group_id| Some(SubscriptionFilter { filter_type, start_location, end_group_id });
        Ok(match *self {
            Self::None => None,
            Self::RelativeStart(0) => f(FilterType::NextGroupStart, None, None),
            Self::NextObject => f(FilterType::LargestObject, None, None),
            Self::AbsoluteStart(s) => f(FilterType::AbsoluteStart, Some(s), None),
            Self::AbsoluteGroupEnd(s, d) => f(FilterType::AbsoluteRange, Some(s), Some(d)),
            Self::RelativeStart(n) => return Err(format!("a relative start {n} groups back is not supported")),
            Self::AbsoluteRange(..) => return Err("an end Object within a group is not supported".into()),
        })
    }

    /// The draft-22 form of a draft-18 SUBSCRIPTION_FILTER: every one has one.
    pub fn from_subscription(f: &SubscriptionFilter) -> Self {
        let start = f.start_location.unwrap_or(Location::new(0, 0));
        match f.filter_type {
            FilterType::NextGroupStart => Self::RelativeStart(0),
            FilterType::LargestObject => Self::NextObject,
            FilterType::AbsoluteStart => Self::AbsoluteStart(start),
            FilterType::AbsoluteRange => Self::AbsoluteGroupEnd(start, f.end_group_id.unwrap_or(0)),
        }
    }

    /// A FETCH's range as draft-18's Start Location and End Location ("the
    /// end Location, plus 1; Object 0 means the entire group"), or `Err`
    /// when the range is relative to the Largest Object.
    pub fn to_fetch_range(&self) -> Result<(Location, Location), String> {
        let to_end = Location::new(MAX_ID, 0);
        Ok(match *self {
            Self::None => (Location::new(0, 0), to_end),
            Self::AbsoluteStart(s) => (s, to_end),
            Self::AbsoluteGroupEnd(s, d) => (s, Location::new(s.group_id + d, 0)),
            Self::AbsoluteRange(s, d, o) if o < MAX_ID => (s, Location::new(s.group_id + d, o + 1)),
            Self::AbsoluteRange(s, d, _) => (s, Location::new(s.group_id + d, 0)),
            Self::RelativeStart(_) | Self::NextObject => return Err("a FETCH range relative to the Largest Object is not supported".into()),
        })
    }

    /// The draft-22 filter for a draft-18 FETCH range.
    pub fn from_fetch_range(start: Location, end: Location) -> Self {
        let delta = end.group_id.saturating_sub(start.group_id);
        if end.object_id == 0 {
            Self::AbsoluteGroupEnd(start, delta)
        } else {
            Self::AbsoluteRange(start, delta, end.object_id - 1)
        }
    }
}

/// A FETCH_OK End Location: draft-18 writes the last Object plus 1 (Object
/// 0: the whole group), draft-22 the last Object itself (inclusive).
pub fn fetch_end_to_inclusive(end: Location) -> Location {
    match end.object_id {
        0 => Location::new(end.group_id, MAX_ID),
        o => Location::new(end.group_id, o - 1),
    }
}

/// The draft-18 End Location for a draft-22 inclusive one.
pub fn fetch_end_from_inclusive(last: Location) -> Location {
    match last.object_id.checked_add(1) {
        Some(o) => Location::new(last.group_id, o),
        None => Location::new(last.group_id, 0),
    }
}
