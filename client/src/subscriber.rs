//! The subscriber side: SUBSCRIBE (§10.7, §10.8), SUBSCRIBE_NAMESPACE
//! (§10.18) and FETCH (§10.12, §10.13) of draft-ietf-moq-transport-18, and
//! receiving the objects of a subscription by its Track Alias (§11.1).

use crate::error::{Error, Result};
use crate::fetch::{FetchItem, Fetched};
use crate::object::Object;
use crate::session::{FetchEvent, Session};
use crate::stream::{describe, unexpected, RequestStream};
use bytes::Bytes;
use moq_wire::coding::{KeyValuePairs, Location, TrackNamespace, TrackNamespacePrefix};
use moq_wire::control::Response;
use moq_wire::message::{self, FetchType, FilterType, Message, SubscriptionFilter};
use std::time::Duration;
use tokio::sync::mpsc;

/// Builds SUBSCRIBE parameters (§10.2).
#[derive(Debug, Clone, Default)]
pub struct SubscribeParams(pub KeyValuePairs);

impl SubscribeParams {
    pub fn new() -> Self {
        Self::default()
    }

    /// SUBSCRIPTION_FILTER (0x21, §5.1.2) of type Largest Object.
    pub fn largest_object(mut self) -> Self {
        let _ = self.0.set_subscription_filter(&SubscriptionFilter::largest_object());
        self
    }

    /// SUBSCRIPTION_FILTER of type Next Group Start.
    pub fn next_group(mut self) -> Self {
        let _ = self.0.set_subscription_filter(&SubscriptionFilter {
            filter_type: FilterType::NextGroupStart,
            start_location: None,
            end_group_id: None,
        });
        self
    }

    /// SUBSCRIPTION_FILTER of type AbsoluteStart.
    pub fn absolute_start(mut self, start: Location) -> Self {
        let _ = self.0.set_subscription_filter(&SubscriptionFilter {
            filter_type: FilterType::AbsoluteStart,
            start_location: Some(start),
            end_group_id: None,
        });
        self
    }

    /// RENDEZVOUS_TIMEOUT (0x04, §10.2.6): how long a relay may hold the
    /// SUBSCRIBE waiting for a publisher.
    pub fn rendezvous(mut self, t: Duration) -> Self {
        self.0.set_rendezvous_timeout(t.as_millis() as u64);
        self
    }

    /// FORWARD (0x10, §10.2.12).
    pub fn forward(mut self, forward: bool) -> Self {
        self.0.set_forward(forward);
        self
    }
}

/// What [`Subscription::next_delivery`] yields.
#[derive(Debug)]
pub enum Delivery {
    Object(Object),
    /// PUBLISH_DONE (§10.11): the publisher ended the track.
    Done {
        status: u64,
        stream_count: u64,
        reason: String,
    },
}

/// An established subscription (§5.1): the SUBSCRIBE_OK fields and the
/// objects arriving for its Track Alias.
pub struct Subscription {
    pub request_id: u64,
    pub track_alias: u64,
    /// SUBSCRIBE_OK parameters (EXPIRES, LARGEST_OBJECT, …).
    pub params: KeyValuePairs,
    /// Raw Track Properties from SUBSCRIBE_OK.
    pub properties: Bytes,
    stream: RequestStream,
    objects: mpsc::UnboundedReceiver<Object>,
    session: Session,
}

impl Subscription {
    /// Joins the track's past to this subscription: the Objects from `start`
    /// groups back (`relative`) or from group `start`, up to the Largest
    /// Object of SUBSCRIBE_OK. Draft-18 asks with a Joining FETCH
    /// (§10.12.2); draft-22, which has none, with a REQUEST_UPDATE carrying
    /// FILL_PARAMETERS on this subscription's stream, answered by REQUEST_OK
    /// and a fetch stream under the update's Request ID (docs/DRAFT22.md §6).
    /// Draft-18's relative start `k` is draft-22's RELATIVE_START `k + 1`.
    pub async fn join(&mut self, start: u64, relative: bool) -> Result<Fetched> {
        if self.session.version() == moq_wire::Version::Draft18 {
            return self.session.joining_fetch(self.request_id, start, relative).await;
        }
        use moq_wire::draft22::{fill::Fill, filter::LocationFilter, params::param};
        let filter = if relative {
            LocationFilter::RelativeStart(start.saturating_add(1))
        } else {
            LocationFilter::AbsoluteStart(Location::new(start, 0))
        };
        let id = self.session.next_request_id();
        let mut params = KeyValuePairs::new();
        params.set_bytesvalue(param::FILL_PARAMETERS, Fill { filter: Some(filter), ..Default::default() }.encode());
        let mut events = self.session.shared().add_fetch(id);
        let result = async {
            self.stream.reply(&Response::RequestUpdate { id, params }).await?;
            let timeout = self.session.timeout();
            let ok = match self.stream.next_response(timeout, "REQUEST_OK").await? {
                Response::RequestOk(p) => p,
                other => return Err(unexpected("REQUEST_OK", other)),
            };
            let largest = ok.largest_object().ok().flatten().or(self.largest());
            let items = fetch_items(&mut events, timeout, "fill").await?;
            // No FETCH_OK: the end is the Largest Object, in draft-18's
            // "last Object plus one" form that `Fetched` reports.
            let end_location = largest.map(|l| Location::new(l.group_id, l.object_id + 1)).unwrap_or(Location::new(0, 0));
            Ok(Fetched { request_id: id, end_of_track: false, end_location, params: ok, properties: Bytes::new(), items })
        }
        .await;
        self.session.shared().remove_fetch(id);
        result
    }

    /// LARGEST_OBJECT from SUBSCRIBE_OK (§10.2.11): the Joining Location.
    pub fn largest(&self) -> Option<Location> {
        self.params.largest_object().ok().flatten()
    }

    /// The next object, in arrival order.
    pub async fn next_object(&mut self, timeout: Duration) -> Result<Object> {
        match tokio::time::timeout(timeout, self.objects.recv()).await {
            Ok(Some(o)) => Ok(o),
            Ok(None) => Err(Error::Closed("session ended".into())),
            Err(_) => Err(Error::Timeout("an object".into())),
        }
    }

    /// The next object, or the end of the subscription (PUBLISH_DONE,
    /// §10.11), whichever comes first; objects that already arrived go
    /// first. PUBLISH_DONE travels on the request stream and can overtake the
    /// last objects on their data streams, so a caller that cares about them
    /// keeps calling [`Self::next_object`] for a while after `Done`.
    pub async fn next_delivery(&mut self, timeout: Duration) -> Result<Delivery> {
        if let Ok(o) = self.objects.try_recv() {
            return Ok(Delivery::Object(o));
        }
        // Both branches are cancel-safe: the request stream keeps partial
        // frames in its own buffer.
        tokio::select! {
            biased;
            o = self.objects.recv() => o.map(Delivery::Object).ok_or_else(|| Error::Closed("session ended".into())),
            r = self.stream.next_response(timeout, "an object or PUBLISH_DONE") => match r? {
                Response::PublishDone { status, stream_count, reason } => Ok(Delivery::Done { status, stream_count, reason }),
                other => Err(unexpected("PUBLISH_DONE", other)),
            },
        }
    }

    /// Collects exactly `n` objects within `timeout` in total.
    pub async fn objects(&mut self, n: usize, timeout: Duration) -> Result<Vec<Object>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out: Vec<Object> = Vec::with_capacity(n);
        while out.len() < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_object(left).await {
                Ok(o) => out.push(o),
                Err(Error::Timeout(_)) => {
                    let arrived: Vec<String> = out.iter().map(|o| format!("{}/{}", o.group_id, o.object_id)).collect();
                    return Err(Error::Timeout(format!("object {} of {n} (arrived: {})", out.len() + 1, arrived.join(" "))));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// An object that already arrived, without waiting.
    pub fn try_next(&mut self) -> Option<Object> {
        self.objects.try_recv().ok()
    }

    /// Waits for PUBLISH_DONE (§10.11): `(status, stream count, reason)`.
    pub async fn done(&mut self, timeout: Duration) -> Result<(u64, u64, String)> {
        match self.stream.next_response(timeout, "PUBLISH_DONE").await? {
            Response::PublishDone { status, stream_count, reason } => Ok((status, stream_count, reason)),
            other => Err(unexpected("PUBLISH_DONE", other)),
        }
    }

    /// Sends REQUEST_UPDATE (§10.9) and waits for REQUEST_OK.
    pub async fn update(&mut self, params: KeyValuePairs) -> Result<KeyValuePairs> {
        let id = self.session.next_request_id();
        self.stream.reply(&Response::RequestUpdate { id, params }).await?;
        let t = self.session.timeout();
        match self.stream.next_response(t, "REQUEST_OK").await? {
            Response::RequestOk(p) => Ok(p),
            other => Err(unexpected("REQUEST_OK", other)),
        }
    }

    /// Ends the subscription by cancelling its request stream (§3.3.2, §5.1).
    pub fn unsubscribe(mut self) {
        self.stream.cancel_default();
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.session.shared().retire(self.track_alias);
    }
}

/// NAMESPACE / NAMESPACE_DONE on a SUBSCRIBE_NAMESPACE stream (§10.16, §10.17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceEvent {
    /// A namespace under the prefix is published; carries the suffix.
    Namespace(TrackNamespacePrefix),
    /// It was withdrawn.
    Done(TrackNamespacePrefix),
}

/// An accepted SUBSCRIBE_NAMESPACE (§6.1).
pub struct NamespaceSubscription {
    pub request_id: u64,
    pub prefix: TrackNamespacePrefix,
    stream: RequestStream,
}

impl NamespaceSubscription {
    pub async fn next(&mut self, timeout: Duration) -> Result<NamespaceEvent> {
        match self.stream.next_response(timeout, "NAMESPACE or NAMESPACE_DONE").await? {
            Response::Namespace(s) => Ok(NamespaceEvent::Namespace(s)),
            Response::NamespaceDone(s) => Ok(NamespaceEvent::Done(s)),
            other => Err(Error::unexpected("NAMESPACE or NAMESPACE_DONE", describe(&other))),
        }
    }

    /// Cancels the namespace subscription (§3.3.2).
    pub fn cancel(mut self) {
        self.stream.cancel_default();
    }
}

impl Session {
    /// SUBSCRIBE to `namespace`/`track` (§10.7). Returns the subscription on
    /// SUBSCRIBE_OK, [`Error::Rejected`] on REQUEST_ERROR.
    pub async fn subscribe(&self, namespace: &TrackNamespace, track: &str, params: SubscribeParams) -> Result<Subscription> {
        self.subscribe_within(namespace, track, params, self.timeout()).await
    }

    /// [`Self::subscribe`] with an explicit response timeout (e.g. to allow a
    /// RENDEZVOUS_TIMEOUT to run).
    pub async fn subscribe_within(
        &self,
        namespace: &TrackNamespace,
        track: &str,
        params: SubscribeParams,
        timeout: Duration,
    ) -> Result<Subscription> {
        let id = self.next_request_id();
        let msg =
            Message::Subscribe(message::Subscribe { id, track_namespace: namespace.clone(), track_name: track.into(), params: params.0 });
        let mut stream = self.open_request(id, &msg).await?;
        match stream.next_response(timeout, "SUBSCRIBE_OK").await? {
            Response::SubscribeOk { alias, params, properties } => {
                let objects = self.shared().register(alias);
                Ok(Subscription { request_id: id, track_alias: alias, params, properties, stream, objects, session: self.clone() })
            }
            other => {
                stream.finish();
                Err(unexpected("SUBSCRIBE_OK", other))
            }
        }
    }

    /// SUBSCRIBE_NAMESPACE for `prefix` (§10.18); waits for REQUEST_OK.
    pub async fn subscribe_namespace(&self, prefix: &TrackNamespacePrefix) -> Result<NamespaceSubscription> {
        let id = self.next_request_id();
        let msg = Message::SubscribeNamespace(message::SubscribeNamespace {
            id,
            track_namespace_prefix: prefix.clone(),
            params: KeyValuePairs::new(),
        });
        let mut stream = self.open_request(id, &msg).await?;
        match stream.next_response(self.timeout(), "REQUEST_OK (SUBSCRIBE_NAMESPACE_OK)").await? {
            Response::RequestOk(_) => Ok(NamespaceSubscription { request_id: id, prefix: prefix.clone(), stream }),
            other => Err(unexpected("REQUEST_OK (SUBSCRIBE_NAMESPACE_OK)", other)),
        }
    }

    /// Standalone FETCH (§10.12.1) of `[start, end)` where `end` is "the
    /// last object plus one", object 0 meaning the whole group `end.group_id`.
    /// Waits for FETCH_OK and the whole FETCH_HEADER stream.
    pub async fn fetch(&self, namespace: &TrackNamespace, track: &str, start: Location, end: Location) -> Result<Fetched> {
        let standalone = message::StandaloneFetch {
            track_namespace: namespace.clone(),
            track_name: track.into(),
            start_location: start,
            end_location: end,
        };
        self.send_fetch(FetchType::Standalone, Some(standalone), None).await
    }

    /// Joining FETCH (§10.12.2) for the subscription with `subscription_id`:
    /// `relative` counts `start` groups back from the Joining Location,
    /// otherwise `start` is an absolute group.
    pub async fn joining_fetch(&self, subscription_id: u64, start: u64, relative: bool) -> Result<Fetched> {
        let joining = message::JoiningFetch { joining_request_id: subscription_id, joining_start: start };
        let t = if relative { FetchType::RelativeJoining } else { FetchType::AbsoluteJoining };
        self.send_fetch(t, None, Some(joining)).await
    }

    async fn send_fetch(
        &self,
        fetch_type: FetchType,
        standalone_fetch: Option<message::StandaloneFetch>,
        joining_fetch: Option<message::JoiningFetch>,
    ) -> Result<Fetched> {
        let id = self.next_request_id();
        // Register before sending: the fetch stream may beat FETCH_OK (§10.12.3).
        let mut events = self.shared().add_fetch(id);
        let msg = Message::Fetch(message::Fetch { id, fetch_type, standalone_fetch, joining_fetch, params: KeyValuePairs::new() });
        let result = async {
            let mut stream = self.open_request(id, &msg).await?;
            let timeout = self.timeout();
            let (end_of_track, end_location, params, properties) = match stream.next_response(timeout, "FETCH_OK").await? {
                Response::FetchOk { end_of_track, end_location, params, properties } => (end_of_track, end_location, params, properties),
                other => return Err(unexpected("FETCH_OK", other)),
            };
            let items = fetch_items(&mut events, timeout, "fetch").await?;
            Ok(Fetched { request_id: id, end_of_track, end_location, params, properties, items })
        }
        .await;
        self.shared().remove_fetch(id);
        result
    }
}

/// The objects of a fetch stream (a FETCH's or a draft-22 backfill's), in
/// stream order, until it ends; `what` names the stream in a timeout.
async fn fetch_items(events: &mut mpsc::UnboundedReceiver<FetchEvent>, timeout: Duration, what: &str) -> Result<Vec<FetchItem>> {
    let mut items: Vec<FetchItem> = Vec::new();
    loop {
        match tokio::time::timeout(timeout, events.recv()).await {
            Ok(Some(FetchEvent::Item(i))) => items.push(i),
            Ok(Some(FetchEvent::End)) => return Ok(items),
            Ok(Some(FetchEvent::Failed(e))) => return Err(e),
            Ok(None) => return Err(Error::Closed("session ended".into())),
            Err(_) => return Err(Error::Timeout(format!("the end of the {what} stream ({} objects arrived)", items.len()))),
        }
    }
}
