//! draft-ietf-moq-transport-22 on the wire (ALPN / WT-Protocol `moqt-22`),
//! read into and written from the draft-18 representation every other part
//! of moq-phone works with (moq-transport's [`Message`] and
//! [`crate::control::Response`]). What differs, and where each rule comes
//! from, is in docs/DRAFT22.md; in short:
//!
//! - Message Parameters: per-message scopes enforced on responses too,
//!   LOCATION_FILTER re-encoded (§5.1 there), new parameters ([`params`]);
//! - FETCH has no Fetch Type and no Joining form: Request ID, Full Track
//!   Name and parameters, the range in a LOCATION_FILTER with an inclusive
//!   end; FETCH_OK's End Location is inclusive and it carries no parameters;
//! - PUBLISH is answered with REQUEST_OK carrying EXPIRES only (0x1E is
//!   reserved): Forward State changes travel in REQUEST_UPDATE;
//! - GOAWAY has no Request ID; PUBLISH_STATE_NOTIFY (0x22) is new;
//! - data streams and datagrams are byte-identical, so a relay forwards
//!   objects between the two drafts unchanged.
//!
//! Every message has one codec: framing is shared with draft-18
//! ([`crate::control::take_frame`]) and each [`crate::control::Frame`]
//! carries the [`crate::Version`] it was read under, so callers decode with
//! the same calls whatever was negotiated.

pub mod fill;
pub mod filter;
pub mod params;

use crate::control::{kind, Frame, GoAway, RequestError, Response};
use crate::request::{full_name, namespace_fields, violation, Rejected};
use crate::WireError;
use bytes::Bytes;
use filter::LocationFilter;
use moq_transport::coding::{Decode, Encode, KeyValuePairs, Location, ReasonPhrase, TrackNamespacePrefix};
use moq_transport::message::{self, FetchType, Message, TrackExtensions};
use params::{param, Scope};

/// Message types draft-22 adds.
pub mod kinds {
    /// PUBLISH_STATE_NOTIFY: publisher to subscriber on a subscription's
    /// request stream, never answered.
    pub const PUBLISH_STATE_NOTIFY: u64 = 0x22;
}

/// REQUEST_ERROR codes draft-22 adds.
pub mod request_error {
    /// A Range Filter the receiver cannot apply (none is accepted without
    /// MAX_FILTER_RANGES, which this implementation does not advertise).
    pub const INVALID_FILTER: u64 = 0x36;
}

fn varint(b: &mut &[u8]) -> Result<u64, Rejected> {
    u64::decode(b).map_err(|_| violation("message ends inside a field"))
}

/// Parameters of a subscription-like request (SUBSCRIBE, PUBLISH,
/// SUBSCRIBE_TRACKS, REQUEST_UPDATE) with the LOCATION_FILTER stored as the
/// draft-18 SUBSCRIPTION_FILTER that means the same, or, when there is none,
/// as [`param::UNMAPPED_LOCATION_FILTER`] for [`unsupported`] to refuse.
fn subscription_params(scope: Scope, b: &mut &[u8]) -> Result<KeyValuePairs, Rejected> {
    let d = params::decode(scope, b)?;
    let mut out = d.params;
    if let Some(p) = out.0.iter().find(|p| p.key == param::FILL_PARAMETERS) {
        if let moq_transport::coding::Value::BytesValue(v) = &p.value {
            fill::Fill::decode(v)?;
        }
    }
    if let Some(f) = d.filter {
        match f.to_subscription() {
            Ok(Some(sf)) => {
                let mut v = Vec::new();
                let _ = sf.encode(&mut v);
                out.set_bytesvalue(param::SUBSCRIPTION_FILTER, v);
            }
            Ok(None) => {}
            Err(_) => {
                let mut v = Vec::new();
                f.encode(&mut v);
                out.set_bytesvalue(param::UNMAPPED_LOCATION_FILTER, v);
            }
        }
    }
    Ok(out)
}

/// Decodes a request-initiating message (the first of a request stream).
pub fn decode_request(frame: &Frame) -> Result<Message, Rejected> {
    let b = &mut &frame.payload[..];
    let scope = Scope::Request(frame.kind);
    let msg = match frame.kind {
        kind::SUBSCRIBE => {
            let id = varint(b)?;
            let (track_namespace, track_name) = full_name(b)?;
            Message::Subscribe(message::Subscribe { id, track_namespace, track_name, params: subscription_params(scope, b)? })
        }
        kind::PUBLISH => {
            let id = varint(b)?;
            let (track_namespace, track_name) = full_name(b)?;
            let track_alias = varint(b)?;
            let params = subscription_params(scope, b)?;
            let track_extensions = TrackExtensions::decode(b).map_err(|e| violation(format!("malformed Track Properties: {e}")))?;
            Message::Publish(message::Publish { id, track_namespace, track_name, track_alias, params, track_extensions })
        }
        kind::TRACK_STATUS => {
            let id = varint(b)?;
            let (track_namespace, track_name) = full_name(b)?;
            Message::TrackStatus(message::TrackStatus { id, track_namespace, track_name, params: params::decode(scope, b)?.params })
        }
        kind::PUBLISH_NAMESPACE => {
            let id = varint(b)?;
            let track_namespace = namespace_fields(b)?;
            Message::PublishNamespace(message::PublishNamespace { id, track_namespace, params: params::decode(scope, b)?.params })
        }
        kind::SUBSCRIBE_NAMESPACE => {
            let id = varint(b)?;
            let track_namespace_prefix = TrackNamespacePrefix { fields: namespace_fields(b)?.fields };
            let params = params::decode(scope, b)?.params;
            Message::SubscribeNamespace(message::SubscribeNamespace { id, track_namespace_prefix, params })
        }
        kind::SUBSCRIBE_TRACKS => {
            let id = varint(b)?;
            let track_namespace_prefix = TrackNamespacePrefix { fields: namespace_fields(b)?.fields };
            let params = subscription_params(scope, b)?;
            Message::SubscribeTracks(message::SubscribeTracks { id, track_namespace_prefix, params })
        }
        kind::FETCH => {
            // No Fetch Type: a FETCH is always for a Full Track Name, its
            // range a LOCATION_FILTER (none: {0,0} to the Largest Object).
            let id = varint(b)?;
            let (track_namespace, track_name) = full_name(b)?;
            let d = params::decode(scope, b)?;
            let mut params = d.params;
            let filter = d.filter.unwrap_or(LocationFilter::None);
            let (start_location, end_location) = match filter.to_fetch_range() {
                Ok(r) => r,
                Err(_) => {
                    let mut v = Vec::new();
                    filter.encode(&mut v);
                    params.set_bytesvalue(param::UNMAPPED_LOCATION_FILTER, v);
                    (Location::new(0, 0), Location::new(0, 0))
                }
            };
            let standalone_fetch = Some(message::StandaloneFetch { track_namespace, track_name, start_location, end_location });
            Message::Fetch(message::Fetch { id, fetch_type: FetchType::Standalone, standalone_fetch, joining_fetch: None, params })
        }
        k => return Err(violation(format!("message type {k:#x} does not start a request"))),
    };
    if !b.is_empty() {
        return Err(violation(format!("{} bytes after the end of the message", b.len())));
    }
    Ok(msg)
}

/// Why a request decoded from draft-22 cannot be served by an
/// implementation whose routing speaks draft-18's filters: a REQUEST_ERROR
/// code and reason, or `None`.
pub fn unsupported(msg: &Message) -> Option<(u64, String)> {
    let params = match msg {
        Message::Subscribe(m) => &m.params,
        Message::Publish(m) => &m.params,
        Message::Fetch(m) => &m.params,
        Message::SubscribeTracks(m) => &m.params,
        Message::TrackStatus(m) => &m.params,
        _ => return None,
    };
    unsupported_params(params)
}

/// [`unsupported`] for a parameter block (a REQUEST_UPDATE's too).
pub fn unsupported_params(params: &KeyValuePairs) -> Option<(u64, String)> {
    let not_supported = message::RequestErrorCode::NotSupported as u64;
    for p in &params.0 {
        match p.key {
            param::UNMAPPED_LOCATION_FILTER => {
                let mut b = match &p.value {
                    moq_transport::coding::Value::BytesValue(v) => &v[..],
                    _ => &[][..],
                };
                let why = LocationFilter::decode(&mut b)
                    .ok()
                    .and_then(|f| f.to_subscription().err().or_else(|| f.to_fetch_range().err()))
                    .unwrap_or_default();
                return Some((not_supported, format!("LOCATION_FILTER: {why}")));
            }
            param::FILL_PARAMETERS => match fill::Fill::of(params) {
                Some(f) if f.range_filters => {
                    return Some((request_error::INVALID_FILTER, "Range Filters are not accepted (MAX_FILTER_RANGES 0)".into()))
                }
                Some(f) if f.group_order == Some(2) => {
                    return Some((not_supported, "a backfill in descending group order is not supported".into()))
                }
                _ => {}
            },
            param::SUBGROUP_FILTER..=param::TRACK_PROPERTY_FILTER => {
                // MAX_FILTER_RANGES was not advertised: its default is 0.
                return Some((request_error::INVALID_FILTER, "Range Filters are not accepted (MAX_FILTER_RANGES 0)".into()));
            }
            _ => {}
        }
    }
    None
}

/// Encodes a request-initiating message as draft-22 has it. A Joining
/// FETCH has no draft-22 form (a SUBSCRIBE's FILL_PARAMETERS replaces it).
pub fn encode_request(msg: &Message) -> Result<Bytes, WireError> {
    let mut p = Vec::new();
    let ns = |p: &mut Vec<u8>, fields: &moq_transport::coding::TrackNamespace| {
        let _ = TrackNamespacePrefix { fields: fields.fields.clone() }.encode(p);
    };
    let k = match msg {
        Message::Subscribe(m) => {
            enc(&m.id, &mut p);
            ns(&mut p, &m.track_namespace);
            enc(&m.track_name, &mut p);
            params::encode(Scope::Request(kind::SUBSCRIBE), &m.params, None, &mut p);
            kind::SUBSCRIBE
        }
        Message::Publish(m) => {
            enc(&m.id, &mut p);
            ns(&mut p, &m.track_namespace);
            enc(&m.track_name, &mut p);
            enc(&m.track_alias, &mut p);
            params::encode(Scope::Request(kind::PUBLISH), &m.params, None, &mut p);
            enc(&m.track_extensions, &mut p);
            kind::PUBLISH
        }
        Message::TrackStatus(m) => {
            enc(&m.id, &mut p);
            ns(&mut p, &m.track_namespace);
            enc(&m.track_name, &mut p);
            params::encode(Scope::Request(kind::TRACK_STATUS), &m.params, None, &mut p);
            kind::TRACK_STATUS
        }
        Message::PublishNamespace(m) => {
            enc(&m.id, &mut p);
            ns(&mut p, &m.track_namespace);
            params::encode(Scope::Request(kind::PUBLISH_NAMESPACE), &m.params, None, &mut p);
            kind::PUBLISH_NAMESPACE
        }
        Message::SubscribeNamespace(m) => {
            enc(&m.id, &mut p);
            enc(&m.track_namespace_prefix, &mut p);
            params::encode(Scope::Request(kind::SUBSCRIBE_NAMESPACE), &m.params, None, &mut p);
            kind::SUBSCRIBE_NAMESPACE
        }
        Message::SubscribeTracks(m) => {
            enc(&m.id, &mut p);
            enc(&m.track_namespace_prefix, &mut p);
            params::encode(Scope::Request(kind::SUBSCRIBE_TRACKS), &m.params, None, &mut p);
            kind::SUBSCRIBE_TRACKS
        }
        Message::Fetch(m) => {
            let Some(sf) = m.standalone_fetch.as_ref().filter(|_| m.fetch_type == FetchType::Standalone) else {
                return Err(WireError::Malformed("FETCH", "draft-22 has no Joining FETCH (FILL_PARAMETERS replaces it)".into()));
            };
            enc(&m.id, &mut p);
            ns(&mut p, &sf.track_namespace);
            enc(&sf.track_name, &mut p);
            let range = LocationFilter::from_fetch_range(sf.start_location, sf.end_location);
            params::encode(Scope::Request(kind::FETCH), &m.params, Some(range), &mut p);
            kind::FETCH
        }
        other => return Err(WireError::Malformed("request", format!("{} is not a draft-22 request", other.name()))),
    };
    if p.len() > u16::MAX as usize {
        return Err(WireError::Malformed("request", "longer than 2^16-1 bytes".into()));
    }
    Ok(crate::control::frame(k, &p))
}

fn rejected(what: &'static str) -> impl Fn(Rejected) -> WireError {
    move |r| WireError::Malformed(what, r.reason)
}

/// Decodes a response or follow-up message on a request stream.
pub fn decode_response(frame: &Frame) -> Result<Response, WireError> {
    let bad = |what: &'static str| move |e: moq_transport::coding::DecodeError| WireError::Malformed(what, e.to_string());
    let mut b = &frame.payload[..];
    let r = match frame.kind {
        kind::REQUEST_OK => {
            // Which request it answers decides the scope; the union is
            // accepted here. Track Properties only follow TRACK_STATUS's.
            let params = params::decode(Scope::RequestOk, &mut b).map_err(rejected("REQUEST_OK"))?.params;
            b = &[];
            Response::RequestOk(params)
        }
        kind::REQUEST_ERROR => {
            let RequestError { code, retry_interval, reason, .. } = RequestError::read(&mut b)?;
            Response::RequestError { code, retry_interval, reason }
        }
        kind::SUBSCRIBE_OK => {
            let alias = u64::decode(&mut b).map_err(bad("SUBSCRIBE_OK"))?;
            let params = params::decode(Scope::SubscribeOk, &mut b).map_err(rejected("SUBSCRIBE_OK"))?.params;
            let properties = Bytes::copy_from_slice(b);
            b = &[];
            Response::SubscribeOk { alias, params, properties }
        }
        kind::PUBLISH_DONE => Response::PublishDone {
            status: u64::decode(&mut b).map_err(bad("PUBLISH_DONE"))?,
            stream_count: u64::decode(&mut b).map_err(bad("PUBLISH_DONE"))?,
            reason: ReasonPhrase::decode(&mut b).map_err(bad("PUBLISH_DONE"))?.0,
        },
        kind::NAMESPACE => Response::Namespace(TrackNamespacePrefix::decode(&mut b).map_err(bad("NAMESPACE"))?),
        kind::NAMESPACE_DONE => Response::NamespaceDone(TrackNamespacePrefix::decode(&mut b).map_err(bad("NAMESPACE_DONE"))?),
        kind::REQUEST_UPDATE => {
            let id = u64::decode(&mut b).map_err(bad("REQUEST_UPDATE"))?;
            let params = subscription_params(Scope::RequestUpdate, &mut b).map_err(rejected("REQUEST_UPDATE"))?;
            Response::RequestUpdate { id, params }
        }
        kind::FETCH_OK => {
            let end_of_track = bool::decode(&mut b).map_err(bad("FETCH_OK"))?;
            let last = Location::decode(&mut b).map_err(bad("FETCH_OK"))?;
            let params = params::decode(Scope::FetchOk, &mut b).map_err(rejected("FETCH_OK"))?.params;
            let properties = Bytes::copy_from_slice(b);
            b = &[];
            Response::FetchOk { end_of_track, end_location: filter::fetch_end_from_inclusive(last), params, properties }
        }
        kind::GOAWAY => {
            let GoAway { uri, timeout_ms, .. } = decode_goaway(frame)?;
            b = &[];
            Response::GoAway { uri, timeout_ms }
        }
        kinds::PUBLISH_STATE_NOTIFY => {
            let d = params::decode(Scope::PublishStateNotify, &mut b).map_err(rejected("PUBLISH_STATE_NOTIFY"))?;
            Response::PublishStateNotify(d.params)
        }
        other => return Err(WireError::InvalidType(other)),
    };
    if !b.is_empty() {
        return Err(WireError::Malformed("response", format!("{} trailing bytes", b.len())));
    }
    Ok(r)
}

/// Decodes a GOAWAY: New Session URI and Timeout, never a Request ID.
pub fn decode_goaway(frame: &Frame) -> Result<GoAway, WireError> {
    let mut b = &frame.payload[..];
    let g = GoAway::read(&mut b)?;
    if g.request_id.is_some() {
        return Err(WireError::Malformed("GOAWAY", "draft-22's GOAWAY has no Request ID".into()));
    }
    Ok(g)
}

/// Encodes a response as draft-22 has it.
pub fn encode_response(r: &Response) -> Bytes {
    let mut p = Vec::new();
    let k = match r {
        Response::RequestOk(params) => {
            params::encode(Scope::RequestOk, params, None, &mut p);
            kind::REQUEST_OK
        }
        Response::TrackStatusOk { params, properties } => {
            params::encode(Scope::TrackStatusOk, params, None, &mut p);
            p.extend_from_slice(properties);
            kind::REQUEST_OK
        }
        Response::PublishOk(params) => {
            // EXPIRES only: the subscriber's Forward State and other
            // choices go in a REQUEST_UPDATE on the PUBLISH's stream.
            params::encode(Scope::PublishOk, params, None, &mut p);
            kind::REQUEST_OK
        }
        Response::SubscribeOk { alias, params, properties } => {
            enc(alias, &mut p);
            params::encode(Scope::SubscribeOk, params, None, &mut p);
            p.extend_from_slice(properties);
            kind::SUBSCRIBE_OK
        }
        Response::RequestUpdate { id, params } => {
            enc(id, &mut p);
            params::encode(Scope::RequestUpdate, params, None, &mut p);
            kind::REQUEST_UPDATE
        }
        Response::FetchOk { end_of_track, end_location, properties, .. } => {
            enc(end_of_track, &mut p);
            enc(&filter::fetch_end_to_inclusive(*end_location), &mut p);
            params::encode(Scope::FetchOk, &KeyValuePairs::new(), None, &mut p);
            p.extend_from_slice(properties);
            kind::FETCH_OK
        }
        Response::GoAway { uri, timeout_ms } => {
            return GoAway { uri: uri.clone(), timeout_ms: *timeout_ms, request_id: None }.encode();
        }
        Response::PublishStateNotify(params) => {
            params::encode(Scope::PublishStateNotify, params, None, &mut p);
            kinds::PUBLISH_STATE_NOTIFY
        }
        // The same bytes in both drafts.
        Response::RequestError { .. } | Response::PublishDone { .. } | Response::Namespace(_) | Response::NamespaceDone(_) => {
            return r.encode();
        }
    };
    crate::control::frame(k, &p)
}

fn enc<T: Encode>(v: &T, p: &mut Vec<u8>) {
    // Only out-of-range values fail, which are never constructed.
    let _ = v.encode(p);
}

#[cfg(test)]
mod tests;
