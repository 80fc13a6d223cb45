//! The tracks a phone publishes in its call namespace (docs/CALLS.md §5–§6):
//! `events` (replayed to every new subscription, then live), `audio`
//! (OBJECT_DATAGRAMs) and `catalog`.

use super::media::AudioMapping;
use crate::call::Event;
use bytes::Bytes;
use moq_interop::{DatagramSpec, IncomingSubscribe, SubgroupSpec, TrackPublisher};
use std::sync::{Arc, Mutex};

/// What we publish for one call; shared by the call driver and the
/// subscription acceptor.
#[derive(Default)]
pub struct Published {
    events: Vec<Event>,
    event_subs: Vec<Arc<TrackPublisher>>,
    audio_subs: Vec<Arc<TrackPublisher>>,
    other_subs: Vec<Arc<TrackPublisher>>,
    next_alias: u64,
    /// Our PUBLISH_NAMESPACE for the call, withdrawn by [`linger_then_end`].
    pub announce: Option<moq_interop::RequestHandle>,
    /// Open audio subgroup streams (stream mappings), by publisher.
    writers: std::collections::HashMap<usize, (u64, moq_interop::SubgroupWriter)>,
}

pub type Shared = Arc<Mutex<Published>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Published> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// The MSF catalog of a call namespace (CALLS.md §6).
pub fn catalog(namespace: &str) -> Bytes {
    let v = serde_json::json!({
        "version": 1,
        "tracks": [{"name": "audio", "namespace": namespace, "packaging": "loc", "role": "audio",
                    "codec": "opus", "samplerate": 48000, "channelConfig": "1", "isLive": true}]
    });
    Bytes::from(v.to_string())
}

/// Answers a SUBSCRIBE the relay forwarded for one of our tracks.
pub async fn serve(shared: Shared, req: IncomingSubscribe, namespace_path: String) {
    let track = req.track_name();
    let alias = {
        let mut p = lock(&shared);
        p.next_alias += 1;
        p.next_alias
    };
    let publisher = match track.as_str() {
        "events" | "audio" | "catalog" => match req.accept(alias).await {
            Ok(p) => Arc::new(p),
            Err(e) => {
                tracing::debug!(error = %e, "could not accept SUBSCRIBE");
                return;
            }
        },
        other => {
            let _ = req.reject(0x10, &format!("no track {other} here")).await;
            return;
        }
    };
    match track.as_str() {
        "events" => {
            // Replay the log so a late subscriber (and the relay's cache) has
            // every event; group = event sequence number.
            let log = {
                let mut p = lock(&shared);
                p.event_subs.push(publisher.clone());
                p.events.clone()
            };
            for (seq, e) in log.iter().enumerate() {
                let _ = publisher.send_group(seq as u64, &[Bytes::from(e.encode())]).await;
            }
        }
        "audio" => lock(&shared).audio_subs.push(publisher),
        _ => {
            let _ = publisher.send_group(0, &[catalog(&namespace_path)]).await;
            lock(&shared).other_subs.push(publisher);
        }
    }
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
    let (seq, subs) = {
        let mut p = lock(shared);
        p.events.push(event.clone());
        (p.events.len() as u64 - 1, p.event_subs.clone())
    };
    let bytes = Bytes::from(event.encode());
    for s in subs {
        let _ = s.send_group(seq, std::slice::from_ref(&bytes)).await;
    }
}

/// Sends one audio frame to every audio subscription, mapped as configured.
pub async fn send_audio(shared: &Shared, mapping: AudioMapping, frame_no: u64, properties: Bytes, opus: Bytes) {
    let subs = lock(shared).audio_subs.clone();
    let per = mapping.per_group();
    let (group, object) = (frame_no / per, frame_no % per);
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
