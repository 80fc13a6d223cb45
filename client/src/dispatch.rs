//! The session's background tasks: accept unidirectional streams and
//! dispatch them on their type (§3.4: SETUP control stream, SUBGROUP_HEADER,
//! FETCH_HEADER, PADDING), accept bidi request streams the peer opens
//! (§3.3), and read OBJECT_DATAGRAMs (§11.3).

use crate::fetch::{FetchParser, FETCH_HEADER};
use crate::object::{Carrier, Object};
use crate::session::{FetchEvent, GoAway, IncomingRequest, Shared, MAX_OBJECT_SIZE};
use crate::stream::RequestStream;
use bytes::BytesMut;
use moq_wire::coding::KeyValuePairs;
use moq_wire::control::{kind, take_frame_as, Response};
use moq_wire::datagram::Datagram;
use moq_wire::subgroup::{is_subgroup_type, Event, SubgroupParser};
use moq_wire::{session_error, stream_error, varint, PADDING, SETUP};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use web_transport_quinn::RecvStream;

/// How long a new stream may take to reveal its type.
const STREAM_TYPE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the peer's SETUP options go once its control stream starts.
type SetupSink = Arc<std::sync::Mutex<Option<oneshot::Sender<KeyValuePairs>>>>;

/// Accepts uni streams until the session ends. The peer's SETUP options are
/// handed to `setup` when its control stream starts.
pub(crate) async fn accept_uni(shared: Arc<Shared>, setup: oneshot::Sender<KeyValuePairs>) {
    let setup: SetupSink = Arc::new(std::sync::Mutex::new(Some(setup)));
    while let Ok(recv) = shared.wt.accept_uni().await {
        tokio::spawn(uni(shared.clone(), recv, setup.clone()));
    }
}

async fn uni(shared: Arc<Shared>, mut recv: RecvStream, setup: SetupSink) {
    let mut buf = BytesMut::new();
    let t = tokio::time::timeout(STREAM_TYPE_TIMEOUT, async {
        loop {
            if let Some((t, _)) = varint::read(&buf) {
                return Some(t);
            }
            match recv.read_chunk(64 * 1024, true).await {
                Ok(Some(c)) => buf.extend_from_slice(&c.bytes),
                _ => return None,
            }
        }
    })
    .await;
    let t = match t {
        Ok(Some(t)) => t,
        Ok(None) => return,
        Err(_) => {
            let _ = recv.stop(stream_error::CANCELLED);
            return;
        }
    };
    tracing::trace!(stream_type = t, "uni stream");
    match t {
        SETUP => {
            let tx = setup.lock().unwrap_or_else(|e| e.into_inner()).take();
            match tx {
                Some(tx) => control(shared, recv, buf, tx).await,
                None => shared.violation(session_error::PROTOCOL_VIOLATION, "a second control stream".into()),
            }
        }
        PADDING => while let Ok(Some(_)) = recv.read_chunk(64 * 1024, true).await {},
        FETCH_HEADER => fetch_stream(shared, recv, buf).await,
        t if is_subgroup_type(t) => subgroup(shared, recv, buf).await,
        other => shared.violation(session_error::PROTOCOL_VIOLATION, format!("unknown stream type {other:#x}")),
    }
}

/// The peer's control stream: SETUP, then only GOAWAY (§3.3, §10).
async fn control(shared: Arc<Shared>, mut recv: RecvStream, mut buf: BytesMut, setup: oneshot::Sender<KeyValuePairs>) {
    let mut setup = Some(setup);
    loop {
        loop {
            let frame = match take_frame_as(&mut buf, shared.version) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return shared.violation(session_error::PROTOCOL_VIOLATION, format!("control stream: {e}")),
            };
            if let Some(tx) = setup.take() {
                if frame.kind != SETUP {
                    return shared.violation(session_error::PROTOCOL_VIOLATION, "control stream did not start with SETUP".into());
                }
                match KeyValuePairs::decode_bounded(&mut &frame.payload[..], frame.payload.len()) {
                    Ok(params) => {
                        let _ = tx.send(params);
                    }
                    Err(e) => {
                        return shared.violation(session_error::KEY_VALUE_FORMATTING_ERROR, format!("malformed SETUP options: {e}"));
                    }
                }
                continue;
            }
            if frame.kind != kind::GOAWAY {
                return shared
                    .violation(session_error::PROTOCOL_VIOLATION, format!("message {:#x} on the control stream after SETUP", frame.kind));
            }
            match frame.response() {
                Ok(Response::GoAway { uri, timeout_ms }) => {
                    tracing::info!(%uri, timeout_ms, "GOAWAY from the peer");
                    *shared.goaway.lock().unwrap_or_else(|e| e.into_inner()) = Some(GoAway { uri, timeout_ms });
                }
                Ok(_) | Err(_) => return shared.violation(session_error::PROTOCOL_VIOLATION, "malformed GOAWAY".into()),
            }
        }
        match recv.read_chunk(64 * 1024, true).await {
            Ok(Some(c)) => buf.extend_from_slice(&c.bytes),
            Ok(None) => {
                if shared.wt.close_reason().is_none() {
                    shared.violation(session_error::PROTOCOL_VIOLATION, "peer closed its control stream".into());
                }
                return;
            }
            Err(_) => return,
        }
    }
}

/// One SUBGROUP stream (§11.4.2): objects go to the subscription by alias.
async fn subgroup(shared: Arc<Shared>, mut recv: RecvStream, first: BytesMut) {
    let seq = shared.stream_seq.fetch_add(1, Ordering::Relaxed);
    let mut parser = SubgroupParser::new(MAX_OBJECT_SIZE);
    parser.push(&first);
    let mut held = shared.partial.holder();
    loop {
        loop {
            match parser.next() {
                Ok(Some(Event::Header(h))) => tracing::trace!(alias = h.track_alias, group = h.group_id, "subgroup stream"),
                Ok(Some(Event::Object(o))) => {
                    let Some(h) = parser.header() else { continue };
                    tracing::trace!(seq, alias = h.track_alias, group = h.group_id, object = o.object_id, "object");
                    shared.deliver(Object {
                        track_alias: h.track_alias,
                        group_id: h.group_id,
                        subgroup_id: parser.subgroup_id(),
                        object_id: o.object_id,
                        publisher_priority: h.publisher_priority,
                        status: o.status,
                        properties: o.properties(),
                        payload: o.payload(),
                        carrier: Carrier::Stream(seq),
                    });
                }
                Ok(None) => break,
                Err(e) => return shared.violation(session_error::PROTOCOL_VIOLATION, format!("subgroup stream: {e}")),
            }
        }
        // What the unfinished object holds counts against the session's budget.
        if !held.set(parser.buffered()) {
            tracing::debug!(seq, held = shared.partial.used(), "partly received objects past the session's budget: stream stopped");
            let _ = recv.stop(stream_error::EXCESSIVE_LOAD);
            return;
        }
        match recv.read_chunk(64 * 1024, true).await {
            Ok(Some(c)) => parser.push(&c.bytes),
            Ok(None) => {
                tracing::trace!(seq, "subgroup stream FIN");
                if let Err(e) = parser.finish() {
                    shared.violation(session_error::PROTOCOL_VIOLATION, format!("subgroup stream FIN: {e}"));
                }
                return;
            }
            // A reset subgroup is not a session error (§11.4.3).
            Err(_) => return,
        }
    }
}

/// One FETCH_HEADER stream (§11.4.4), routed to its FETCH by Request ID.
async fn fetch_stream(shared: Arc<Shared>, mut recv: RecvStream, first: BytesMut) {
    let mut parser = FetchParser::new(MAX_OBJECT_SIZE);
    parser.push(&first);
    let mut sink = None;
    loop {
        if sink.is_none() {
            match parser.header() {
                Ok(Some(id)) => match shared.fetch_sink(id) {
                    Some(tx) => sink = Some(tx),
                    None => {
                        tracing::warn!(request_id = id, "fetch stream for an unknown request");
                        let _ = recv.stop(stream_error::CANCELLED);
                        return;
                    }
                },
                Ok(None) => {}
                Err(e) => return shared.violation(session_error::PROTOCOL_VIOLATION, e.to_string()),
            }
        }
        if let Some(tx) = &sink {
            loop {
                match parser.next() {
                    Ok(Some(item)) => {
                        let _ = tx.send(FetchEvent::Item(item));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(FetchEvent::Failed(e.clone()));
                        return shared.violation(session_error::PROTOCOL_VIOLATION, e.to_string());
                    }
                }
            }
        }
        match recv.read_chunk(64 * 1024, true).await {
            Ok(Some(c)) => parser.push(&c.bytes),
            Ok(None) => {
                let ev = match parser.finish() {
                    Ok(()) => FetchEvent::End,
                    Err(e) => FetchEvent::Failed(e),
                };
                if let Some(tx) = &sink {
                    let _ = tx.send(ev);
                }
                return;
            }
            Err(e) => {
                if let Some(tx) = &sink {
                    let _ = tx.send(FetchEvent::Failed(e.into()));
                }
                return;
            }
        }
    }
}

/// Accepts request streams the peer opens (§3.3) and queues them.
pub(crate) async fn accept_bi(shared: Arc<Shared>) {
    loop {
        match shared.wt.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(request(shared.clone(), send, recv));
            }
            Err(_) => return,
        }
    }
}

async fn request(shared: Arc<Shared>, send: web_transport_quinn::SendStream, mut recv: RecvStream) {
    let mut buf = BytesMut::new();
    let frame = tokio::time::timeout(STREAM_TYPE_TIMEOUT, async {
        loop {
            match take_frame_as(&mut buf, shared.version) {
                Ok(Some(f)) => return Ok(Some(f)),
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
            match recv.read_chunk(64 * 1024, true).await {
                Ok(Some(c)) => buf.extend_from_slice(&c.bytes),
                _ => return Ok(None),
            }
        }
    })
    .await;
    let frame = match frame {
        Ok(Ok(Some(f))) => f,
        Ok(Ok(None)) | Err(_) => return,
        Ok(Err(e)) => return shared.violation(session_error::PROTOCOL_VIOLATION, format!("request stream: {e}")),
    };
    let first = kind::starts_request(frame.kind);
    if !first {
        return shared.violation(session_error::PROTOCOL_VIOLATION, format!("request stream began with message {:#x}", frame.kind));
    }
    let message = match frame.request() {
        Ok(m) => m,
        Err(e) => return shared.violation(session_error::PROTOCOL_VIOLATION, format!("malformed request: {e}")),
    };
    let id = message.sequenced_request_id().unwrap_or(u64::MAX);
    // §10.1: the server's Request IDs are odd.
    if id % 2 != 1 {
        return shared.violation(session_error::INVALID_REQUEST_ID, format!("server sent even Request ID {id}"));
    }
    shared.peer_requests.fetch_max(id + 2, std::sync::atomic::Ordering::Relaxed);
    tracing::debug!(?message, "request from the peer");
    let stream = RequestStream::new(send, recv, buf, id, shared.version);
    let _ = shared.incoming.send(IncomingRequest { message, stream });
}

/// Reads datagrams until the session ends (§11.3).
pub(crate) async fn datagrams(shared: Arc<Shared>) {
    while let Ok(d) = shared.wt.read_datagram().await {
        // Padding datagrams (§11.5.2): the receiver MUST discard them.
        if moq_wire::varint::read(&d).is_some_and(|(t, _)| t == moq_wire::PADDING_DATAGRAM) {
            continue;
        }
        match Datagram::parse(d) {
            Ok(d) => shared.deliver(Object {
                track_alias: d.track_alias,
                group_id: d.group_id,
                subgroup_id: None,
                object_id: d.object_id,
                publisher_priority: d.publisher_priority,
                status: d.status,
                properties: d.properties(),
                payload: d.payload(),
                carrier: Carrier::Datagram,
            }),
            Err(e) => return shared.violation(session_error::PROTOCOL_VIOLATION, format!("datagram: {e}")),
        }
    }
}
