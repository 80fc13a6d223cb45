//! Request-initiating messages (draft-ietf-moq-transport-18 §10.7–§10.19) and
//! their Message Parameters (§10.2), decoded as draft-18 defines them, with
//! the session error code the draft names for each way of getting them wrong.
//!
//! moq-transport's message codecs are close but not draft-18 here, so the
//! seven request messages are decoded in this file from its field codecs:
//! - a Track Namespace has 0 to 32 fields (§2.4.1); moq-transport refuses an
//!   empty one in SUBSCRIBE, PUBLISH, FETCH, TRACK_STATUS, PUBLISH_NAMESPACE;
//! - Message Parameters have one encoding per type (§10.2: uint8, varint,
//!   Location, length-prefixed, Track Namespace) and an unknown type cannot
//!   be skipped, so it closes the session; moq-transport reads any type by
//!   the parity of its number and reads TRACK_NAMESPACE_PREFIX (0x34) wrong;
//! - each parameter may appear only in the messages its definition lists
//!   (§10.2.1), at most once unless it says otherwise (§10.2), and with the
//!   values it allows (FORWARD §10.2.12, GROUP_ORDER §10.2.8, the
//!   Subscription Filter §5.1.2).
//!
//! The messages are returned as moq-transport's [`Message`] values, so the
//! rest of the code base sees no difference.

use crate::control::{kind, Frame};
use crate::session_error::{KEY_VALUE_FORMATTING_ERROR, PROTOCOL_VIOLATION};
use moq_transport::coding::{
    Decode, Encode, KeyValuePair, KeyValuePairs, Location, TrackName, TrackNamespace, TrackNamespacePrefix, MAX_FULL_TRACK_NAME_LEN,
};
use moq_transport::message::{self, FetchType, Message, TrackExtensions};

/// Message Parameter types of draft-18 (§10.2, IANA "Message Parameters").
pub mod param {
    pub const OBJECT_DELIVERY_TIMEOUT: u64 = 0x02;
    pub const AUTHORIZATION_TOKEN: u64 = 0x03;
    pub const RENDEZVOUS_TIMEOUT: u64 = 0x04;
    pub const SUBGROUP_DELIVERY_TIMEOUT: u64 = 0x06;
    pub const EXPIRES: u64 = 0x08;
    pub const LARGEST_OBJECT: u64 = 0x09;
    pub const FILL_TIMEOUT: u64 = 0x0A;
    pub const FORWARD: u64 = 0x10;
    pub const SUBSCRIBER_PRIORITY: u64 = 0x20;
    pub const SUBSCRIPTION_FILTER: u64 = 0x21;
    pub const GROUP_ORDER: u64 = 0x22;
    pub const NEW_GROUP_REQUEST: u64 = 0x32;
    pub const TRACK_NAMESPACE_PREFIX: u64 = 0x34;
}

/// A message the session must be closed for, with the §3.5 code the draft
/// names and a reason for the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Rejected {
    pub code: u32,
    pub reason: String,
}

pub(crate) fn violation(reason: impl Into<String>) -> Rejected {
    Rejected { code: PROTOCOL_VIOLATION, reason: reason.into() }
}

/// How a parameter's value is serialized (§10.2).
#[derive(Clone, Copy)]
pub(crate) enum Encoding {
    U8,
    Varint,
    Location,
    Bytes,
    Namespace,
}

fn encoding(t: u64) -> Option<Encoding> {
    use param::*;
    Some(match t {
        FORWARD | SUBSCRIBER_PRIORITY | GROUP_ORDER => Encoding::U8,
        OBJECT_DELIVERY_TIMEOUT | RENDEZVOUS_TIMEOUT | SUBGROUP_DELIVERY_TIMEOUT | EXPIRES | FILL_TIMEOUT | NEW_GROUP_REQUEST => {
            Encoding::Varint
        }
        LARGEST_OBJECT => Encoding::Location,
        AUTHORIZATION_TOKEN | SUBSCRIPTION_FILTER => Encoding::Bytes,
        TRACK_NAMESPACE_PREFIX => Encoding::Namespace,
        _ => return None,
    })
}

/// What a REQUEST_UPDATE (§10.9) updates: the parameters it may carry depend
/// on it (§10.2.x "MAY appear in REQUEST_UPDATE (for a subscription)", …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    /// SUBSCRIBE, or a PUBLISH accepted by the subscriber (§10.9.1).
    Subscription,
    Fetch,
    /// SUBSCRIBE_NAMESPACE or SUBSCRIBE_TRACKS (§10.9.2).
    NamespaceSubscription,
    PublishNamespace,
}

/// Where parameters were received, for the scope rule of §10.2.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A request-initiating message of this type (see [`kind`]).
    Request(u64),
    Update(Updated),
    /// PUBLISH_OK (REQUEST_OK answering PUBLISH, §10.5): the subscriber's
    /// choices for a track offered with PUBLISH.
    PublishOk,
}

/// The parameters each message may carry, from each parameter's definition
/// (§10.2.2–§10.2.14). AUTHORIZATION TOKEN may appear in every request and
/// REQUEST_UPDATE (§10.2.2).
fn allowed(scope: Scope, t: u64) -> bool {
    use param::*;
    if t == AUTHORIZATION_TOKEN {
        return scope != Scope::PublishOk;
    }
    let list: &[u64] = match scope {
        Scope::Request(kind::SUBSCRIBE) => &[
            OBJECT_DELIVERY_TIMEOUT,
            RENDEZVOUS_TIMEOUT,
            SUBGROUP_DELIVERY_TIMEOUT,
            FORWARD,
            SUBSCRIBER_PRIORITY,
            SUBSCRIPTION_FILTER,
            GROUP_ORDER,
            NEW_GROUP_REQUEST,
        ],
        Scope::Request(kind::PUBLISH) => &[EXPIRES, LARGEST_OBJECT, FORWARD],
        Scope::Request(kind::FETCH) => &[FILL_TIMEOUT, SUBSCRIBER_PRIORITY, GROUP_ORDER],
        Scope::Request(kind::SUBSCRIBE_TRACKS) => &[FORWARD],
        Scope::Request(_) => &[],
        Scope::Update(Updated::Subscription) => {
            &[OBJECT_DELIVERY_TIMEOUT, SUBGROUP_DELIVERY_TIMEOUT, FORWARD, SUBSCRIBER_PRIORITY, SUBSCRIPTION_FILTER, NEW_GROUP_REQUEST]
        }
        Scope::Update(Updated::Fetch) => &[SUBSCRIBER_PRIORITY],
        Scope::Update(Updated::NamespaceSubscription) => &[TRACK_NAMESPACE_PREFIX],
        Scope::Update(Updated::PublishNamespace) => &[],
        Scope::PublishOk => &[
            OBJECT_DELIVERY_TIMEOUT,
            SUBGROUP_DELIVERY_TIMEOUT,
            EXPIRES,
            FORWARD,
            SUBSCRIBER_PRIORITY,
            SUBSCRIPTION_FILTER,
            GROUP_ORDER,
            NEW_GROUP_REQUEST,
        ],
    };
    list.contains(&t)
}

/// Every parameter REQUEST_UPDATE may carry for some request: what decoding
/// accepts before the request it updates is known.
fn allowed_in_some_update(t: u64) -> bool {
    [Updated::Subscription, Updated::Fetch, Updated::NamespaceSubscription].into_iter().any(|u| allowed(Scope::Update(u), t))
}

/// Decodes a Message Parameters block (§10.2): a count, then each parameter
/// as its type defines. Values are stored as moq-transport stores them
/// (uint8 and varint as integers, Location as its two varints re-encoded,
/// length-prefixed values as bytes) and TRACK_NAMESPACE_PREFIX as the bytes
/// of its Track Namespace.
pub fn decode_params(b: &mut &[u8]) -> Result<KeyValuePairs, Rejected> {
    let truncated = || violation("message ends inside its parameters");
    let count = u64::decode(b).map_err(|_| truncated())?;
    let mut out = Vec::new();
    let mut prev = 0u64;
    for _ in 0..count {
        let delta = u64::decode(b).map_err(|_| truncated())?;
        // §10.2: a Type beyond 2^64 - 1 is a PROTOCOL_VIOLATION.
        let t = prev.checked_add(delta).ok_or_else(|| violation("parameter type beyond 2^64-1"))?;
        prev = t;
        // §10.2: unknown parameters cannot be skipped.
        let enc = encoding(t).ok_or_else(|| violation(format!("unknown message parameter {t:#x}")))?;
        let pair = read_value(enc, t, b)?;
        out.push(pair);
    }
    Ok(KeyValuePairs(out))
}

/// Reads the value of parameter `t` as `enc` serializes it, stored as
/// moq-transport stores it (uint8 and varint as integers, Location as its
/// two varints re-encoded, length-prefixed values as bytes, a Track Namespace
/// as its bytes). Shared by both drafts' decoders (`crate::draft22::params`).
pub(crate) fn read_value(enc: Encoding, t: u64, b: &mut &[u8]) -> Result<KeyValuePair, Rejected> {
    let truncated = || violation("message ends inside its parameters");
    Ok(match enc {
        Encoding::U8 => KeyValuePair::new_int(t, u8::decode(b).map_err(|_| truncated())?.into()),
        Encoding::Varint => KeyValuePair::new_int(t, u64::decode(b).map_err(|_| truncated())?),
        Encoding::Location => {
            let l = Location::decode(b).map_err(|_| truncated())?;
            let mut v = Vec::new();
            let _ = l.encode(&mut v);
            KeyValuePair::new_bytes(t, v)
        }
        Encoding::Bytes => {
            let len = u64::decode(b).map_err(|_| truncated())?;
            // §1.4.3: at most 2^16-1 bytes, else PROTOCOL_VIOLATION.
            if len > u64::from(u16::MAX) {
                return Err(violation(format!("parameter {t:#x} longer than 2^16-1 bytes")));
            }
            let len = len as usize;
            if len > b.len() {
                return Err(truncated());
            }
            let (value, rest) = b.split_at(len);
            *b = rest;
            KeyValuePair::new_bytes(t, value.to_vec())
        }
        Encoding::Namespace => {
            // A Track Namespace (§10.2.14, §2.4.1), with no length of its own.
            let before = *b;
            namespace_fields(b)?;
            KeyValuePair::new_bytes(t, before[..before.len() - b.len()].to_vec())
        }
    })
}

/// Checks parameters against §10.2: each allowed where it was received
/// (§10.2.1), not repeated unless its definition allows it (only
/// AUTHORIZATION TOKEN does), and with a value its definition allows.
pub fn check_params(scope: Scope, params: &KeyValuePairs) -> Result<(), Rejected> {
    let mut seen = Vec::with_capacity(params.0.len());
    for p in &params.0 {
        if is_draft22_only(p.key) {
            // Read from a draft-22 peer, whose decoder checked its scope.
            continue;
        }
        if !allowed(scope, p.key) {
            return Err(violation(format!("parameter {:#x} is not allowed in this message (§10.2.1)", p.key)));
        }
        if p.key != param::AUTHORIZATION_TOKEN {
            if seen.contains(&p.key) {
                return Err(violation(format!("parameter {:#x} repeated (§10.2)", p.key)));
            }
            seen.push(p.key);
        }
        match (p.key, &p.value) {
            (param::FORWARD, moq_transport::coding::Value::IntValue(v)) if *v > 1 => {
                return Err(violation(format!("FORWARD {v} is neither 0 nor 1 (§10.2.12)")))
            }
            (param::GROUP_ORDER, moq_transport::coding::Value::IntValue(v)) if !(1..=2).contains(v) => {
                return Err(violation(format!("GROUP_ORDER {v} is neither 1 nor 2 (§10.2.8)")))
            }
            (param::SUBSCRIPTION_FILTER, moq_transport::coding::Value::BytesValue(v)) => {
                subscription_filter(v)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Parameters only a draft-22 block can hold (draft-18's decoder refuses
/// their types as unknown).
fn is_draft22_only(t: u64) -> bool {
    use crate::draft22::params::param as p22;
    matches!(t, p22::FILL_PARAMETERS | p22::INCLUDE_PROPERTIES | p22::UNMAPPED_LOCATION_FILTER)
        || (p22::SUBGROUP_FILTER..=p22::TRACK_PROPERTY_FILTER).contains(&t)
}

/// Decodes a Subscription Filter (§5.1.2) the way §5.1.2 and §1.4.3 judge
/// it: an unknown Filter Type or an End Group beyond 2^64-1 is a
/// PROTOCOL_VIOLATION, a value that does not hold exactly the fields its type
/// defines a KEY_VALUE_FORMATTING_ERROR.
pub fn subscription_filter(v: &[u8]) -> Result<message::SubscriptionFilter, Rejected> {
    let format = || Rejected { code: KEY_VALUE_FORMATTING_ERROR, reason: "malformed SUBSCRIPTION_FILTER (§1.4.3)".into() };
    let mut b = v;
    let t = u64::decode(&mut b).map_err(|_| format())?;
    if !(1..=4).contains(&t) {
        return Err(violation(format!("unknown filter type {t:#x} (§5.1.2)")));
    }
    let mut whole = v;
    let f = message::SubscriptionFilter::decode(&mut whole).map_err(|_| format())?;
    if !whole.is_empty() {
        return Err(format());
    }
    if let (Some(start), Some(delta)) = (f.start_location, f.end_group_id) {
        if start.group_id.checked_add(delta).is_none() {
            return Err(violation("AbsoluteRange End Group beyond 2^64-1 (§5.1.2)"));
        }
    }
    Ok(f)
}

/// The fields of a Track Namespace (§2.4.1): 0 to 32, none empty, at most
/// 4,096 bytes in all; anything else is a PROTOCOL_VIOLATION.
pub(crate) fn namespace_fields(b: &mut &[u8]) -> Result<TrackNamespace, Rejected> {
    TrackNamespacePrefix::decode(b)
        .map(|p| TrackNamespace { fields: p.fields })
        .map_err(|e| violation(format!("malformed Track Namespace (§2.4.1): {e}")))
}

pub(crate) fn full_name(b: &mut &[u8]) -> Result<(TrackNamespace, TrackName), Rejected> {
    let ns = namespace_fields(b)?;
    let name = TrackName::decode(b).map_err(|e| violation(format!("malformed Track Name: {e}")))?;
    if ns.namespace_byte_len() + name.as_bytes().len() > MAX_FULL_TRACK_NAME_LEN {
        return Err(violation("Full Track Name longer than 4,096 bytes (§2.4.1)"));
    }
    Ok((ns, name))
}

fn varint(b: &mut &[u8]) -> Result<u64, Rejected> {
    u64::decode(b).map_err(|_| violation("message ends inside a field"))
}

fn request_params(kind: u64, b: &mut &[u8]) -> Result<KeyValuePairs, Rejected> {
    let params = decode_params(b)?;
    check_params(Scope::Request(kind), &params)?;
    Ok(params)
}

/// Decodes and checks a request-initiating message (§3.3: the first message
/// of a request stream). Other message types go to moq-transport's codec.
///
/// A frame read under draft-22 is decoded by [`crate::draft22::decode_request`].
pub fn decode(frame: &Frame) -> Result<Message, Rejected> {
    if frame.version == crate::Version::Draft22 {
        return crate::draft22::decode_request(frame);
    }
    let b = &mut &frame.payload[..];
    let msg = match frame.kind {
        kind::SUBSCRIBE => {
            let id = varint(b)?;
            let (track_namespace, track_name) = full_name(b)?;
            Message::Subscribe(message::Subscribe { id, track_namespace, track_name, params: request_params(frame.kind, b)? })
        }
        kind::PUBLISH => {
            let id = varint(b)?;
            let (track_namespace, track_name) = full_name(b)?;
            let track_alias = varint(b)?;
            let params = request_params(frame.kind, b)?;
            let track_extensions = TrackExtensions::decode(b).map_err(|e| violation(format!("malformed Track Properties: {e}")))?;
            Message::Publish(message::Publish { id, track_namespace, track_name, track_alias, params, track_extensions })
        }
        kind::TRACK_STATUS => {
            let id = varint(b)?;
            let (track_namespace, track_name) = full_name(b)?;
            Message::TrackStatus(message::TrackStatus { id, track_namespace, track_name, params: request_params(frame.kind, b)? })
        }
        kind::PUBLISH_NAMESPACE => {
            let id = varint(b)?;
            let track_namespace = namespace_fields(b)?;
            Message::PublishNamespace(message::PublishNamespace { id, track_namespace, params: request_params(frame.kind, b)? })
        }
        kind::SUBSCRIBE_NAMESPACE | kind::SUBSCRIBE_TRACKS => {
            let id = varint(b)?;
            let track_namespace_prefix = TrackNamespacePrefix { fields: namespace_fields(b)?.fields };
            let params = request_params(frame.kind, b)?;
            if frame.kind == kind::SUBSCRIBE_NAMESPACE {
                Message::SubscribeNamespace(message::SubscribeNamespace { id, track_namespace_prefix, params })
            } else {
                Message::SubscribeTracks(message::SubscribeTracks { id, track_namespace_prefix, params })
            }
        }
        kind::FETCH => {
            let id = varint(b)?;
            let fetch_type = match varint(b)? {
                1 => FetchType::Standalone,
                2 => FetchType::RelativeJoining,
                3 => FetchType::AbsoluteJoining,
                t => return Err(violation(format!("unknown fetch type {t:#x} (§10.12)"))),
            };
            let (mut standalone_fetch, mut joining_fetch) = (None, None);
            if fetch_type == FetchType::Standalone {
                let (track_namespace, track_name) = full_name(b)?;
                let start_location = Location::decode(b).map_err(|_| violation("FETCH ends inside its Start Location"))?;
                let end_location = Location::decode(b).map_err(|_| violation("FETCH ends inside its End Location"))?;
                standalone_fetch = Some(message::StandaloneFetch { track_namespace, track_name, start_location, end_location });
            } else {
                joining_fetch = Some(message::JoiningFetch { joining_request_id: varint(b)?, joining_start: varint(b)? });
            }
            Message::Fetch(message::Fetch { id, fetch_type, standalone_fetch, joining_fetch, params: request_params(frame.kind, b)? })
        }
        _ => return frame.request_other().map_err(|e| violation(e.to_string())),
    };
    if !b.is_empty() {
        // §10: a Message Length that does not match the payload.
        return Err(violation(format!("{} bytes after the end of the message", b.len())));
    }
    Ok(msg)
}

/// Decodes the parameters of a REQUEST_UPDATE before knowing what it updates:
/// anything REQUEST_UPDATE may carry for some request is accepted here, and
/// [`check_params`] with [`Scope::Update`] judges them once that is known.
pub(crate) fn update_params(b: &mut &[u8]) -> Result<KeyValuePairs, Rejected> {
    let params = decode_params(b)?;
    if let Some(p) = params.0.iter().find(|p| !allowed_in_some_update(p.key)) {
        return Err(violation(format!("parameter {:#x} is not allowed in REQUEST_UPDATE (§10.2.1)", p.key)));
    }
    Ok(params)
}

/// Encodes SUBSCRIBE, PUBLISH, TRACK_STATUS or PUBLISH_NAMESPACE whose Track
/// Namespace has no fields; `None` for any other message, which
/// moq-transport encodes.
pub(crate) fn encode_empty_namespace(msg: &Message) -> Option<Result<bytes::Bytes, crate::WireError>> {
    let (kind, id, name, tail): (u64, u64, Option<&TrackName>, Option<u64>) = match msg {
        Message::Subscribe(m) if m.track_namespace.fields.is_empty() => (kind::SUBSCRIBE, m.id, Some(&m.track_name), None),
        Message::Publish(m) if m.track_namespace.fields.is_empty() => (kind::PUBLISH, m.id, Some(&m.track_name), Some(m.track_alias)),
        Message::TrackStatus(m) if m.track_namespace.fields.is_empty() => (kind::TRACK_STATUS, m.id, Some(&m.track_name), None),
        Message::PublishNamespace(m) if m.track_namespace.fields.is_empty() => (kind::PUBLISH_NAMESPACE, m.id, None, None),
        _ => return None,
    };
    let params = match msg {
        Message::Subscribe(m) => &m.params,
        Message::Publish(m) => &m.params,
        Message::TrackStatus(m) => &m.params,
        Message::PublishNamespace(m) => &m.params,
        _ => return None,
    };
    let mut p = Vec::new();
    let written = (|| -> Result<(), moq_transport::coding::EncodeError> {
        id.encode(&mut p)?;
        // Number of Track Namespace Fields: 0.
        0u64.encode(&mut p)?;
        if let Some(n) = name {
            n.encode(&mut p)?;
        }
        if let Some(alias) = tail {
            alias.encode(&mut p)?;
        }
        params.encode_message_params(&mut p)?;
        if let Message::Publish(m) = msg {
            m.track_extensions.encode(&mut p)?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        return Some(Err(crate::WireError::Malformed("request", e.to_string())));
    }
    if p.len() > u16::MAX as usize {
        return Some(Err(crate::WireError::Malformed("request", "longer than 2^16-1 bytes".into())));
    }
    let mut out = Vec::with_capacity(p.len() + 10);
    crate::varint::write(&mut out, kind);
    out.extend_from_slice(&(p.len() as u16).to_be_bytes());
    out.extend_from_slice(&p);
    Some(Ok(out.into()))
}

/// True when `ns` is a namespace the draft reserves and this relay knows
/// nothing under, where every request is refused with DOES_NOT_EXIST: the
/// first field exactly `.` (§3.2.1) or `.session`, whose session-level
/// tracks and namespaces (§3.2.2) this implementation defines none of.
pub fn is_reserved_unknown(first_field: Option<&[u8]>) -> bool {
    matches!(first_field, Some(b".") | Some(b".session"))
}

#[cfg(test)]
mod tests;
