//! The publisher side of draft-ietf-moq-transport-18: PUBLISH_NAMESPACE
//! (§6.2, §10.15), answering the SUBSCRIBE a relay forwards to us (§9,
//! §10.8), direct PUBLISH (§10.10), and sending objects on SUBGROUP streams
//! and datagrams (§11), ending with PUBLISH_DONE (§10.11).

use crate::error::{Error, Result};
use crate::fetch::FetchedObject;
use crate::object::{DatagramSpec, SubgroupSpec, SubgroupWriter};
use crate::session::{IncomingRequest, Session};
use crate::stream::{unexpected, RequestStream};
use bytes::Bytes;
use moq_wire::coding::{KeyValuePairs, Location, TrackNamespace};
use moq_wire::control::Response;
use moq_wire::fetch;
use moq_wire::message::{self, Message};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// PUBLISH_DONE status codes (§10.11).
pub mod done_status {
    pub const INTERNAL_ERROR: u64 = 0x0;
    pub const TRACK_ENDED: u64 = 0x2;
    pub const SUBSCRIPTION_ENDED: u64 = 0x3;
}

/// An accepted request whose stream stays open for the request's life —
/// PUBLISH_NAMESPACE here: dropping or cancelling it withdraws the
/// namespace (§3.3.2, §6.2).
pub struct RequestHandle {
    pub request_id: u64,
    /// Parameters of the REQUEST_OK.
    pub params: KeyValuePairs,
    stream: RequestStream,
}

impl RequestHandle {
    /// Withdraws by cancelling the request stream with RESET_STREAM
    /// (§3.3.2) — how draft-18 replaces PUBLISH_NAMESPACE_DONE. Our receive
    /// half is left to the peer to close: moq-relay-ietf 0.8.0 ends the whole
    /// session when it also gets STOP_SENDING here (seen 2026-11-23).
    pub fn cancel(mut self) {
        self.stream.reset_send(moq_wire::stream_error::CANCELLED);
    }

    /// Withdraws by closing our half of the stream with FIN.
    pub fn finish(mut self) {
        self.stream.finish();
    }

    /// The request stream, e.g. to wait for the peer to close it.
    pub fn stream(&mut self) -> &mut RequestStream {
        &mut self.stream
    }
}

/// A SUBSCRIBE the relay forwarded to us as publisher (§9.5 "Publisher
/// Interactions"), awaiting SUBSCRIBE_OK or REQUEST_ERROR.
pub struct IncomingSubscribe {
    pub request: message::Subscribe,
    stream: RequestStream,
    session: Session,
}

impl IncomingSubscribe {
    pub fn namespace(&self) -> &TrackNamespace {
        &self.request.track_namespace
    }

    pub fn track_name(&self) -> String {
        self.request.track_name.to_string_lossy().into_owned()
    }

    /// Answers SUBSCRIBE_OK with `alias` (§10.8) and no Track Properties;
    /// objects for the subscription are then sent with the returned handle.
    pub async fn accept(self, alias: u64) -> Result<TrackPublisher> {
        self.accept_with(alias, KeyValuePairs::new(), Bytes::new()).await
    }

    /// SUBSCRIBE_OK with explicit parameters and raw Track Properties.
    pub async fn accept_with(mut self, alias: u64, params: KeyValuePairs, properties: Bytes) -> Result<TrackPublisher> {
        self.stream.reply(&Response::SubscribeOk { alias, params, properties }).await?;
        Ok(TrackPublisher { alias, stream: self.stream, session: self.session, opened: Arc::new(AtomicU64::new(0)) })
    }

    /// Refuses with REQUEST_ERROR (§10.6) and FIN.
    pub async fn reject(mut self, code: u64, reason: &str) -> Result<()> {
        self.stream.reply(&Response::RequestError { code, retry_interval: 0, reason: reason.into() }).await?;
        self.stream.finish();
        Ok(())
    }
}

/// A FETCH the relay forwarded to us as publisher (§10.12), e.g. because
/// it does not have the range cached.
pub struct IncomingFetch {
    pub request: message::Fetch,
    stream: RequestStream,
    session: Session,
}

/// A request a relay opened towards us as publisher: a SUBSCRIBE it forwards
/// (§9.5) or a FETCH it forwards because it keeps no cache (§9.1: "Relays MAY
/// cache Objects, but are not required to"), so an original publisher must
/// answer both.
pub enum PublisherRequest {
    Subscribe(IncomingSubscribe),
    Fetch(IncomingFetch),
}

impl IncomingFetch {
    /// The requested range of a Standalone Fetch: start, and end as "last
    /// object plus one" (object 0 meaning the whole group, §10.12.1).
    pub fn range(&self) -> Option<(Location, Location)> {
        self.request.standalone_fetch.as_ref().map(|f| (f.start_location, f.end_location))
    }

    /// The Track Namespace and Name of a Standalone Fetch (a Joining Fetch
    /// names its subscription instead, see [`Self::joining`]).
    pub fn track(&self) -> Option<(&TrackNamespace, String)> {
        self.request.standalone_fetch.as_ref().map(|f| (&f.track_namespace, f.track_name.to_string_lossy().into_owned()))
    }

    /// A Joining Fetch (§10.12.2): the Request ID of the joined
    /// subscription, Joining Start, and whether it is relative.
    pub fn joining(&self) -> Option<(u64, u64, bool)> {
        let relative = match self.request.fetch_type {
            message::FetchType::RelativeJoining => true,
            message::FetchType::AbsoluteJoining => false,
            message::FetchType::Standalone => return None,
        };
        self.request.joining_fetch.as_ref().map(|j| (j.joining_request_id, j.joining_start, relative))
    }

    /// Whether the subscriber asked for Descending group order (§10.2.8).
    pub fn descending(&self) -> bool {
        matches!(self.request.params.group_order(), Ok(Some(message::GroupOrder::Descending)))
    }

    /// Answers FETCH_OK (§10.13) and sends `objects`, which must be in
    /// ascending order, on a FETCH_HEADER stream ending with FIN (§11.4.4).
    pub async fn respond(mut self, end_location: Location, properties: Bytes, objects: &[FetchedObject]) -> Result<()> {
        let ok = Response::FetchOk { end_of_track: false, end_location, params: KeyValuePairs::new(), properties };
        self.stream.reply(&ok).await?;
        let mut out = Vec::new();
        fetch::header(self.request.id, &mut out);
        let mut w = fetch::FetchWriter::default();
        for o in objects {
            let fo = fetch::FetchObject {
                group_id: o.group_id,
                object_id: o.object_id,
                subgroup_id: o.subgroup_id,
                priority: o.publisher_priority,
                properties: &o.properties,
                payload: &o.payload,
            };
            w.object(&fo, &mut out);
        }
        let mut uni = self.session.wt().open_uni().await?;
        uni.write_all(&out).await?;
        let _ = uni.finish();
        self.stream.finish();
        Ok(())
    }

    /// Refuses with REQUEST_ERROR (§10.6) and FIN.
    pub async fn reject(mut self, code: u64, reason: &str) -> Result<()> {
        self.stream.reply(&Response::RequestError { code, retry_interval: 0, reason: reason.into() }).await?;
        self.stream.finish();
        Ok(())
    }
}

/// Sends one track's objects for one subscription: the one a forwarded
/// SUBSCRIBE established, or the one our PUBLISH did.
pub struct TrackPublisher {
    pub alias: u64,
    stream: RequestStream,
    session: Session,
    opened: Arc<AtomicU64>,
}

impl TrackPublisher {
    /// Opens a SUBGROUP stream (§11.4.2).
    pub async fn open_subgroup(&self, spec: SubgroupSpec) -> Result<SubgroupWriter> {
        self.session.open_subgroup(self.alias, spec, &self.opened).await
    }

    /// Sends a whole group as one subgroup stream (subgroup 0, priority
    /// 128): each payload is one object, IDs from 0, then FIN.
    pub async fn send_group(&self, group_id: u64, payloads: &[Bytes]) -> Result<()> {
        self.send_group_at(128, group_id, payloads).await
    }

    /// [`Self::send_group`] with this publisher priority (§7: lower is
    /// more urgent).
    pub async fn send_group_at(&self, priority: u8, group_id: u64, payloads: &[Bytes]) -> Result<()> {
        let spec = SubgroupSpec { end_of_group: true, priority: Some(priority), ..SubgroupSpec::new(group_id, 0) };
        let mut w = self.open_subgroup(spec).await?;
        for (i, p) in payloads.iter().enumerate() {
            w.write(i as u64, p).await?;
        }
        w.finish();
        Ok(())
    }

    /// Sends an OBJECT_DATAGRAM (§11.3.1).
    pub fn send_datagram(&self, spec: &DatagramSpec) -> Result<()> {
        self.session.send_datagram(self.alias, spec)
    }

    /// Data streams opened so far (PUBLISH_DONE Stream Count).
    pub fn streams_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Ends the subscription: PUBLISH_DONE with the stream count, then FIN
    /// (§10.11). All subgroup writers must have been finished before.
    pub async fn done(mut self, status: u64, reason: &str) -> Result<()> {
        let stream_count = self.streams_opened();
        self.stream.reply(&Response::PublishDone { status, stream_count, reason: reason.into() }).await?;
        self.stream.finish();
        Ok(())
    }

    /// Waits until the subscriber ends the subscription by closing or
    /// resetting the request stream (§3.3.2).
    pub async fn cancelled(&mut self, timeout: Duration) -> Result<()> {
        match self.stream.closed(timeout).await {
            Ok(()) | Err(Error::Reset(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Session {
    /// PUBLISH_NAMESPACE (§10.15); waits for REQUEST_OK (PUBLISH_NAMESPACE_OK).
    pub async fn publish_namespace(&self, namespace: &TrackNamespace) -> Result<RequestHandle> {
        let id = self.next_request_id();
        let msg =
            Message::PublishNamespace(message::PublishNamespace { id, track_namespace: namespace.clone(), params: KeyValuePairs::new() });
        let mut stream = self.open_request(id, &msg).await?;
        match stream.next_response(self.timeout(), "REQUEST_OK (PUBLISH_NAMESPACE_OK)").await? {
            Response::RequestOk(params) => Ok(RequestHandle { request_id: id, params, stream }),
            other => Err(unexpected("REQUEST_OK (PUBLISH_NAMESPACE_OK)", other)),
        }
    }

    /// Direct PUBLISH of one track with our `alias` (§10.10); waits for
    /// PUBLISH_OK (or REQUEST_OK). FORWARD defaults to 1, so objects may be
    /// sent right away.
    pub async fn publish(&self, namespace: &TrackNamespace, track: &str, alias: u64) -> Result<TrackPublisher> {
        self.publish_with(namespace, track, alias, Bytes::new()).await
    }

    /// [`Self::publish`] with raw Track Properties (Key-Value-Pairs, §2.5).
    pub async fn publish_with(&self, namespace: &TrackNamespace, track: &str, alias: u64, properties: Bytes) -> Result<TrackPublisher> {
        let track_extensions = moq_wire::coding::Decode::decode(&mut &properties[..])
            .map_err(|e| Error::Transport(format!("Track Properties do not decode: {e}")))?;
        let id = self.next_request_id();
        let msg = Message::Publish(message::Publish {
            id,
            track_namespace: namespace.clone(),
            track_name: track.into(),
            track_alias: alias,
            params: KeyValuePairs::new(),
            track_extensions,
        });
        let mut stream = self.open_request(id, &msg).await?;
        match stream.next_response(self.timeout(), "PUBLISH_OK").await? {
            Response::PublishOk(_) | Response::RequestOk(_) => {
                Ok(TrackPublisher { alias, stream, session: self.clone(), opened: Arc::new(AtomicU64::new(0)) })
            }
            other => Err(unexpected("PUBLISH_OK", other)),
        }
    }

    /// Waits for the next SUBSCRIBE the peer sends us. Other requests are
    /// refused with NOT_SUPPORTED.
    pub async fn accept_subscribe(&self, timeout: Duration) -> Result<IncomingSubscribe> {
        match self.accept(timeout, "a SUBSCRIBE forwarded by the relay", |m| matches!(m, Message::Subscribe(_))).await? {
            (Message::Subscribe(request), stream) => Ok(IncomingSubscribe { request, stream, session: self.clone() }),
            _ => unreachable!("filtered above"),
        }
    }

    /// Waits for the next SUBSCRIBE or FETCH the peer sends us, as a
    /// publisher must answer both. Other requests are refused with
    /// NOT_SUPPORTED.
    pub async fn accept_publisher_request(&self, timeout: Duration) -> Result<PublisherRequest> {
        let wanted = |m: &Message| matches!(m, Message::Subscribe(_) | Message::Fetch(_));
        match self.accept(timeout, "a SUBSCRIBE or FETCH forwarded by the relay", wanted).await? {
            (Message::Subscribe(request), stream) => {
                Ok(PublisherRequest::Subscribe(IncomingSubscribe { request, stream, session: self.clone() }))
            }
            (Message::Fetch(request), stream) => Ok(PublisherRequest::Fetch(IncomingFetch { request, stream, session: self.clone() })),
            _ => unreachable!("filtered above"),
        }
    }

    /// Waits for the next FETCH the peer sends us. Other requests are
    /// refused with NOT_SUPPORTED.
    pub async fn accept_fetch(&self, timeout: Duration) -> Result<IncomingFetch> {
        match self.accept(timeout, "a FETCH forwarded by the relay", |m| matches!(m, Message::Fetch(_))).await? {
            (Message::Fetch(request), stream) => Ok(IncomingFetch { request, stream, session: self.clone() }),
            _ => unreachable!("filtered above"),
        }
    }

    async fn accept(&self, timeout: Duration, what: &str, wanted: impl Fn(&Message) -> bool) -> Result<(Message, RequestStream)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let IncomingRequest { message, mut stream } = match self.next_request(left).await {
                Ok(r) => r,
                Err(Error::Timeout(_)) => return Err(Error::Timeout(what.into())),
                Err(e) => return Err(e),
            };
            if wanted(&message) {
                return Ok((message, stream));
            }
            tracing::debug!(request = ?message, "refusing unexpected request");
            let _ = stream.reply(&Response::RequestError { code: 0x3, retry_interval: 0, reason: "not supported".into() }).await;
            stream.finish();
        }
    }
}
