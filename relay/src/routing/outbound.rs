//! Per-session outbound data queue: the only buffer between publishers and a
//! subscriber's QUIC streams.
//!
//! Fan-out pushes items here without awaiting, so a slow or stuck subscriber
//! never delays the publisher or the other subscribers. The queue is bounded in
//! bytes; on overflow the oldest items are evicted and every subgroup stream
//! they belonged to is marked broken, because a relay must not forward a later
//! object on a subgroup stream after skipping one (draft-ietf-moq-transport-18
//! §11.4.3): the writer resets those streams instead. One writer task per
//! session drains the queue in batches — no task or allocation per object
//! beyond the shared `Bytes` handles.

use crate::routing::signal::Signal;
use bytes::Bytes;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Identifies one downstream subgroup stream: (subscription, upstream stream).
pub type StreamKey = (u64, u64);

#[derive(Debug, Clone)]
pub enum Item {
    /// Open a new uni stream and write this header.
    Open { key: StreamKey, header: Bytes, priority: u8 },
    /// Bytes of one or more objects on an open stream.
    Data { key: StreamKey, bytes: Bytes },
    /// FIN the stream.
    Fin { key: StreamKey },
    /// Reset the stream with this code.
    Reset { key: StreamKey, code: u32 },
}

impl Item {
    pub fn key(&self) -> StreamKey {
        match self {
            Item::Open { key, .. } | Item::Data { key, .. } | Item::Fin { key } | Item::Reset { key, .. } => *key,
        }
    }
    fn size(&self) -> usize {
        match self {
            Item::Open { header, .. } => header.len() + 48,
            Item::Data { bytes, .. } => bytes.len() + 48,
            _ => 48,
        }
    }
}

#[derive(Default)]
struct State {
    items: VecDeque<Item>,
    bytes: usize,
    broken: HashSet<StreamKey>,
    closed: bool,
}

pub struct Outbound {
    state: Mutex<State>,
    /// Wakes the session's writer.
    notify: Signal,
    limit: usize,
    /// Objects evicted, shared with the relay's metrics.
    dropped_items: Arc<AtomicU64>,
}

/// What the writer should do with a drained item.
pub enum Action {
    Item(Item),
    /// The stream lost data to eviction: reset it (once) and skip its items.
    Broken(StreamKey),
}

impl Outbound {
    pub fn new(limit_bytes: usize, dropped_items: Arc<AtomicU64>) -> Self {
        Self { state: Mutex::new(State::default()), notify: Signal::new(), limit: limit_bytes, dropped_items }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an item; never blocks. Returns false once the session is closed.
    pub fn push(&self, item: Item) -> bool {
        let mut s = self.lock();
        if s.closed {
            return false;
        }
        s.bytes += item.size();
        s.items.push_back(item);
        if s.bytes > self.limit {
            // Evict down to 3/4 of the limit so overflow is handled in batches.
            let target = self.limit / 4 * 3;
            let mut dropped = 0;
            while s.bytes > target {
                let Some(old) = s.items.pop_front() else { break };
                s.bytes -= old.size();
                let key = old.key();
                match old {
                    // Finishing a stream we already broke still needs a reset downstream.
                    Item::Fin { .. } | Item::Reset { .. } => {}
                    _ => dropped += 1,
                }
                s.broken.insert(key);
            }
            self.dropped_items.fetch_add(dropped, Ordering::Relaxed);
        }
        drop(s);
        self.notify.notify();
        true
    }

    /// Bytes currently queued.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Stops accepting items and wakes the writer so it can exit.
    pub fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        s.items.clear();
        s.bytes = 0;
        drop(s);
        self.notify.notify();
    }

    /// Takes every queued item (batching), translating evicted streams into
    /// [`Action::Broken`]. `None` once closed; `Some(false)` when empty.
    pub fn try_drain(&self, out: &mut Vec<Action>) -> Option<bool> {
        let mut s = self.lock();
        if s.closed {
            return None;
        }
        if s.items.is_empty() && s.broken.is_empty() {
            return Some(false);
        }
        let broken: Vec<StreamKey> = s.broken.drain().collect();
        out.extend(broken.into_iter().map(Action::Broken));
        s.bytes = 0;
        out.extend(s.items.drain(..).map(Action::Item));
        Some(true)
    }

    /// Waits for items and takes all of them; `None` once closed.
    pub async fn drain(&self, out: &mut Vec<Action>) -> Option<()> {
        loop {
            let seen = self.notify.generation();
            if self.try_drain(out)? {
                return Some(());
            }
            self.notify.changed_since(seen).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(key: StreamKey, n: usize) -> Item {
        Item::Data { key, bytes: Bytes::from(vec![0; n]) }
    }

    #[test]
    fn overflow_evicts_oldest_and_marks_streams_broken() {
        let q = Outbound::new(1_000, Default::default());
        for i in 0..20 {
            q.push(data((1, i), 100));
        }
        assert!(q.queued_bytes() <= 1_000);
        let mut out = Vec::new();
        assert_eq!(q.try_drain(&mut out), Some(true));
        let broken: Vec<_> = out.iter().filter_map(|a| if let Action::Broken(k) = a { Some(k.1) } else { None }).collect();
        assert!(broken.contains(&0), "oldest stream not broken: {broken:?}");
        assert!(!broken.contains(&19), "newest stream must survive");
        assert!(q.dropped_items.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn closed_queue_rejects_and_ends_drain() {
        let q = Outbound::new(1_000, Default::default());
        q.close();
        assert!(!q.push(data((0, 0), 1)));
        let mut out = Vec::new();
        assert!(q.try_drain(&mut out).is_none());
    }
}
