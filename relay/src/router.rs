//! The relay's routing core: which session publishes which namespace, which
//! tracks exist, and who watches which namespace prefix.
//!
//! Plain data, no I/O and no clock, so it is unit-tested directly and can sit
//! behind any draft's session code (the draft-18 shell in `session/` today; a
//! draft-22 shell can share it). References are to draft-ietf-moq-transport-18.

use crate::track::{FullName, Track};
use moq_transport::coding::{TrackNamespace, TrackNamespacePrefix};
use std::collections::HashMap;
use std::sync::Arc;

pub type SessionId = u64;

/// A PUBLISH_NAMESPACE in force (§6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement {
    pub session: SessionId,
    pub request: u64,
}

/// A SUBSCRIBE_NAMESPACE in force (§6.1), identified relay-wide by `id`.
#[derive(Debug, Clone)]
pub struct NamespaceWatch {
    pub session: SessionId,
    pub prefix: TrackNamespacePrefix,
}

/// What a namespace watcher must be told (NAMESPACE / NAMESPACE_DONE, §9.19-9.20).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Namespace { watch: u64, suffix: TrackNamespacePrefix },
    Done { watch: u64, suffix: TrackNamespacePrefix },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    #[error("namespace prefix overlaps an existing SUBSCRIBE_NAMESPACE of this session")]
    PrefixOverlap,
}

#[derive(Default)]
pub struct Router {
    namespaces: HashMap<TrackNamespace, Vec<Announcement>>,
    /// Namespaces of directly PUBLISHed tracks, counted so NAMESPACE_DONE goes
    /// out when the last one ends.
    published_ns: HashMap<TrackNamespace, usize>,
    tracks: HashMap<FullName, Arc<Track>>,
    watches: HashMap<u64, NamespaceWatch>,
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    fn visible(&self, ns: &TrackNamespace) -> bool {
        self.namespaces.contains_key(ns) || self.published_ns.contains_key(ns)
    }

    fn notices(&self, ns: &TrackNamespace, done: bool) -> Vec<Notice> {
        self.watches
            .iter()
            .filter_map(|(id, w)| {
                let suffix = ns.strip_prefix(&w.prefix)?;
                Some(if done { Notice::Done { watch: *id, suffix } } else { Notice::Namespace { watch: *id, suffix } })
            })
            .collect()
    }

    /// PUBLISH_NAMESPACE accepted. Returns the NAMESPACE notices to send when
    /// the namespace becomes newly visible.
    pub fn publish_namespace(&mut self, ns: TrackNamespace, a: Announcement) -> Vec<Notice> {
        let newly = !self.visible(&ns);
        self.namespaces.entry(ns.clone()).or_default().push(a);
        if newly {
            self.notices(&ns, false)
        } else {
            Vec::new()
        }
    }

    /// The announcing request ended (cancel, PUBLISH_NAMESPACE_DONE, session
    /// gone). Returns NAMESPACE_DONE notices when the namespace disappears.
    pub fn unpublish_namespace(&mut self, ns: &TrackNamespace, a: Announcement) -> Vec<Notice> {
        if let Some(list) = self.namespaces.get_mut(ns) {
            list.retain(|x| *x != a);
            if list.is_empty() {
                self.namespaces.remove(ns);
            }
        }
        if self.visible(ns) {
            Vec::new()
        } else {
            self.notices(ns, true)
        }
    }

    /// The publisher that serves `ns`: the most recent announcer of the
    /// longest announced prefix of `ns` (§8.3: a relay routes a SUBSCRIBE to
    /// publishers of matching namespaces).
    pub fn route(&self, ns: &TrackNamespace) -> Option<Announcement> {
        for len in (1..=ns.fields.len()).rev() {
            let prefix = TrackNamespace { fields: ns.fields[..len].to_vec() };
            if let Some(a) = self.namespaces.get(&prefix).and_then(|l| l.last()) {
                return Some(*a);
            }
        }
        None
    }

    pub fn track(&self, name: &FullName) -> Option<Arc<Track>> {
        self.tracks.get(name).cloned()
    }

    pub fn tracks(&self) -> impl Iterator<Item = &Arc<Track>> {
        self.tracks.values()
    }

    /// Adds a track. A direct PUBLISH also makes its namespace visible to
    /// namespace watchers (returned notices). Replaces an older track of the
    /// same name, which is returned so the caller can end it.
    pub fn insert_track(&mut self, track: Arc<Track>, published: bool) -> (Option<Arc<Track>>, Vec<Notice>) {
        let mut notices = Vec::new();
        if published {
            let ns = track.name.namespace.clone();
            if !self.visible(&ns) {
                notices = self.notices(&ns, false);
            }
            *self.published_ns.entry(ns).or_default() += 1;
        }
        let old = self.tracks.insert(track.name.clone(), track);
        (old, notices)
    }

    /// Removes `track` if it is still the one registered under its name.
    pub fn remove_track(&mut self, track: &Arc<Track>, published: bool) -> Vec<Notice> {
        if self.tracks.get(&track.name).is_some_and(|t| Arc::ptr_eq(t, track)) {
            self.tracks.remove(&track.name);
        }
        if !published {
            return Vec::new();
        }
        let ns = &track.name.namespace;
        if let Some(n) = self.published_ns.get_mut(ns) {
            *n -= 1;
            if *n == 0 {
                self.published_ns.remove(ns);
            }
        }
        if self.visible(ns) {
            Vec::new()
        } else {
            self.notices(ns, true)
        }
    }

    /// SUBSCRIBE_NAMESPACE: registers the watch and returns the suffixes of
    /// every namespace already visible under the prefix (§9.21).
    pub fn watch(&mut self, id: u64, w: NamespaceWatch) -> Result<Vec<TrackNamespacePrefix>, RouteError> {
        if self.watches.values().any(|x| x.session == w.session && x.prefix.overlaps(&w.prefix)) {
            return Err(RouteError::PrefixOverlap);
        }
        let mut existing: Vec<TrackNamespacePrefix> = self
            .namespaces
            .keys()
            .chain(self.published_ns.keys())
            .filter_map(|ns| ns.strip_prefix(&w.prefix))
            .collect();
        existing.sort_by_key(|p| p.to_utf8_path());
        existing.dedup();
        self.watches.insert(id, w);
        Ok(existing)
    }

    pub fn unwatch(&mut self, id: u64) {
        self.watches.remove(&id);
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        (self.namespaces.len() + self.published_ns.len(), self.tracks.len(), self.watches.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::Phase;

    fn ns(p: &str) -> TrackNamespace {
        TrackNamespace::from_utf8_path(p)
    }
    fn a(session: u64) -> Announcement {
        Announcement { session, request: 0 }
    }

    #[test]
    fn longest_prefix_wins() {
        let mut r = Router::new();
        r.publish_namespace(ns("a"), a(1));
        r.publish_namespace(ns("a/b"), a(2));
        assert_eq!(r.route(&ns("a/b/c")).map(|x| x.session), Some(2));
        assert_eq!(r.route(&ns("a/x")).map(|x| x.session), Some(1));
        assert_eq!(r.route(&ns("z")), None);
        r.unpublish_namespace(&ns("a/b"), a(2));
        assert_eq!(r.route(&ns("a/b/c")).map(|x| x.session), Some(1));
    }

    #[test]
    fn watchers_see_existing_future_and_done() {
        let mut r = Router::new();
        r.publish_namespace(ns("users/alice"), a(1));
        let existing = r.watch(7, NamespaceWatch { session: 9, prefix: TrackNamespacePrefix::from_utf8_path("users") }).unwrap();
        assert_eq!(existing, vec![TrackNamespacePrefix::from_utf8_path("alice")]);
        let n = r.publish_namespace(ns("users/bob"), a(2));
        assert_eq!(n, vec![Notice::Namespace { watch: 7, suffix: TrackNamespacePrefix::from_utf8_path("bob") }]);
        // A second announcer of the same namespace is not news.
        assert!(r.publish_namespace(ns("users/bob"), a(3)).is_empty());
        assert!(r.unpublish_namespace(&ns("users/bob"), a(2)).is_empty());
        let n = r.unpublish_namespace(&ns("users/bob"), a(3));
        assert_eq!(n, vec![Notice::Done { watch: 7, suffix: TrackNamespacePrefix::from_utf8_path("bob") }]);
        assert!(r.publish_namespace(ns("other/x"), a(4)).is_empty());
    }

    #[test]
    fn overlapping_watch_in_same_session_is_refused() {
        let mut r = Router::new();
        let w = |s, p| NamespaceWatch { session: s, prefix: TrackNamespacePrefix::from_utf8_path(p) };
        r.watch(1, w(1, "a/b")).unwrap();
        assert_eq!(r.watch(2, w(1, "a")), Err(RouteError::PrefixOverlap));
        assert!(r.watch(3, w(2, "a")).is_ok());
        assert!(r.watch(4, w(1, "c")).is_ok());
    }

    #[test]
    fn published_tracks_make_namespace_visible_until_last_ends() {
        let mut r = Router::new();
        r.watch(1, NamespaceWatch { session: 5, prefix: TrackNamespacePrefix::from_utf8_path("live") }).unwrap();
        let name = |t: &str| FullName { namespace: ns("live/cam"), name: t.into() };
        let t1 = Track::new(name("a"), Phase::Pending, 4, 1024);
        let t2 = Track::new(name("b"), Phase::Pending, 4, 1024);
        assert_eq!(r.insert_track(t1.clone(), true).1.len(), 1);
        assert!(r.insert_track(t2.clone(), true).1.is_empty());
        assert!(r.remove_track(&t1, true).is_empty());
        assert_eq!(r.remove_track(&t2, true).len(), 1);
        assert!(r.track(&name("a")).is_none());
    }

    #[test]
    fn remove_track_ignores_a_replaced_track() {
        let mut r = Router::new();
        let name = FullName { namespace: ns("x"), name: "t".into() };
        let old = Track::new(name.clone(), Phase::Pending, 4, 1024);
        let new = Track::new(name.clone(), Phase::Pending, 4, 1024);
        r.insert_track(old.clone(), false);
        assert!(r.insert_track(new.clone(), false).0.is_some());
        r.remove_track(&old, false);
        assert!(r.track(&name).is_some_and(|t| Arc::ptr_eq(&t, &new)));
    }
}
