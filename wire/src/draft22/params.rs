//! Message Parameters as draft-22 registers them (docs/DRAFT22.md §5), read
//! into and written from the draft-18 representation the rest of the code
//! base uses (`crate::request::param`).
//!
//! The block is framed as in draft-18 (a count, then ascending Type deltas)
//! and an unknown parameter still closes the session. What changed: which
//! messages may carry which parameter — draft-22 enforces it on responses
//! too, so a draft-18 habit such as GROUP_ORDER in SUBSCRIBE_OK ends a
//! draft-22 session, and [`encode`] drops what the scope does not allow —
//! LOCATION_FILTER's encoding (see [`super::filter`]), and the parameters
//! draft-18 does not have, kept under their own numbers so a relay can
//! refuse what it does not implement (see [`super::unsupported`]).

use super::filter::LocationFilter;
use crate::control::kind;
use crate::request::{self, read_value, violation, Rejected};
use moq_transport::coding::{Decode, Encode, KeyValuePair, KeyValuePairs, Value};

/// Parameter types that draft-22 adds, or numbers differently from
/// draft-18 (the others keep their draft-18 numbers and encodings).
pub mod param {
    pub use crate::request::param::*;
    /// Draft-18's SUBSCRIPTION_FILTER, renamed and re-encoded.
    pub const LOCATION_FILTER: u64 = 0x21;
    /// A backfill requested with a SUBSCRIBE or REQUEST_UPDATE (replaces
    /// the Joining FETCH): a nested parameter block.
    pub const FILL_PARAMETERS: u64 = 0x23;
    /// Range Filters (0x25 to 0x29), which a receiver that advertised no
    /// MAX_FILTER_RANGES refuses with INVALID_FILTER.
    pub const SUBGROUP_FILTER: u64 = 0x25;
    pub const TRACK_PROPERTY_FILTER: u64 = 0x29;
    pub const INCLUDE_PROPERTIES: u64 = 0x35;
    /// Internal only (beyond any type a peer can send as the value is kept
    /// here, never written): a LOCATION_FILTER with no draft-18 equivalent,
    /// kept as its draft-22 bytes so the request can be refused.
    pub const UNMAPPED_LOCATION_FILTER: u64 = (1 << 63) | LOCATION_FILTER;
}

/// Where a parameter block was received or is being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A request-initiating message of this type.
    Request(u64),
    SubscribeOk,
    /// REQUEST_OK answering PUBLISH (draft-18's PUBLISH_OK): EXPIRES only.
    PublishOk,
    /// REQUEST_OK answering TRACK_STATUS.
    TrackStatusOk,
    /// REQUEST_OK answering anything else.
    RequestOk,
    FetchOk,
    RequestUpdate,
    PublishStateNotify,
    /// The nested block of a FILL_PARAMETERS value.
    Fill,
}

fn allowed(scope: Scope, t: u64) -> bool {
    use param::*;
    const SUBSCRIBE: &[u64] = &[
        OBJECT_DELIVERY_TIMEOUT,
        AUTHORIZATION_TOKEN,
        RENDEZVOUS_TIMEOUT,
        SUBGROUP_DELIVERY_TIMEOUT,
        FORWARD,
        SUBSCRIBER_PRIORITY,
        LOCATION_FILTER,
        GROUP_ORDER,
        FILL_PARAMETERS,
        0x25,
        0x26,
        0x27,
        0x28,
        NEW_GROUP_REQUEST,
        INCLUDE_PROPERTIES,
    ];
    let list: &[u64] = match scope {
        Scope::Request(kind::SUBSCRIBE) => SUBSCRIBE,
        Scope::Request(kind::SUBSCRIBE_TRACKS) => return t == TRACK_PROPERTY_FILTER || SUBSCRIBE.contains(&t),
        Scope::Request(kind::PUBLISH) => &[
            OBJECT_DELIVERY_TIMEOUT,
            AUTHORIZATION_TOKEN,
            SUBGROUP_DELIVERY_TIMEOUT,
            EXPIRES,
            LARGEST_OBJECT,
            FORWARD,
            SUBSCRIBER_PRIORITY,
            LOCATION_FILTER,
            GROUP_ORDER,
        ],
        Scope::Request(kind::FETCH) => &[
            AUTHORIZATION_TOKEN,
            FILL_TIMEOUT,
            SUBSCRIBER_PRIORITY,
            LOCATION_FILTER,
            GROUP_ORDER,
            0x25,
            0x26,
            0x27,
            0x28,
            INCLUDE_PROPERTIES,
        ],
        Scope::Request(kind::TRACK_STATUS) => &[AUTHORIZATION_TOKEN, INCLUDE_PROPERTIES],
        Scope::Request(_) => &[AUTHORIZATION_TOKEN],
        Scope::SubscribeOk => &[EXPIRES, LARGEST_OBJECT],
        Scope::PublishOk => &[EXPIRES],
        Scope::TrackStatusOk => &[LARGEST_OBJECT],
        Scope::RequestOk => &[EXPIRES, LARGEST_OBJECT],
        Scope::FetchOk => &[],
        Scope::RequestUpdate => &[
            OBJECT_DELIVERY_TIMEOUT,
            AUTHORIZATION_TOKEN,
            SUBGROUP_DELIVERY_TIMEOUT,
            FORWARD,
            SUBSCRIBER_PRIORITY,
            LOCATION_FILTER,
            FILL_PARAMETERS,
            0x25,
            0x26,
            0x27,
            0x28,
            TRACK_PROPERTY_FILTER,
            NEW_GROUP_REQUEST,
            TRACK_NAMESPACE_PREFIX,
        ],
        Scope::PublishStateNotify => &[LARGEST_OBJECT, FORWARD, LOCATION_FILTER],
        Scope::Fill => &[FILL_TIMEOUT, SUBSCRIBER_PRIORITY, LOCATION_FILTER, GROUP_ORDER, 0x25, 0x26, 0x27, 0x28],
    };
    list.contains(&t)
}

/// Parameters that may appear more than once: AUTHORIZATION TOKEN and the
/// Range Filters.
fn repeatable(t: u64) -> bool {
    t == param::AUTHORIZATION_TOKEN || (param::SUBGROUP_FILTER..=param::TRACK_PROPERTY_FILTER).contains(&t)
}

#[derive(Clone, Copy)]
enum Encoding {
    U8,
    Varint,
    Location,
    /// Length, then that many bytes.
    Bytes,
    /// A Track Namespace with no Length of its own.
    Namespace,
    Filter,
}

fn encoding(t: u64) -> Option<Encoding> {
    use param::*;
    Some(match t {
        FORWARD | SUBSCRIBER_PRIORITY | GROUP_ORDER | INCLUDE_PROPERTIES => Encoding::U8,
        OBJECT_DELIVERY_TIMEOUT | RENDEZVOUS_TIMEOUT | SUBGROUP_DELIVERY_TIMEOUT | EXPIRES | FILL_TIMEOUT | NEW_GROUP_REQUEST => {
            Encoding::Varint
        }
        LARGEST_OBJECT => Encoding::Location,
        AUTHORIZATION_TOKEN | FILL_PARAMETERS => Encoding::Bytes,
        0x25..=0x29 => Encoding::Bytes,
        TRACK_NAMESPACE_PREFIX => Encoding::Namespace,
        LOCATION_FILTER => Encoding::Filter,
        _ => return None,
    })
}

/// A decoded parameter block: the parameters in draft-18's representation
/// with the LOCATION_FILTER set apart, since what it maps to depends on the
/// message (a subscription's filter or a FETCH's range).
#[derive(Debug, Default)]
pub struct Decoded {
    pub params: KeyValuePairs,
    pub filter: Option<LocationFilter>,
}

/// Reads a parameter block received in `scope`: every parameter known,
/// allowed there, not repeated unless it may be, and with a value its
/// definition allows; anything else is a PROTOCOL_VIOLATION.
pub fn decode(scope: Scope, b: &mut &[u8]) -> Result<Decoded, Rejected> {
    let truncated = || violation("message ends inside its parameters");
    let count = u64::decode(b).map_err(|_| truncated())?;
    let mut out = Decoded::default();
    let mut prev = 0u64;
    let mut seen: Vec<u64> = Vec::new();
    for _ in 0..count {
        let delta = u64::decode(b).map_err(|_| truncated())?;
        let t = prev.checked_add(delta).ok_or_else(|| violation("parameter type beyond 2^64-1"))?;
        prev = t;
        let enc = encoding(t).ok_or_else(|| violation(format!("unknown message parameter {t:#x}")))?;
        if !allowed(scope, t) {
            return Err(violation(format!("parameter {t:#x} is not allowed in this message")));
        }
        if !repeatable(t) {
            if seen.contains(&t) {
                return Err(violation(format!("parameter {t:#x} repeated")));
            }
            seen.push(t);
        }
        let pair = match enc {
            Encoding::U8 => {
                let v = u8::decode(b).map_err(|_| truncated())?;
                let max = if t == param::GROUP_ORDER {
                    2
                } else if t == param::SUBSCRIBER_PRIORITY {
                    255
                } else {
                    1
                };
                if v > max || (t == param::GROUP_ORDER && v == 0) {
                    return Err(violation(format!("parameter {t:#x} has the value {v}, which its definition does not allow")));
                }
                KeyValuePair::new_int(t, v.into())
            }
            Encoding::Varint => KeyValuePair::new_int(t, u64::decode(b).map_err(|_| truncated())?),
            Encoding::Location => read_value(request::Encoding::Location, t, b)?,
            Encoding::Bytes => read_value(request::Encoding::Bytes, t, b)?,
            Encoding::Namespace => read_value(request::Encoding::Namespace, t, b)?,
            Encoding::Filter => {
                out.filter = Some(LocationFilter::decode(b)?);
                continue;
            }
        };
        out.params.0.push(pair);
    }
    Ok(out)
}

/// Writes `params` (draft-18 representation) as a draft-22 block for
/// `scope`, with `filter` as its LOCATION_FILTER. A draft-18
/// SUBSCRIPTION_FILTER among `params` is written as the equivalent
/// LOCATION_FILTER when `filter` is `None`; parameters the scope does not
/// allow (or draft-22 does not have) are left out.
pub fn encode(scope: Scope, params: &KeyValuePairs, filter: Option<LocationFilter>, out: &mut Vec<u8>) {
    let filter = filter.or_else(|| {
        params.0.iter().find(|p| p.key == param::SUBSCRIPTION_FILTER).and_then(|p| match &p.value {
            Value::BytesValue(v) => crate::request::subscription_filter(v).ok().map(|f| LocationFilter::from_subscription(&f)),
            Value::IntValue(_) => None,
        })
    });
    let mut kept: Vec<&KeyValuePair> =
        params.0.iter().filter(|p| p.key != param::LOCATION_FILTER && encoding(p.key).is_some() && allowed(scope, p.key)).collect();
    kept.sort_by_key(|p| p.key);
    let with_filter = filter.is_some() && allowed(scope, param::LOCATION_FILTER);
    let put = |v: u64, out: &mut Vec<u8>| {
        let _ = v.encode(out);
    };
    put((kept.len() + usize::from(with_filter)) as u64, out);
    let mut prev = 0u64;
    let mut filter_written = !with_filter;
    for p in kept {
        if !filter_written && param::LOCATION_FILTER < p.key {
            put(param::LOCATION_FILTER - prev, out);
            prev = param::LOCATION_FILTER;
            filter.expect("checked above").encode(out);
            filter_written = true;
        }
        put(p.key - prev, out);
        prev = p.key;
        match (encoding(p.key), &p.value) {
            (Some(Encoding::U8 | Encoding::Varint), Value::IntValue(v)) => put(*v, out),
            (Some(Encoding::Location | Encoding::Namespace), Value::BytesValue(v)) => out.extend_from_slice(v),
            (Some(Encoding::Bytes), Value::BytesValue(v)) => {
                put(v.len() as u64, out);
                out.extend_from_slice(v);
            }
            // A value stored in the wrong form: written as an empty one
            // rather than a block whose count does not match.
            (_, Value::IntValue(_)) => put(0, out),
            (_, Value::BytesValue(_)) => put(0, out),
        }
    }
    if !filter_written {
        put(param::LOCATION_FILTER - prev, out);
        filter.expect("checked above").encode(out);
    }
}
