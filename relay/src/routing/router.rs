//! The relay's routing core: which session publishes which namespace, which
//! tracks exist, and who watches which namespace prefix.
//!
//! Plain data, no I/O and no clock, so it is unit-tested directly and can sit
//! behind any draft's session code (the draft-18 shell in `session/` today; a
//! draft-22 shell can share it). References are to draft-ietf-moq-transport-18.

use crate::routing::track::{FullName, Phase, Track};
use moq_wire::coding::{TrackNamespace, TrackNamespacePrefix};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

pub type SessionId = u64;

/// A PUBLISH_NAMESPACE in force (§6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement {
    pub session: SessionId,
    pub request: u64,
}

/// A SUBSCRIBE_NAMESPACE (§10.18) or SUBSCRIBE_TRACKS (§10.19) in force,
/// identified relay-wide by its id. The two kinds have independent
/// prefix-overlap spaces.
#[derive(Debug, Clone)]
pub struct NamespaceWatch {
    pub session: SessionId,
    pub prefix: TrackNamespacePrefix,
    /// SUBSCRIBE_TRACKS: wants a PUBLISH per track rather than NAMESPACE messages.
    pub tracks: bool,
}

/// What a watcher must be told: NAMESPACE / NAMESPACE_DONE (§10.16-10.17) or,
/// for SUBSCRIBE_TRACKS, a track to PUBLISH.
#[derive(Clone)]
pub enum Notice {
    Namespace { watch: u64, suffix: TrackNamespacePrefix },
    Done { watch: u64, suffix: TrackNamespacePrefix },
    Track { watch: u64, track: Arc<Track> },
}

impl Notice {
    pub fn watch(&self) -> u64 {
        match self {
            Notice::Namespace { watch, .. } | Notice::Done { watch, .. } | Notice::Track { watch, .. } => *watch,
        }
    }
}

impl std::fmt::Debug for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Namespace { watch, suffix } => write!(f, "Namespace({watch}, {suffix})"),
            Notice::Done { watch, suffix } => write!(f, "Done({watch}, {suffix})"),
            Notice::Track { watch, track } => write!(f, "Track({watch}, {})", track.name),
        }
    }
}

impl PartialEq for Notice {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Notice::Namespace { watch: a, suffix: x }, Notice::Namespace { watch: b, suffix: y })
            | (Notice::Done { watch: a, suffix: x }, Notice::Done { watch: b, suffix: y }) => a == b && x == y,
            (Notice::Track { watch: a, track: x }, Notice::Track { watch: b, track: y }) => a == b && Arc::ptr_eq(x, y),
            _ => false,
        }
    }
}

/// What a new watch starts with.
pub enum Existing {
    Namespaces(Vec<TrackNamespacePrefix>),
    Tracks(Vec<Arc<Track>>),
}

/// What a SUBSCRIBE finds (§9.4, §10.2.6). `Existing` and `Upstream` take
/// one unit of the track's interest, given back with [`Router::release`].
#[derive(Clone)]
pub enum Subscribed {
    /// A live track of that name: attach to it.
    Existing(Arc<Track>),
    /// A new track in `Pending`: the shell sends the relay's own SUBSCRIBE
    /// to `publisher`, shared by every later subscriber of the track.
    Upstream { track: Arc<Track>, publisher: SessionId },
    /// No publisher serves it and the SUBSCRIBE may not wait: DOES_NOT_EXIST.
    NotFound,
    /// RENDEZVOUS_TIMEOUT: nothing yet; ask again when the router changed,
    /// or at this deadline.
    Waiting(Instant),
    /// The rendezvous timeout passed: REQUEST_ERROR TIMEOUT.
    Expired,
}

impl std::fmt::Debug for Subscribed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subscribed::Existing(t) => write!(f, "Existing({})", t.name),
            Subscribed::Upstream { track, publisher } => write!(f, "Upstream({}, session {publisher})", track.name),
            Subscribed::NotFound => write!(f, "NotFound"),
            Subscribed::Waiting(d) => write!(f, "Waiting({d:?})"),
            Subscribed::Expired => write!(f, "Expired"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    #[error("namespace prefix overlaps an existing SUBSCRIBE_NAMESPACE of this session")]
    PrefixOverlap,
}

pub struct Router {
    namespaces: HashMap<TrackNamespace, Vec<Announcement>>,
    /// Per-track cache bounds for tracks the router creates.
    cache_groups: usize,
    cache_bytes: usize,
    /// Namespaces of directly PUBLISHed tracks, counted so NAMESPACE_DONE goes
    /// out when the last one ends.
    published_ns: HashMap<TrackNamespace, usize>,
    tracks: HashMap<FullName, Arc<Track>>,
    watches: HashMap<u64, NamespaceWatch>,
}

impl Default for Router {
    fn default() -> Self {
        Self::with_cache(32, 256 << 10)
    }
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    /// A router whose tracks cache at most `groups` groups and `bytes` bytes.
    pub fn with_cache(groups: usize, bytes: usize) -> Self {
        Self {
            namespaces: HashMap::new(),
            cache_groups: groups,
            cache_bytes: bytes,
            published_ns: HashMap::new(),
            tracks: HashMap::new(),
            watches: HashMap::new(),
        }
    }

    fn visible(&self, ns: &TrackNamespace) -> bool {
        self.namespaces.contains_key(ns) || self.published_ns.contains_key(ns)
    }

    fn notices(&self, ns: &TrackNamespace, done: bool) -> Vec<Notice> {
        self.watches
            .iter()
            .filter(|(_, w)| !w.tracks)
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
    /// longest announced prefix of `ns` (§9.4: a relay routes a SUBSCRIBE to
    /// publishers of matching namespaces).
    ///
    /// The empty namespace (0 fields, well-formed by §2.4.1) serves only
    /// tracks in the empty namespace: as a prefix of every namespace it would
    /// let one PUBLISH_NAMESPACE draw every SUBSCRIBE nobody else serves,
    /// under any root the call policy guards.
    pub fn route(&self, ns: &TrackNamespace) -> Option<Announcement> {
        let shortest = usize::from(!ns.fields.is_empty());
        for len in (shortest..=ns.fields.len()).rev() {
            let prefix = TrackNamespace { fields: ns.fields[..len].to_vec() };
            if let Some(a) = self.namespaces.get(&prefix).and_then(|l| l.last()) {
                return Some(*a);
            }
        }
        None
    }

    /// A downstream SUBSCRIBE for `name` (§9.4): the live track of that
    /// name if there is one, else a new track routed to the publisher of the
    /// longest matching namespace whose session is `live`. With a rendezvous
    /// `deadline` (§10.2.6 RENDEZVOUS TIMEOUT) a SUBSCRIBE that finds neither
    /// waits until then; the caller asks again whenever the router changed
    /// and at the deadline, with the time it is then.
    pub fn subscribe(&mut self, name: &FullName, deadline: Option<Instant>, now: Instant, live: impl Fn(SessionId) -> bool) -> Subscribed {
        if let Some(t) = self.tracks.get(name) {
            if !t.current_phase().is_terminal() {
                t.interest.fetch_add(1, Ordering::Relaxed);
                return Subscribed::Existing(t.clone());
            }
        }
        if let Some(a) = self.route(&name.namespace).filter(|a| live(a.session)) {
            let track = Track::new(name.clone(), Phase::Pending, self.cache_groups, self.cache_bytes);
            *track.origin.lock().unwrap_or_else(|e| e.into_inner()) = Some(a.session);
            track.interest.fetch_add(1, Ordering::Relaxed);
            self.insert_track(track.clone(), false);
            return Subscribed::Upstream { track, publisher: a.session };
        }
        match deadline {
            None => Subscribed::NotFound,
            Some(d) if now >= d => Subscribed::Expired,
            Some(d) => Subscribed::Waiting(d),
        }
    }

    /// Gives back one unit of interest. When the last subscriber of a track
    /// the relay subscribed to upstream leaves, the track is removed and
    /// ends, which ends the upstream subscription (§9.4); a directly
    /// PUBLISHed track outlives its subscribers.
    pub fn release(&mut self, track: &Arc<Track>) {
        if track.interest.fetch_sub(1, Ordering::Relaxed) == 1 && !track.published {
            self.remove_track(track, false);
            if matches!(track.current_phase(), Phase::Pending | Phase::Active { .. }) {
                let status = moq_wire::PublishDoneCode::SubscriptionEnded as u64;
                track.set_phase(Phase::Done { status, reason: "no subscribers".into() });
            }
        }
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
            for (id, w) in &self.watches {
                if w.tracks && w.prefix.is_prefix_of(&track.name.namespace) {
                    notices.push(Notice::Track { watch: *id, track: track.clone() });
                }
            }
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

    /// SUBSCRIBE_NAMESPACE / SUBSCRIBE_TRACKS: registers the watch and
    /// returns the namespaces (suffixes) or published tracks already under
    /// the prefix (§10.18, §10.19).
    pub fn watch(&mut self, id: u64, w: NamespaceWatch) -> Result<Existing, RouteError> {
        if self.watches.values().any(|x| x.session == w.session && x.tracks == w.tracks && x.prefix.overlaps(&w.prefix)) {
            return Err(RouteError::PrefixOverlap);
        }
        if w.tracks {
            let tracks = self.tracks.values().filter(|t| t.published && w.prefix.is_prefix_of(&t.name.namespace)).cloned().collect();
            self.watches.insert(id, w);
            return Ok(Existing::Tracks(tracks));
        }
        let mut existing: Vec<TrackNamespacePrefix> =
            self.namespaces.keys().chain(self.published_ns.keys()).filter_map(|ns| ns.strip_prefix(&w.prefix)).collect();
        existing.sort_by_key(|p| p.to_utf8_path());
        existing.dedup();
        self.watches.insert(id, w);
        Ok(Existing::Namespaces(existing))
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

    fn ns(p: &str) -> TrackNamespace {
        TrackNamespace::from_utf8_path(p)
    }
    fn a(session: u64) -> Announcement {
        Announcement { session, request: 0 }
    }
    fn watch(session: u64, prefix: &str, tracks: bool) -> NamespaceWatch {
        NamespaceWatch { session, prefix: TrackNamespacePrefix::from_utf8_path(prefix), tracks }
    }

    #[test]
    fn track_watchers_get_existing_and_new_published_tracks() {
        let mut r = Router::new();
        let name = |t: &str| FullName { namespace: ns("live/cam"), name: t.into() };
        let t1 = Track::with_origin(name("a"), Phase::Pending, 4, 1024, true);
        r.insert_track(t1.clone(), true);
        let Existing::Tracks(existing) = r.watch(3, watch(1, "live", true)).unwrap() else { panic!() };
        assert!(existing.len() == 1 && Arc::ptr_eq(&existing[0], &t1));
        let t2 = Track::with_origin(name("b"), Phase::Pending, 4, 1024, true);
        let (_, notices) = r.insert_track(t2.clone(), true);
        assert_eq!(notices, vec![Notice::Track { watch: 3, track: t2 }]);
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
        let Existing::Namespaces(existing) = r.watch(7, watch(9, "users", false)).unwrap() else { panic!() };
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
        r.watch(1, watch(1, "a/b", false)).unwrap();
        assert!(matches!(r.watch(2, watch(1, "a", false)), Err(RouteError::PrefixOverlap)));
        assert!(r.watch(3, watch(2, "a", false)).is_ok());
        assert!(r.watch(4, watch(1, "c", false)).is_ok());
        // SUBSCRIBE_TRACKS has its own overlap space (§10.19).
        assert!(r.watch(5, watch(1, "a", true)).is_ok());
    }

    #[test]
    fn published_tracks_make_namespace_visible_until_last_ends() {
        let mut r = Router::new();
        r.watch(1, watch(5, "live", false)).unwrap();
        let name = |t: &str| FullName { namespace: ns("live/cam"), name: t.into() };
        let t1 = Track::new(name("a"), Phase::Pending, 4, 1024);
        let t2 = Track::new(name("b"), Phase::Pending, 4, 1024);
        assert_eq!(r.insert_track(t1.clone(), true).1.len(), 1);
        assert!(r.insert_track(t2.clone(), true).1.is_empty());
        assert!(r.remove_track(&t1, true).is_empty());
        assert_eq!(r.remove_track(&t2, true).len(), 1);
        assert!(r.track(&name("a")).is_none());
    }

    fn kind(s: &Subscribed) -> &'static str {
        match s {
            Subscribed::Existing(_) => "existing",
            Subscribed::Upstream { .. } => "upstream",
            Subscribed::NotFound => "not found",
            Subscribed::Waiting(_) => "waiting",
            Subscribed::Expired => "expired",
        }
    }

    #[test]
    fn rendezvous_waits_for_a_publisher_until_its_deadline() {
        let mut r = Router::new();
        let t0 = Instant::now();
        let deadline = t0 + std::time::Duration::from_secs(1);
        let name = FullName { namespace: ns("users/bob/call"), name: "events".into() };
        let live = |_| true;
        assert_eq!(kind(&r.subscribe(&name, None, t0, live)), "not found");
        assert!(matches!(r.subscribe(&name, Some(deadline), t0, live), Subscribed::Waiting(d) if d == deadline));
        // Another namespace appearing does not satisfy it.
        r.publish_namespace(ns("users/carol"), a(1));
        let almost = deadline - std::time::Duration::from_millis(1);
        assert_eq!(kind(&r.subscribe(&name, Some(deadline), almost, live)), "waiting");
        assert_eq!(kind(&r.subscribe(&name, Some(deadline), deadline, live)), "expired");
        // A publisher of a prefix of its namespace, before the deadline: routed upstream.
        r.publish_namespace(ns("users/bob"), a(2));
        match r.subscribe(&name, Some(deadline), almost, live) {
            Subscribed::Upstream { publisher, track } => {
                assert_eq!(publisher, 2);
                assert_eq!(track.current_phase(), Phase::Pending);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_publisher_whose_session_is_gone_is_not_routed_to() {
        let mut r = Router::new();
        let t0 = Instant::now();
        let name = FullName { namespace: ns("a"), name: "t".into() };
        r.publish_namespace(ns("a"), a(7));
        assert_eq!(kind(&r.subscribe(&name, None, t0, |s| s != 7)), "not found");
        assert_eq!(kind(&r.subscribe(&name, None, t0, |_| true)), "upstream");
    }

    #[test]
    fn subscribers_share_one_upstream_track_until_the_last_leaves() {
        let mut r = Router::new();
        let t0 = Instant::now();
        let name = FullName { namespace: ns("live"), name: "cam".into() };
        r.publish_namespace(ns("live"), a(1));
        let Subscribed::Upstream { track, .. } = r.subscribe(&name, None, t0, |_| true) else { panic!("no upstream") };
        let Subscribed::Existing(same) = r.subscribe(&name, None, t0, |_| true) else { panic!("not shared") };
        assert!(Arc::ptr_eq(&track, &same));
        r.release(&track);
        assert!(r.track(&name).is_some() && !track.current_phase().is_terminal());
        r.release(&track);
        assert!(r.track(&name).is_none());
        assert!(matches!(track.current_phase(), Phase::Done { .. }), "the upstream subscription ends with the last subscriber");
        // An ended track is not reused: the next SUBSCRIBE opens a new upstream one.
        assert_eq!(kind(&r.subscribe(&name, None, t0, |_| true)), "upstream");
    }

    #[test]
    fn a_published_track_is_existing_until_it_ends_and_outlives_its_subscribers() {
        let mut r = Router::new();
        let t0 = Instant::now();
        let deadline = t0 + std::time::Duration::from_millis(500);
        let name = FullName { namespace: ns("live"), name: "cam".into() };
        let t = Track::with_origin(name.clone(), Phase::Active { properties: Default::default(), default_priority: 128 }, 4, 1024, true);
        r.insert_track(t.clone(), true);
        assert_eq!(kind(&r.subscribe(&name, Some(deadline), t0, |_| true)), "existing");
        r.release(&t);
        assert!(r.track(&name).is_some(), "PUBLISHed tracks outlive subscribers");
        t.set_phase(Phase::Done { status: 0, reason: String::new() });
        assert_eq!(kind(&r.subscribe(&name, Some(deadline), t0, |_| true)), "waiting");
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
