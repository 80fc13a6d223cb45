//! Bounded per-track object cache, the source for FETCH and joining FETCH
//! (draft-ietf-moq-transport-18 §9.1 "Caching Relays", §10.12).
//!
//! Bounded by group count and bytes: the oldest groups go first, so a track's
//! memory never exceeds `max_bytes` plus one object whatever the publisher does.

use bytes::Bytes;
use moq_transport::coding::Location;
use std::collections::BTreeMap;

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

pub struct Cache {
    groups: BTreeMap<u64, Vec<CachedObject>>,
    bytes: usize,
    max_groups: usize,
    max_bytes: usize,
}

impl Cache {
    pub fn new(max_groups: usize, max_bytes: usize) -> Self {
        Self { groups: BTreeMap::new(), bytes: 0, max_groups: max_groups.max(1), max_bytes }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Inserts an object, keeping each group sorted by Object ID and evicting
    /// the oldest groups past the limits. Objects older than every cached
    /// group when the cache is full are not stored.
    pub fn insert(&mut self, group: u64, obj: CachedObject) {
        if self.groups.len() >= self.max_groups && self.groups.keys().next().is_some_and(|g| group < *g) {
            return;
        }
        self.bytes += obj.size();
        let objects = self.groups.entry(group).or_default();
        match objects.binary_search_by_key(&obj.object_id, |o| o.object_id) {
            Ok(i) => {
                self.bytes -= objects[i].size();
                objects[i] = obj;
            }
            Err(i) => objects.insert(i, obj),
        }
        while self.groups.len() > self.max_groups || (self.bytes > self.max_bytes && self.groups.len() > 1) {
            if let Some((_, old)) = self.groups.pop_first() {
                self.bytes -= old.iter().map(CachedObject::size).sum::<usize>();
            }
        }
    }

    /// Largest cached location.
    pub fn largest(&self) -> Option<Location> {
        let (g, objs) = self.groups.last_key_value()?;
        Some(Location::new(*g, objs.last()?.object_id))
    }

    /// Objects with `start <= location <= end` in ascending order. An
    /// `end.object_id` of 0 in FETCH means "whole end group" (§10.12.1): the
    /// caller passes `u64::MAX` for that.
    pub fn range(&self, start: Location, end: Location) -> Vec<(u64, CachedObject)> {
        let mut out = Vec::new();
        for (g, objs) in self.groups.range(start.group_id..=end.group_id) {
            for o in objs {
                let loc = (*g, o.object_id);
                if loc >= (start.group_id, start.object_id) && loc <= (end.group_id, end.object_id) {
                    out.push((*g, o.clone()));
                }
            }
        }
        out
    }

    /// Group IDs cached, ascending.
    pub fn group_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.groups.keys().copied()
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
}
