//! The tracks a phone publishes in its call namespace (docs/CALLS.md §5–§6):
//! `events` (replayed to every new subscription, then live, and served to
//! FETCH), `audio` (OBJECT_DATAGRAMs) and `catalog`.

use super::media::AudioMapping;
use crate::call::Event;
use bytes::Bytes;
use moq_client::{DatagramSpec, FetchedObject, IncomingFetch, IncomingSubscribe, SubgroupSpec, TrackPublisher};
use moq_wire::coding::{KeyValuePairs, Location};
use moq_wire::message::RequestErrorCode;
use std::sync::{Arc, Mutex};

/// Publisher priority of the `events` subgroup streams
/// (0 = most urgent, before audio; docs/CALLS.md §5, draft-18 §7); FETCH answers repeat it, since a
/// duplicate object with another priority makes the track malformed
/// (draft-18 §9.1).
const EVENTS_PRIORITY: u8 = 0;

/// What we publish for one call; shared by the call driver and the
/// subscription acceptor.
#[derive(Default)]
pub struct Published {
    /// Every event sent so far, encoded; group = index (CALLS.md §5).
    events: Vec<Bytes>,
    event_subs: Vec<Arc<TrackPublisher>>,
    audio_subs: Vec<Arc<TrackPublisher>>,
    other_subs: Vec<Arc<TrackPublisher>>,
    /// Largest audio object published.
    audio_largest: Option<Location>,
    /// Accepted SUBSCRIBEs by Request ID: the track and the Joining
    /// Location we sent in SUBSCRIBE_OK, to answer a Joining FETCH.
    joining: std::collections::HashMap<u64, (String, Option<Location>)>,
    /// Our PUBLISH_NAMESPACE for the call, withdrawn by [`linger_then_end`].
    pub announce: Option<moq_client::RequestHandle>,
    /// Open audio subgroup streams (stream mappings), by publisher.
    writers: std::collections::HashMap<usize, (u64, moq_client::SubgroupWriter)>,
}

impl Published {
    /// The Joining Location of an accepted SUBSCRIBE with `request_id`, if
    /// it was for a track here: `Some((track, location))`.
    pub fn joined(&self, request_id: u64) -> Option<(String, Option<Location>)> {
        self.joining.get(&request_id).cloned()
    }
}

pub type Shared = Arc<Mutex<Published>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Published> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// The MSF catalog of a call namespace (CALLS.md §6). MSF's `version` is a
/// string, "draft-XX" for an Internet-Draft (draft-ietf-moq-msf "MSF
/// version"), and an audio track requires `bitrate`, the track's maximum
/// (64 kbit/s: the encoder's ceiling, `audio::adapt`).
pub fn catalog(namespace: &str) -> Bytes {
    let v = serde_json::json!({
        "version": "draft-01",
        "tracks": [{"name": "audio", "namespace": namespace, "packaging": "loc", "role": "audio",
                    "codec": "opus", "samplerate": 48000, "channelConfig": "1", "bitrate": 64000, "isLive": true}]
    });
    Bytes::from(v.to_string())
}

/// The largest object published on `track` so far (draft-18 §10.2.11).
fn largest(p: &Published, track: &str) -> Option<Location> {
    match track {
        "events" => p.events.len().checked_sub(1).map(|g| Location::new(g as u64, 0)),
        // Object 0 of group 0, there from the start (CALLS.md §6).
        "catalog" => Some(Location::new(0, 0)),
        "audio" => p.audio_largest,
        _ => None,
    }
}

static NEXT_ALIAS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Answers a SUBSCRIBE the relay forwarded for one of our tracks.
pub async fn serve(shared: Shared, req: IncomingSubscribe, namespace_path: String) {
    let track = req.track_name();
    let request_id = req.request.id;
    // Track Aliases are ours to choose and must be unique within the
    // session (draft-18 §11.1, Track Alias: a duplicate closes the session with
    // DUPLICATE_TRACK_ALIAS); a gateway runs many calls on one session, so
    // the counter is process-wide rather than per call.
    let alias = NEXT_ALIAS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let joining = largest(&lock(&shared), &track);
    let publisher = match track.as_str() {
        "events" | "audio" | "catalog" => {
            // "If Objects have been published on this Track the Publisher
            // MUST include [LARGEST_OBJECT]" (draft-18 §10.2.11): it is the
            // Joining Location a subscriber's Joining FETCH ends at (§5.1,
            // §10.12.2.1), and a relay without a cache resolves that FETCH
            // against it and forwards it to us (see `serve_fetch`).
            let mut params = KeyValuePairs::new();
            if let Some(l) = joining {
                let _ = params.set_largest_object(l);
            }
            match req.accept_with(alias, params, Bytes::new()).await {
                Ok(p) => Arc::new(p),
                Err(e) => {
                    tracing::debug!(error = %e, "could not accept SUBSCRIBE");
                    return;
                }
            }
        }
        other => {
            let _ = req.reject(RequestErrorCode::DoesNotExist as u64, &format!("no track {other} here")).await;
            return;
        }
    };
    lock(&shared).joining.insert(request_id, (track.clone(), joining));
    match track.as_str() {
        "events" => {
            // Replay the log on the new subscription: a caching relay (ours)
            // answers later FETCHes from what it received here. Relays that
            // keep no cache forward FETCH to us instead (`serve_fetch`).
            // Subscribers drop what they already have by group.
            let log = {
                let mut p = lock(&shared);
                p.event_subs.push(publisher.clone());
                p.events.clone()
            };
            for (seq, e) in log.into_iter().enumerate() {
                let _ = publisher.send_group_at(EVENTS_PRIORITY, seq as u64, &[e]).await;
            }
        }
        "audio" => lock(&shared).audio_subs.push(publisher),
        _ => {
            let _ = publisher.send_group_at(EVENTS_PRIORITY, 0, &[catalog(&namespace_path)]).await;
            lock(&shared).other_subs.push(publisher);
        }
    }
}

/// Answers a FETCH for `track` from what we published: the relay forwarded
/// it because it keeps no cache (draft-18 §9.1 "Relays MAY cache Objects,
/// but are not required to"; moq-relay-ietf passes every FETCH through to
/// the original publisher, a Joining FETCH resolved to a Standalone one).
/// `range` is the request's start and end ("last object plus one", object
/// 0 meaning the whole group, §10.12.1). Events and the catalog are kept
/// for the call; audio is live only and has no history.
pub async fn serve_fetch(shared: &Shared, req: IncomingFetch, namespace_path: &str, track: &str, (start, end): (Location, Location)) {
    let reject = |req: IncomingFetch, code: RequestErrorCode, why: &'static str| async move {
        tracing::debug!(why, "refusing FETCH");
        let _ = req.reject(code as u64, why).await;
    };
    if req.descending() {
        return reject(req, RequestErrorCode::NotSupported, "only ascending group order").await;
    }
    let log: Vec<Bytes> = match track {
        "events" => lock(shared).events.clone(),
        "catalog" => vec![catalog(namespace_path)],
        "audio" => return reject(req, RequestErrorCode::NotSupported, "audio is live only").await,
        _ => return reject(req, RequestErrorCode::DoesNotExist, "no such track").await,
    };
    let (groups, end_location) = match fetch_range(log.len() as u64, start, end) {
        Ok(r) => r,
        Err(why) => return reject(req, RequestErrorCode::InvalidRange, why).await,
    };
    let objects: Vec<FetchedObject> = groups
        .map(|g| FetchedObject {
            group_id: g,
            subgroup_id: Some(0),
            object_id: 0,
            publisher_priority: EVENTS_PRIORITY,
            properties: Bytes::new(),
            payload: log[g as usize].clone(),
        })
        .collect();
    if let Err(e) = req.respond(end_location, Bytes::new(), &objects).await {
        tracing::debug!(error = %e, "could not answer FETCH");
    }
}

/// Which of `count` one-object groups (object 0 each, groups from 0,
/// CALLS.md §5) a FETCH of `start`..`end` returns, and the End Location of
/// its FETCH_OK; `Err` for INVALID_RANGE.
fn fetch_range(count: u64, start: Location, end: Location) -> Result<(std::ops::RangeInclusive<u64>, Location), &'static str> {
    // §10.12.3: nothing published yet, or a start beyond the Largest
    // Object, is INVALID_RANGE.
    let largest = count.checked_sub(1).ok_or("nothing published yet")?;
    let at = |l: Location| (l.group_id, l.object_id);
    // End Location is the last object plus one; object 0 means the whole
    // group (§10.12.1).
    let last = if end.object_id == 0 { (end.group_id, u64::MAX) } else { (end.group_id, end.object_id - 1) };
    if at(start) > (largest, 0) || at(start) > last {
        return Err("start beyond the largest object or the end");
    }
    let first = if start.object_id == 0 { start.group_id } else { start.group_id + 1 };
    // FETCH_OK End Location: the request's, or {Largest.Group,
    // Largest.Object + 1} when it asked beyond what exists (§10.13).
    let end_location = if last >= (largest, 0) { Location::new(largest, 1) } else { end };
    Ok((first..=end.group_id.min(largest), end_location))
}

/// The range of a Joining FETCH against the subscription it names, whose
/// Joining Location was `joining` (draft-18 §10.12.2.1), or `None` for
/// INVALID_RANGE.
pub fn joining_range(joining: Option<Location>, start: u64, relative: bool) -> Option<(Location, Location)> {
    let jl = joining?;
    // The draft does not say what a relative start beyond group 0 means;
    // read it as "from the first group".
    let group = if relative { jl.group_id.saturating_sub(start) } else { start };
    (group <= jl.group_id).then(|| (Location::new(group, 0), Location::new(jl.group_id, jl.object_id + 1)))
}

/// How long a finished call's tracks stay up, so that a peer that is still
/// subscribing (a caller learning of a `reject`, say) can read the last events.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Ends a call's publication cleanly after [`LINGER`]: PUBLISH_DONE with the
/// stream count on every track (so relays forward the last objects before the
/// end, draft-18 §10.11), then withdraw the namespace.
pub async fn linger_then_end(shared: Shared) {
    tokio::time::sleep(LINGER).await;
    let (subs, announce) = {
        let mut p = lock(&shared);
        let mut subs: Vec<Arc<TrackPublisher>> = Vec::new();
        subs.append(&mut p.event_subs);
        subs.append(&mut p.audio_subs);
        subs.append(&mut p.other_subs);
        for (_, (_, w)) in p.writers.drain() {
            w.finish();
        }
        (subs, p.announce.take())
    };
    for s in subs {
        if let Ok(p) = Arc::try_unwrap(s) {
            let _ = p.done(0x2, "call ended").await;
        }
    }
    if let Some(a) = announce {
        a.finish();
    }
}

/// Publishes one event to every current subscription and logs it for later ones.
pub async fn send_event(shared: &Shared, event: Event) {
    let bytes = Bytes::from(event.encode());
    let (seq, subs) = {
        let mut p = lock(shared);
        p.events.push(bytes.clone());
        (p.events.len() as u64 - 1, p.event_subs.clone())
    };
    for s in subs {
        let _ = s.send_group_at(EVENTS_PRIORITY, seq, std::slice::from_ref(&bytes)).await;
    }
}

/// Sends one audio frame to every audio subscription, mapped as configured.
pub async fn send_audio(shared: &Shared, mapping: AudioMapping, frame_no: u64, properties: Bytes, opus: Bytes) {
    let per = mapping.per_group();
    let (group, object) = (frame_no / per, frame_no % per);
    let subs = {
        let mut p = lock(shared);
        p.audio_largest = Some(Location::new(group, object));
        p.audio_subs.clone()
    };
    for s in subs {
        match mapping {
            AudioMapping::Datagram => {
                let mut spec = DatagramSpec::new(group, object, opus.clone());
                spec.properties = properties.clone();
                let _ = s.send_datagram(&spec);
            }
            AudioMapping::Streams(_) => {
                let key = Arc::as_ptr(&s) as usize;
                let mut writers = std::mem::take(&mut lock(shared).writers);
                if object == 0 {
                    // A new group: finish the previous stream, open the next.
                    if let Some((_, w)) = writers.remove(&key) {
                        w.finish();
                    }
                    let spec = SubgroupSpec { properties: true, end_of_group: true, ..SubgroupSpec::new(group, 0) };
                    if let Ok(w) = s.open_subgroup(spec).await {
                        writers.insert(key, (group, w));
                    }
                }
                if let Some((g, w)) = writers.get_mut(&key) {
                    if *g == group && w.write_with_properties(object, &properties, &opus).await.is_err() {
                        writers.remove(&key);
                    }
                }
                lock(shared).writers = writers;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(g: u64, o: u64) -> Location {
        Location::new(g, o)
    }

    #[test]
    fn fetch_ranges_of_events() {
        // Three events (groups 0..=2); everything, as the gap fill asks.
        assert_eq!(fetch_range(3, l(0, 0), l(1 << 32, 0)), Ok((0..=2, l(2, 1))));
        // A hole [1, 2): end is "last plus one".
        assert_eq!(fetch_range(3, l(1, 0), l(1, 1)), Ok((1..=1, l(1, 1))));
        // Whole group 1 (object 0 in End Location).
        assert_eq!(fetch_range(3, l(0, 0), l(1, 0)), Ok((0..=1, l(1, 0))));
        // A start inside group 0 skips its only object.
        assert_eq!(fetch_range(3, l(0, 1), l(2, 1)), Ok((1..=2, l(2, 1))));
        assert!(fetch_range(0, l(0, 0), l(5, 0)).is_err());
        assert!(fetch_range(3, l(3, 0), l(5, 0)).is_err());
        assert!(fetch_range(3, l(2, 0), l(1, 0)).is_err());
    }

    #[test]
    fn joining_ranges() {
        // What moq-relay-ietf forwards for an Absolute Joining FETCH from 0.
        assert_eq!(joining_range(Some(l(4, 0)), 0, false), Some((l(0, 0), l(4, 1))));
        assert_eq!(joining_range(Some(l(4, 0)), 1, true), Some((l(3, 0), l(4, 1))));
        assert_eq!(joining_range(Some(l(4, 0)), 1_000_000, true), Some((l(0, 0), l(4, 1))));
        assert_eq!(joining_range(Some(l(4, 0)), 5, false), None);
        assert_eq!(joining_range(None, 0, false), None);
    }
}
