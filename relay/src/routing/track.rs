//! One track at the relay: its upstream state, its downstream subscribers and
//! its cache. There is exactly one `Track` per full track name, so all
//! downstream subscribers share one upstream subscription
//! (draft-ietf-moq-transport-18 §9.4 "Subscriber Interactions").
//!
//! Objects are forwarded as they arrive, one at a time — never whole-group
//! buffering — into each subscriber session's bounded [`Outbound`] queue.

use crate::routing::cache::{Cache, CachedObject};
use crate::routing::catchup;
pub use crate::routing::filter::Window;
use crate::routing::outbound::{Item, Outbound};
use crate::routing::signal::Signal;
use crate::wire::datagram::Datagram;
use crate::wire::subgroup::{Object, SubgroupHeader};
use bytes::Bytes;
use moq_wire::coding::{Location, TrackName, TrackNamespace};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a PUBLISH_DONE waits for the data streams it counts (§10.11).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Namespace and name (§2.4.1 "Track Naming").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FullName {
    pub namespace: TrackNamespace,
    pub name: TrackName,
}

impl std::fmt::Display for FullName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace.to_utf8_path(), self.name.to_string_lossy())
    }
}

/// Upstream lifecycle, observed by downstream request handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Upstream SUBSCRIBE sent, no answer yet.
    Pending,
    /// Objects may flow; `properties` are the upstream Track Properties.
    Active {
        properties: Bytes,
        default_priority: u8,
    },
    /// Upstream refused (REQUEST_ERROR code) or finished (PUBLISH_DONE status).
    Failed {
        code: u64,
        reason: String,
    },
    Done {
        status: u64,
        reason: String,
    },
}

impl Phase {
    /// `Done` or `Failed`: the track will not change again.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Phase::Done { .. } | Phase::Failed { .. })
    }
}

/// A downstream subscription attached to the track.
pub struct Subscriber {
    pub id: u64,
    pub alias: u64,
    pub forward: bool,
    /// What its Subscription Filter lets through (§5.1.2).
    pub window: Window,
    pub outbound: Arc<Outbound>,
    pub datagrams: Arc<dyn DatagramSink>,
    /// Upstream stream serials whose header was already sent downstream.
    open: Vec<u64>,
    /// Data streams opened for this subscription (PUBLISH_DONE Stream Count, §10.11).
    opened: u64,
}

/// Sends a datagram without waiting (a session's unreliable path).
pub trait DatagramSink: Send + Sync {
    fn send(&self, datagram: Bytes);
}

impl Subscriber {
    pub fn new(id: u64, alias: u64, window: Window, outbound: Arc<Outbound>, datagrams: Arc<dyn DatagramSink>) -> Self {
        Self { id, alias, forward: true, window, outbound, datagrams, open: Vec::new(), opened: 0 }
    }
    fn wants(&self, loc: Location) -> bool {
        self.forward && self.window.contains(loc)
    }
}

struct State {
    subscribers: Vec<Subscriber>,
    cache: Cache,
    largest: Option<Location>,
    /// Serials of catch-up streams, counted down from u64::MAX.
    catchup_serial: u64,
    /// Upstream subgroup streams still open, so a catch-up of their cached
    /// objects can continue as the live downstream stream.
    live: Vec<LiveStream>,
    /// Upstream data streams seen / still open, so PUBLISH_DONE is passed on
    /// only after the streams it counts have been forwarded (§10.11).
    streams_seen: u64,
    streams_open: u64,
    draining: Option<Draining>,
}

/// A PUBLISH_DONE held back until the streams it counts have ended.
struct Draining {
    status: u64,
    reason: String,
    stream_count: u64,
    deadline: Instant,
}

impl State {
    /// The held-back PUBLISH_DONE, once every stream it counts was seen and
    /// none is open any more, or once its deadline passed.
    fn take_drained(&mut self, now: Option<Instant>) -> Option<Phase> {
        let d = self.draining.as_ref()?;
        let drained = self.streams_seen >= d.stream_count && self.streams_open == 0;
        if drained || now.is_some_and(|n| n >= d.deadline) {
            let d = self.draining.take()?;
            return Some(Phase::Done { status: d.status, reason: d.reason });
        }
        None
    }
}

struct LiveStream {
    serial: u64,
    group: u64,
    subgroup: u64,
    header: SubgroupHeader,
    priority: u8,
}

pub struct Track {
    pub name: FullName,
    state: Mutex<State>,
    phase: Mutex<Phase>,
    /// Notified on every phase change, for the shell's request handlers.
    changed: Signal,
    /// Upstream origin of this track: the publisher session's id.
    pub origin: Mutex<Option<u64>>,
    pub objects_in: AtomicU64,
    pub bytes_in: AtomicU64,
    /// Downstream requests interested in this track (changed under the router
    /// lock); the upstream subscription is cancelled when it drops to zero.
    pub interest: std::sync::atomic::AtomicUsize,
    /// True for tracks created by a direct PUBLISH (they outlive subscribers).
    pub published: bool,
}

/// A subgroup stream as the track sees it: header plus a relay-unique serial.
pub struct UpstreamStream {
    pub serial: u64,
    pub header: SubgroupHeader,
    pub first_object: Option<u64>,
}

impl Track {
    pub fn new(name: FullName, phase: Phase, cache_groups: usize, cache_bytes: usize) -> Arc<Self> {
        Self::with_origin(name, phase, cache_groups, cache_bytes, false)
    }

    pub fn with_origin(name: FullName, phase: Phase, cache_groups: usize, cache_bytes: usize, published: bool) -> Arc<Self> {
        Arc::new(Self {
            name,
            state: Mutex::new(State {
                subscribers: Vec::new(),
                cache: Cache::new(cache_groups, cache_bytes),
                largest: None,
                catchup_serial: 0,
                live: Vec::new(),
                streams_seen: 0,
                streams_open: 0,
                draining: None,
            }),
            phase: Mutex::new(phase),
            changed: Signal::new(),
            origin: Mutex::new(None),
            objects_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            interest: std::sync::atomic::AtomicUsize::new(0),
            published,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves with the first phase that satisfies `pred` — at once if the
    /// current one does. Downstream handlers attach after awaiting their
    /// SUBSCRIBE_OK / PUBLISH_OK write, and the publisher can end the track in
    /// that gap (PUBLISH_DONE right behind the last objects), so waiting for a
    /// *change* would miss an end that came first.
    pub async fn phase_where(&self, pred: impl Fn(&Phase) -> bool) -> Phase {
        loop {
            let seen = self.changed.generation();
            let phase = self.current_phase();
            if pred(&phase) {
                return phase;
            }
            self.changed.changed_since(seen).await;
        }
    }

    /// Resolves with the terminal phase (`Done` or `Failed`).
    pub async fn ended(&self) -> Phase {
        self.phase_where(Phase::is_terminal).await
    }

    pub fn current_phase(&self) -> Phase {
        self.phase.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_phase(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase;
        self.changed.notify();
    }

    pub fn largest(&self) -> Option<Location> {
        self.lock().largest
    }

    pub fn subscriber_count(&self) -> usize {
        self.lock().subscribers.len()
    }

    pub fn cache_bytes(&self) -> usize {
        self.lock().cache.bytes()
    }

    pub fn attach(&self, sub: Subscriber) {
        self.lock().subscribers.push(sub);
    }

    /// Attaches a subscriber and first sends it the cached objects at or after
    /// its start location: objects that reached the relay between the
    /// SUBSCRIBE and its SUBSCRIBE_OK belong to the subscription (§5.1.2) but
    /// would otherwise fall in the gap. Under the track lock, so every object
    /// goes out exactly once — from the cache or live.
    pub fn attach_with_catchup(&self, mut sub: Subscriber) {
        let mut s = self.lock();
        if sub.forward {
            let objects = s.cache.range(sub.window.start, Location::new(u64::MAX, u64::MAX));
            let mut i = 0;
            while i < objects.len() {
                let (group, first) = (objects[i].0, &objects[i].1);
                if sub.window.end_group.is_some_and(|g| group > g) {
                    break;
                }
                let Some(subgroup) = first.subgroup_id else {
                    sub.datagrams.send(catchup::datagram(sub.alias, group, first));
                    i += 1;
                    continue;
                };
                let run = objects[i..].iter().take_while(|(g, o)| *g == group && o.subgroup_id == Some(subgroup)).count();
                let batch = objects[i..i + run].iter().map(|(_, o)| o);
                i += run;
                if let Some(live) = s.live.iter().find(|l| l.group == group && l.subgroup == subgroup) {
                    // The upstream stream is still open: this downstream stream
                    // carries on with its later objects, so the subgroup stays
                    // on one stream (§11.4.2) and is finished with it.
                    let key = (sub.id, live.serial);
                    let mut header = Vec::with_capacity(24);
                    live.header.encode_for(sub.alias, subgroup, true, &mut header);
                    let body = catchup::subgroup_objects(batch, live.header.has_properties());
                    sub.outbound.push(Item::Open { key, header: header.into(), priority: live.priority });
                    sub.outbound.push(Item::Data { key, bytes: body });
                    sub.open.push(live.serial);
                } else {
                    s.catchup_serial += 1;
                    let key = (sub.id, u64::MAX - s.catchup_serial);
                    let header = catchup::subgroup_header(sub.alias, group, subgroup, first.priority);
                    sub.outbound.push(Item::Open { key, header, priority: first.priority });
                    sub.outbound.push(Item::Data { key, bytes: catchup::subgroup_objects(batch, true) });
                    sub.outbound.push(Item::Fin { key });
                }
                sub.opened += 1;
            }
        }
        s.subscribers.push(sub);
    }

    /// Removes a subscriber. With `reset`, its open streams are reset
    /// (unsubscribe); otherwise they are finished (the track ended cleanly).
    /// Returns the number of data streams the subscription used.
    pub fn detach(&self, id: u64, reset: bool) -> u64 {
        let mut s = self.lock();
        let Some(i) = s.subscribers.iter().position(|x| x.id == id) else { return 0 };
        let sub = s.subscribers.swap_remove(i);
        for serial in sub.open {
            let key = (sub.id, serial);
            sub.outbound.push(if reset { Item::Reset { key, code: crate::wire::stream_error::CANCELLED } } else { Item::Fin { key } });
        }
        sub.opened
    }

    /// Changes a subscriber's forward state (REQUEST_UPDATE, §10.9.1).
    pub fn set_forward(&self, id: u64, forward: bool) {
        if let Some(sub) = self.lock().subscribers.iter_mut().find(|x| x.id == id) {
            sub.forward = forward;
        }
    }

    /// An object from an upstream subgroup stream: cache it, then queue it for
    /// every subscriber that wants it (§9.7 "Relay Object Handling").
    pub fn on_object(&self, stream: &UpstreamStream, obj: &Object, default_priority: u8) {
        self.objects_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(obj.raw.len() as u64, Ordering::Relaxed);
        let group = stream.header.group_id;
        let subgroup = stream.header.subgroup_id.unwrap_or(0);
        let loc = Location::new(group, obj.object_id);
        let mut s = self.lock();
        s.cache.insert(
            group,
            CachedObject {
                object_id: obj.object_id,
                subgroup_id: Some(subgroup),
                priority: stream.header.publisher_priority.unwrap_or(default_priority),
                properties: obj.properties(),
                payload: obj.payload(),
                status: obj.status,
            },
        );
        if s.largest.is_none_or(|l| (l.group_id, l.object_id) < (group, obj.object_id)) {
            s.largest = Some(loc);
        }
        let is_first = stream.first_object == Some(obj.object_id);
        if is_first && !s.live.iter().any(|l| l.serial == stream.serial) {
            let priority = stream.header.publisher_priority.unwrap_or(default_priority);
            s.live.push(LiveStream { serial: stream.serial, group, subgroup, header: stream.header.clone(), priority });
        }
        for sub in s.subscribers.iter_mut() {
            if !sub.wants(loc) {
                continue;
            }
            let key = (sub.id, stream.serial);
            if !sub.open.contains(&stream.serial) {
                let mut header = Vec::with_capacity(24);
                stream.header.encode_for(sub.alias, subgroup, !is_first, &mut header);
                let prio = stream.header.publisher_priority.unwrap_or(default_priority);
                if !sub.outbound.push(Item::Open { key, header: header.into(), priority: prio }) {
                    continue;
                }
                sub.open.push(stream.serial);
                sub.opened += 1;
                let bytes = if is_first {
                    obj.raw.clone()
                } else {
                    let mut first = Vec::with_capacity(obj.raw.len() + 8);
                    obj.encode_as_first(&mut first);
                    first.into()
                };
                sub.outbound.push(Item::Data { key, bytes });
            } else {
                sub.outbound.push(Item::Data { key, bytes: obj.raw.clone() });
            }
        }
    }

    /// An upstream data stream for this track began.
    pub fn on_stream_start(&self) {
        let mut s = self.lock();
        s.streams_seen += 1;
        s.streams_open += 1;
    }

    /// PUBLISH_DONE from upstream (§10.11). It travels on the request stream
    /// and can overtake the last objects on the data streams, so the track
    /// ends only once `stream_count` upstream streams were seen and none is
    /// still open — or at `now + DRAIN_TIMEOUT`, for streams that never come.
    /// Returns the deadline at which to call [`Self::handle_timeout`], or
    /// `None` when the track ended at once.
    pub fn publish_done(&self, status: u64, reason: String, stream_count: u64, now: Instant) -> Option<Instant> {
        let deadline = now + DRAIN_TIMEOUT;
        let ended = {
            let mut s = self.lock();
            s.draining = Some(Draining { status, reason, stream_count, deadline });
            s.take_drained(None)
        };
        match ended {
            Some(phase) => {
                self.set_phase(phase);
                None
            }
            None => Some(deadline),
        }
    }

    /// The time passed `now`: ends a drain whose deadline has come.
    pub fn handle_timeout(&self, now: Instant) {
        let ended = self.lock().take_drained(Some(now));
        if let Some(phase) = ended {
            self.set_phase(phase);
        }
    }

    /// When [`Self::handle_timeout`] wants to be called, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.lock().draining.as_ref().map(|d| d.deadline)
    }

    /// The upstream stream ended: FIN (or reset) the matching downstream
    /// streams, and end a drained PUBLISH_DONE.
    pub fn on_stream_end(&self, serial: u64, reset: Option<u32>) {
        let ended = {
            let mut s = self.lock();
            s.streams_open = s.streams_open.saturating_sub(1);
            s.live.retain(|l| l.serial != serial);
            for sub in s.subscribers.iter_mut() {
                if let Some(i) = sub.open.iter().position(|x| *x == serial) {
                    sub.open.swap_remove(i);
                    let key = (sub.id, serial);
                    sub.outbound.push(match reset {
                        None => Item::Fin { key },
                        Some(code) => Item::Reset { key, code },
                    });
                }
            }
            s.take_drained(None)
        };
        if let Some(phase) = ended {
            self.set_phase(phase);
        }
    }

    /// A datagram object: cache and forward with each subscriber's alias.
    pub fn on_datagram(&self, d: &Datagram, default_priority: u8) {
        self.objects_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(d.raw.len() as u64, Ordering::Relaxed);
        let loc = Location::new(d.group_id, d.object_id);
        let mut s = self.lock();
        s.cache.limit_bytes(crate::routing::cache::DATAGRAM_BYTES);
        s.cache.insert(
            d.group_id,
            CachedObject {
                object_id: d.object_id,
                subgroup_id: None,
                priority: d.publisher_priority.unwrap_or(default_priority),
                properties: d.properties(),
                payload: d.payload(),
                status: d.status,
            },
        );
        if s.largest.is_none_or(|l| (l.group_id, l.object_id) < (d.group_id, d.object_id)) {
            s.largest = Some(loc);
        }
        for sub in s.subscribers.iter().filter(|x| x.wants(loc)) {
            sub.datagrams.send(d.with_alias(sub.alias));
        }
    }

    /// Cached objects in `[start, end]` (FETCH, §10.12).
    pub fn cached(&self, start: Location, end: Location) -> Vec<(u64, CachedObject)> {
        self.lock().cache.range(start, end)
    }

    /// Start group for a relative joining FETCH: `offset` groups before the largest.
    pub fn cached_groups(&self) -> Vec<u64> {
        self.lock().cache.group_ids().collect()
    }
}

#[cfg(test)]
mod tests;
