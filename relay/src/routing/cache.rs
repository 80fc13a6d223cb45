//! Bounded per-track object cache, the source for FETCH and joining FETCH
//! (draft-ietf-moq-transport-18 §9.1 "Caching Relays", §10.12).
//!
//! Bounded by group count and bytes: the oldest objects go first, so a track's
//! memory never exceeds `max_bytes` plus one object whatever the publisher does.

use bytes::Bytes;
use moq_wire::coding::Location;
use std::collections::VecDeque;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedObject {
    pub object_id: u64,
    /// `None` for objects received as datagrams.
    pub subgroup_id: Option<u64>,
    pub priority: u8,
    pub properties: Bytes,
    pub payload: Bytes,
    pub status: u64,
}

impl CachedObject {
    fn size(&self) -> usize {
        self.properties.len() + self.payload.len() + 32
    }
}

/// One ring of `(group, object)` entries in ascending location order, rather
/// than a map of groups: objects nearly always arrive in order, so an insert
/// is a push at the back and eviction a pop at the front, and once the ring
/// has grown to the track's bound no insert allocates — an audio track sends
/// 50 single-object groups a second, and a map node plus a vector per group
/// was an allocation per forwarded object (bench/results/profile-relay.md).
/// Byte bound for a track whose objects come as datagrams: about 140 ms of
/// Opus frames, enough to catch a new subscriber up over the SUBSCRIBE →
/// SUBSCRIBE_OK gap. Datagram tracks are real-time media that nobody FETCHes
/// far back (docs/CALLS.md §6 fetches only events and the catalog); at
/// moq-phone's 50 frames a group the general bound would keep ~230 KiB of
/// past audio per track, and each cached frame also pins its received packet.
pub const DATAGRAM_BYTES: usize = 1 << 10;

pub struct Cache {
    entries: VecDeque<(u64, CachedObject)>,
    /// Distinct groups in `entries`.
    groups: usize,
    bytes: usize,
    max_groups: usize,
    max_bytes: usize,
}

impl Cache {
    pub fn new(max_groups: usize, max_bytes: usize) -> Self {
        Self { entries: VecDeque::new(), groups: 0, bytes: 0, max_groups: max_groups.max(1), max_bytes }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Lowers the byte bound (never raises it); takes effect at the next insert.
    pub fn limit_bytes(&mut self, max_bytes: usize) {
        self.max_bytes = self.max_bytes.min(max_bytes);
    }

    /// Inserts an object, keeping entries sorted by (group, object) and
    /// evicting the oldest groups past the limits. Objects older than every
    /// cached group when the cache is full are not stored.
    pub fn insert(&mut self, group: u64, obj: CachedObject) {
        let oldest = self.entries.front().map(|(g, _)| *g);
        if self.groups >= self.max_groups && oldest.is_some_and(|g| group < g) {
            return;
        }
        let key = (group, obj.object_id);
        let at = match self.entries.back() {
            Some((g, o)) if (*g, o.object_id) < key => self.entries.len(),
            None => 0,
            _ => match self.entries.binary_search_by(|(g, o)| (*g, o.object_id).cmp(&key)) {
                Ok(i) => {
                    self.bytes = self.bytes - self.entries[i].1.size() + obj.size();
                    self.entries[i].1 = obj;
                    return;
                }
                Err(i) => i,
            },
        };
        let same = |i: Option<usize>| i.and_then(|i| self.entries.get(i)).is_some_and(|(g, _)| *g == group);
        let new_group = !same(at.checked_sub(1)) && !same(Some(at));
        if new_group {
            self.groups += 1;
        }
        self.bytes += obj.size();
        self.entries.insert(at, (group, obj));
        while self.groups > self.max_groups {
            let first = self.entries.front().map(|(g, _)| *g);
            while self.entries.front().is_some_and(|(g, _)| Some(*g) == first) {
                self.evict_oldest_object();
            }
        }
        // Over the byte bound the oldest objects go, even from the newest
        // group: a long group (50 audio frames) must not hold the bound open.
        while self.bytes > self.max_bytes && self.entries.len() > 1 {
            self.evict_oldest_object();
        }
    }

    fn evict_oldest_object(&mut self) {
        let Some((g, o)) = self.entries.pop_front() else { return };
        self.bytes -= o.size();
        if self.entries.front().is_none_or(|(next, _)| *next != g) {
            self.groups -= 1;
        }
    }

    /// Largest cached location.
    pub fn largest(&self) -> Option<Location> {
        self.entries.back().map(|(g, o)| Location::new(*g, o.object_id))
    }

    /// Objects with `start <= location <= end` in ascending order. An
    /// `end.object_id` of 0 in FETCH means "whole end group" (§10.12.1): the
    /// caller passes `u64::MAX` for that.
    pub fn range(&self, start: Location, end: Location) -> Vec<(u64, CachedObject)> {
        let (lo, hi) = ((start.group_id, start.object_id), (end.group_id, end.object_id));
        let first = self.entries.partition_point(|(g, o)| (*g, o.object_id) < lo);
        self.entries.range(first..).take_while(|(g, o)| (*g, o.object_id) <= hi).cloned().collect()
    }

    /// Group IDs cached, ascending.
    pub fn group_ids(&self) -> impl Iterator<Item = u64> + '_ {
        let mut last = None;
        self.entries.iter().filter_map(move |(g, _)| (last.replace(*g) != Some(*g)).then_some(*g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(id: u64, len: usize) -> CachedObject {
        CachedObject {
            object_id: id,
            subgroup_id: Some(0),
            priority: 0,
            properties: Bytes::new(),
            payload: Bytes::from(vec![0; len]),
            status: 0,
        }
    }

    #[test]
    fn evicts_oldest_groups_by_count_and_bytes() {
        let mut c = Cache::new(3, 10_000);
        for g in 0..5 {
            c.insert(g, obj(0, 10));
        }
        assert_eq!(c.group_ids().collect::<Vec<_>>(), vec![2, 3, 4]);
        let mut c = Cache::new(100, 1000);
        for g in 0..100 {
            c.insert(g, obj(0, 100));
        }
        assert!(c.bytes() <= 1000);
        assert_eq!(c.largest(), Some(Location::new(99, 0)));
    }

    #[test]
    fn range_is_inclusive_and_ordered() {
        let mut c = Cache::new(10, 1 << 20);
        for g in 0..3 {
            for o in (0..3).rev() {
                c.insert(g, obj(o, 1));
            }
        }
        let r = c.range(Location::new(0, 2), Location::new(2, 0));
        let locs: Vec<_> = r.iter().map(|(g, o)| (*g, o.object_id)).collect();
        assert_eq!(locs, vec![(0, 2), (1, 0), (1, 1), (1, 2), (2, 0)]);
    }

    #[test]
    fn replaces_duplicates_and_counts_groups_inserted_out_of_order() {
        let mut c = Cache::new(2, 1 << 20);
        c.insert(5, obj(1, 10));
        c.insert(3, obj(0, 10));
        c.insert(5, obj(0, 10));
        c.insert(5, obj(1, 20));
        assert_eq!(c.group_ids().collect::<Vec<_>>(), vec![3, 5]);
        assert_eq!(c.bytes(), 10 + 10 + 20 + 3 * 32, "the duplicate replaced, not added");
        c.insert(4, obj(0, 10));
        assert_eq!(c.group_ids().collect::<Vec<_>>(), vec![4, 5], "a third group evicts the oldest");
        c.insert(1, obj(0, 10));
        assert_eq!(c.group_ids().collect::<Vec<_>>(), vec![4, 5], "older than everything in a full cache: not stored");
        assert_eq!(c.range(Location::new(5, 0), Location::new(5, u64::MAX)).len(), 2);
    }

    #[test]
    fn a_long_group_is_trimmed_from_its_oldest_object() {
        let mut c = Cache::new(32, 1 << 20);
        c.limit_bytes(10 * (100 + 32));
        for o in 0..50 {
            c.insert(7, obj(o, 100));
        }
        assert_eq!(c.bytes(), 10 * 132);
        let kept: Vec<u64> = c.range(Location::new(0, 0), Location::new(u64::MAX, u64::MAX)).iter().map(|(_, o)| o.object_id).collect();
        assert_eq!(kept, (40..50).collect::<Vec<_>>());
        c.insert(8, obj(0, 100));
        assert_eq!(c.group_ids().collect::<Vec<_>>(), vec![7, 8]);
        c.limit_bytes(1);
        c.insert(9, obj(0, 100));
        assert_eq!(c.group_ids().collect::<Vec<_>>(), vec![9], "one object always stays");
    }
}
