//! The data path (draft-ietf-moq-transport-18 §11): upstream subgroup streams
//! and datagrams in, the per-session writer out.

use super::handle::SessionHandle;
use super::transport::{ReadError, RecvStream, SendStream};
use crate::routing::outbound::{Action, Item, StreamKey};
use crate::routing::track::UpstreamStream;
use crate::state::Relay;
use crate::wire::datagram::Datagram;
use crate::wire::subgroup::{Event, SubgroupParser};
use crate::wire::{session_error, stream_error, WireError};
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// How long a data stream may wait for the SUBSCRIBE_OK / PUBLISH that
/// defines its Track Alias (§11.4.2).
const ALIAS_WAIT: Duration = Duration::from_secs(2);

/// Reads one upstream SUBGROUP stream and forwards each object as it completes.
///
/// A header or object begun and not finished within `Limits::stall_timeout`
/// of its last bytes closes the session ([`stalled`]); the timer is armed
/// only while a unit is partial, so an object that arrives whole in one read
/// — every audio frame — costs no timer.
pub async fn subgroup(relay: Arc<Relay>, session: Arc<SessionHandle>, mut recv: RecvStream, first: BytesMut) {
    let mut parser = SubgroupParser::new(relay.limits.max_object_size);
    parser.push(&first);
    let serial = relay.next_id();
    let mut stream: Option<(UpstreamStream, Arc<crate::routing::track::Track>, u8)> = None;
    let result: Result<(), Failure> = async {
        loop {
            while let Some(ev) = parser.next()? {
                match ev {
                    Event::Header(h) => {
                        let found = match session.alias(h.track_alias) {
                            Some(x) => Some(x),
                            None => session.wait_alias(h.track_alias, ALIAS_WAIT).await,
                        };
                        let Some((track, prio)) = found else {
                            // Unknown alias: abandon this stream only (§11.4.2).
                            relay.metrics.error("unknown_track_alias");
                            let _ = recv.stop(stream_error::CANCELLED);
                            return Ok(());
                        };
                        track.on_stream_start();
                        stream = Some((UpstreamStream { serial, header: h, first_object: None }, track, prio));
                    }
                    Event::Object(o) => {
                        if let Some((up, track, prio)) = stream.as_mut() {
                            if up.first_object.is_none() {
                                up.first_object = Some(o.object_id);
                                up.header.subgroup_id = parser.subgroup_id();
                            }
                            relay.metrics.objects_in.fetch_add(1, Ordering::Relaxed);
                            relay.metrics.bytes_in.fetch_add(o.raw.len() as u64, Ordering::Relaxed);
                            track.on_object(up, &o, *prio);
                        }
                    }
                }
            }
            let read = recv.read_chunk(64 * 1024);
            let read = if parser.buffered() == 0 {
                // Between whole objects: idle is legitimate (§3.5 lets an
                // endpoint stop such a stream, but a call's publisher may
                // pause for minutes), so no timer on the forwarding path.
                read.await
            } else {
                // Mid-header or mid-object: the stall timeout from the last bytes.
                match tokio::time::timeout(relay.limits.stall_timeout, read).await {
                    Ok(r) => r,
                    Err(_) => return Err(Failure::Stalled),
                }
            };
            match read {
                Ok(Some(c)) => parser.push(&c),
                Ok(None) => return parser.finish().map_err(Failure::Wire),
                Err(ReadError::Reset(code)) => {
                    if let Some((up, track, _)) = &stream {
                        track.on_stream_end(up.serial, Some(code));
                    }
                    stream = None;
                    return Ok(());
                }
                Err(_) => {
                    if let Some((up, track, _)) = &stream {
                        track.on_stream_end(up.serial, Some(stream_error::SESSION_CLOSED));
                    }
                    stream = None;
                    return Ok(());
                }
            }
        }
    }
    .await;
    match result {
        Ok(()) => {
            if let Some((up, track, _)) = &stream {
                track.on_stream_end(up.serial, None);
            }
        }
        Err(Failure::Stalled) => {
            if let Some((up, track, _)) = &stream {
                track.on_stream_end(up.serial, Some(stream_error::SESSION_CLOSED));
            }
            stalled(&relay, &session, if stream.is_some() { "object" } else { "subgroup header" });
        }
        Err(Failure::Wire(WireError::TooLarge(n))) => {
            // An oversize object costs the publisher that stream, not the session.
            relay.metrics.error("object_too_large");
            tracing::info!(session = session.id, size = n, "object exceeds limit; stream stopped");
            let _ = recv.stop(stream_error::EXCESSIVE_LOAD);
            if let Some((up, track, _)) = &stream {
                track.on_stream_end(up.serial, Some(stream_error::EXCESSIVE_LOAD));
            }
        }
        Err(Failure::Wire(e)) => {
            relay.metrics.error("malformed_data_stream");
            if let Some((up, track, _)) = &stream {
                track.on_stream_end(up.serial, Some(stream_error::MALFORMED_TRACK));
            }
            session.close(session_error::PROTOCOL_VIOLATION, &format!("data stream: {e}"));
        }
    }
}

/// Why a subgroup stream's reading ended early.
enum Failure {
    Wire(WireError),
    /// A header or object begun and not finished within the stall timeout.
    Stalled,
}

impl From<WireError> for Failure {
    fn from(e: WireError) -> Self {
        Failure::Wire(e)
    }
}

/// The peer sent part of a data stream's header or of an object and then
/// nothing for the stall timeout: "took too long to send data expected on
/// an open Data Stream. This includes fields of a stream header or an object
/// header" (§3.5 DATA_STREAM_TIMEOUT), so the session closes with that code.
/// Counted as `moq_relay_errors_total{code="data_stream_timeout"}`.
pub fn stalled(relay: &Relay, session: &SessionHandle, what: &str) {
    relay.metrics.error("data_stream_timeout");
    tracing::debug!(session = session.id, what, "partial data stream unit stalled");
    session.close(session_error::DATA_STREAM_TIMEOUT, &format!("a data stream stalled half-way through its {what}"));
}

/// Reads the session's datagrams (§11.3) in a loop of its own, so a datagram
/// wakes only this task, and forwards every datagram already received per
/// wake-up.
pub async fn datagrams(relay: Arc<Relay>, session: Arc<SessionHandle>) {
    let mut route = Route::default();
    loop {
        let Ok(d) = session.wt.read_datagram().await else { return };
        datagram(&relay, &session, d, &mut route);
        loop {
            let next = std::pin::pin!(session.wt.read_datagram());
            match next.poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(Ok(d)) => datagram(&relay, &session, d, &mut route),
                Poll::Ready(Err(_)) => return,
                Poll::Pending => break,
            }
        }
    }
}

/// The last alias a session's datagrams used and its track: a party in a
/// call publishes one audio track, so the alias table is consulted only when
/// the alias or the table changes.
#[derive(Default)]
pub struct Route {
    generation: u64,
    alias: u64,
    target: Option<(Arc<crate::routing::track::Track>, u8)>,
}

/// One incoming datagram (§11.3): forwarded at once under each subscriber's
/// alias. A padding datagram (type 0x132B3E29) is discarded: "The receiver
/// MUST discard all data received in a padding datagram" (§11.5.2) — whatever
/// follows the type, zeros or not.
pub fn datagram(relay: &Relay, session: &SessionHandle, d: Bytes, route: &mut Route) {
    if crate::wire::varint::read(&d).is_some_and(|(t, _)| t == crate::wire::PADDING_DATAGRAM) {
        return;
    }
    match Datagram::parse(d) {
        Ok(d) => {
            let generation = session.alias_generation();
            if route.target.is_none() || route.alias != d.track_alias || route.generation != generation {
                *route = Route { generation, alias: d.track_alias, target: session.alias(d.track_alias) };
            }
            if let Some((track, prio)) = &route.target {
                relay.metrics.objects_in.fetch_add(1, Ordering::Relaxed);
                relay.metrics.bytes_in.fetch_add(d.raw.len() as u64, Ordering::Relaxed);
                track.on_datagram(&d, *prio);
            }
        }
        Err(e) => {
            relay.metrics.error("malformed_datagram");
            session.close(session_error::PROTOCOL_VIOLATION, &format!("datagram: {e}"));
        }
    }
}

enum Slot {
    Live(SendStream),
    /// Lost data to queue eviction: already reset; later items are dropped.
    Dead,
}

/// Drains the session's outbound queue onto data streams, in batches.
pub async fn writer(relay: Arc<Relay>, session: Arc<SessionHandle>) {
    let mut streams: HashMap<StreamKey, Slot> = HashMap::new();
    let mut batch = Vec::with_capacity(64);
    while session.outbound.drain(&mut batch).await.is_some() {
        for action in batch.drain(..) {
            match action {
                Action::Broken(key) => {
                    relay.metrics.dropped.fetch_add(1, Ordering::Relaxed);
                    if let Some(Slot::Live(mut s)) = streams.insert(key, Slot::Dead) {
                        let _ = s.reset(stream_error::TOO_FAR_BEHIND);
                    }
                }
                Action::Item(Item::Open { key, header, priority }) => {
                    if matches!(streams.get(&key), Some(Slot::Dead)) {
                        continue;
                    }
                    match session.wt.open_uni().await {
                        Ok(mut s) => {
                            // Lower publisher priority values go first (§7).
                            let _ = s.set_priority(255 - i32::from(priority));
                            if s.write_all(&header).await.is_ok() {
                                streams.insert(key, Slot::Live(s));
                            }
                        }
                        Err(_) => return,
                    }
                }
                Action::Item(Item::Data { key, bytes }) => {
                    let Some(Slot::Live(s)) = streams.get_mut(&key) else { continue };
                    relay.metrics.objects_out.fetch_add(1, Ordering::Relaxed);
                    relay.metrics.bytes_out.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    if s.write_chunk(bytes).await.is_err() {
                        streams.remove(&key);
                    }
                }
                Action::Item(Item::Fin { key }) => {
                    if let Some(Slot::Live(mut s)) = streams.remove(&key) {
                        let _ = s.finish();
                    }
                }
                Action::Item(Item::Reset { key, code }) => {
                    if let Some(Slot::Live(mut s)) = streams.remove(&key) {
                        let _ = s.reset(code);
                    }
                }
            }
        }
    }
}
