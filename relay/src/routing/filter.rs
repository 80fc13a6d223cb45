//! Which objects a subscription delivers: its Subscription Filter (§5.1.2,
//! §10.2.9 SUBSCRIPTION_FILTER) turned into a window of Locations, against the
//! Largest Object the relay knew when the SUBSCRIBE (or PUBLISH_OK) arrived.

use moq_wire::coding::Location;
use moq_wire::message::{FilterType, SubscriptionFilter};

/// The Locations a subscription delivers: from `start` on, up to and
/// including group `end_group` when there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Location,
    pub end_group: Option<u64>,
}

/// AbsoluteRange's end group would be over 2^64 - 1: the endpoint "MUST
/// close the session with a PROTOCOL_VIOLATION" (§5.1.2).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("AbsoluteRange end group {0} + {1} overflows")]
pub struct EndGroupOverflow(pub u64, pub u64);

impl Window {
    /// Everything the track has and will have: what an absent filter means
    /// ("If omitted from SUBSCRIBE or PUBLISH_OK, the subscription is
    /// unfiltered", §10.2.9), equal to AbsoluteStart {0, 0} (§5.1.2).
    pub const UNFILTERED: Window = Window { start: Location { group_id: 0, object_id: 0 }, end_group: None };

    /// The window of `filter` (`None`: the parameter was absent), given the
    /// Largest Object known when the request arrived (§5.1.2).
    pub fn new(filter: Option<&SubscriptionFilter>, largest: Option<Location>) -> Result<Window, EndGroupOverflow> {
        let Some(f) = filter else { return Ok(Window::UNFILTERED) };
        let start = f.start_location.unwrap_or_default();
        let open = |start| Ok(Window { start, end_group: None });
        match (f.filter_type, largest) {
            // "If no content has been delivered yet, the filter Start Location is {0, 0}."
            (FilterType::LargestObject | FilterType::NextGroupStart, None) => open(Location::new(0, 0)),
            // (Saturating: a Largest Object at 2^64 - 1 has no next one; nothing more can pass.)
            (FilterType::LargestObject, Some(l)) => open(Location::new(l.group_id, l.object_id.saturating_add(1))),
            (FilterType::NextGroupStart, Some(l)) => open(Location::new(l.group_id.saturating_add(1), 0)),
            (FilterType::AbsoluteStart, _) => open(start),
            // "If the specified End Group Delta is zero, the remainder of that
            // Group passes the filter. Otherwise, the last Group ID to be
            // delivered will be the Group ID in Start Location plus the End
            // Group Delta."
            (FilterType::AbsoluteRange, _) => {
                let delta = f.end_group_id.unwrap_or(0);
                // Group IDs are vi64 (§1.4.1): up to 2^64 - 1 in draft-18, not 2^62 - 1 as before.
                match start.group_id.checked_add(delta) {
                    Some(end) => Ok(Window { start, end_group: Some(end) }),
                    None => Err(EndGroupOverflow(start.group_id, delta)),
                }
            }
        }
    }

    /// Whether the object at `loc` passes.
    pub fn contains(&self, loc: Location) -> bool {
        (loc.group_id, loc.object_id) >= (self.start.group_id, self.start.object_id) && self.end_group.is_none_or(|g| loc.group_id <= g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(filter_type: FilterType, start: Option<(u64, u64)>, end: Option<u64>) -> SubscriptionFilter {
        SubscriptionFilter { filter_type, start_location: start.map(|(g, o)| Location::new(g, o)), end_group_id: end }
    }

    #[test]
    fn no_filter_is_unfiltered_even_when_objects_were_seen() {
        // The known defect: a SUBSCRIBE without SUBSCRIPTION_FILTER was taken
        // as Largest Object, so a track's first object, cached before the
        // subscriber attached, was never sent to it.
        let w = Window::new(None, Some(Location::new(0, 0))).unwrap();
        assert_eq!(w, Window::UNFILTERED);
        assert!(w.contains(Location::new(0, 0)));
    }

    #[test]
    fn largest_object_and_next_group_start_from_what_was_seen() {
        let largest = Some(Location::new(4, 2));
        let lo = Window::new(Some(&filter(FilterType::LargestObject, None, None)), largest).unwrap();
        assert_eq!(lo.start, Location::new(4, 3));
        assert!(!lo.contains(Location::new(4, 2)) && lo.contains(Location::new(4, 3)));
        let ng = Window::new(Some(&filter(FilterType::NextGroupStart, None, None)), largest).unwrap();
        assert_eq!(ng.start, Location::new(5, 0));
        for t in [FilterType::LargestObject, FilterType::NextGroupStart] {
            assert_eq!(Window::new(Some(&filter(t, None, None)), None).unwrap(), Window::UNFILTERED);
        }
    }

    #[test]
    fn absolute_range_end_is_a_delta_from_the_start_group() {
        let r = Window::new(Some(&filter(FilterType::AbsoluteRange, Some((10, 1)), Some(2))), None).unwrap();
        assert_eq!(r, Window { start: Location::new(10, 1), end_group: Some(12) });
        assert!(r.contains(Location::new(12, 99)) && !r.contains(Location::new(13, 0)) && !r.contains(Location::new(10, 0)));
        // Delta 0: the rest of the start group.
        let r0 = Window::new(Some(&filter(FilterType::AbsoluteRange, Some((7, 0)), Some(0))), None).unwrap();
        assert_eq!(r0.end_group, Some(7));
        let over = Window::new(Some(&filter(FilterType::AbsoluteRange, Some((u64::MAX, 0)), Some(1))), None);
        assert_eq!(over, Err(EndGroupOverflow(u64::MAX, 1)));
        // Above 2^62 - 1 is well-formed in draft-18 (vi64 up to 2^64 - 1).
        let big = Window::new(Some(&filter(FilterType::AbsoluteRange, Some((1 << 62, 0)), Some(u64::MAX - (1 << 62)))), None).unwrap();
        assert_eq!(big.end_group, Some(u64::MAX));
        let top = Window::new(Some(&filter(FilterType::LargestObject, None, None)), Some(Location::new(u64::MAX, u64::MAX))).unwrap();
        assert_eq!(top.start, Location::new(u64::MAX, u64::MAX));
        let abs = Window::new(Some(&filter(FilterType::AbsoluteStart, Some((3, 4)), None)), Some(Location::new(9, 9))).unwrap();
        assert_eq!(abs, Window { start: Location::new(3, 4), end_group: None });
    }
}
