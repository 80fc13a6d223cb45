//! Control message framing (draft-ietf-moq-transport-18 §10) for the control
//! streams and the bidirectional request streams.
//!
//! `Frame` splitting is sans-IO: the session shell appends received bytes to a
//! buffer and calls [`take_frame`] until it returns `None`. The 16-bit length
//! bounds every control message to 64 KiB, which bounds per-stream buffering.

use super::WireError;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use moq_transport::coding::{Decode, Encode, KeyValuePairs, Location, ReasonPhrase, TrackName, TrackNamespacePrefix};
use moq_transport::message::{self, Message, RequestErrorCode};

use super::varint;
use crate::Version;

/// Response message types on request streams (§10, table of message types).
pub mod kind {
    pub const REQUEST_UPDATE: u64 = 0x2;
    pub const SUBSCRIBE: u64 = 0x3;
    pub const SUBSCRIBE_OK: u64 = 0x4;
    pub const REQUEST_ERROR: u64 = 0x5;
    pub const PUBLISH_NAMESPACE: u64 = 0x6;
    pub const REQUEST_OK: u64 = 0x7;
    pub const NAMESPACE: u64 = 0x8;
    pub const PUBLISH_DONE: u64 = 0xB;
    pub const TRACK_STATUS: u64 = 0xD;
    pub const NAMESPACE_DONE: u64 = 0xE;
    pub const GOAWAY: u64 = 0x10;
    pub const FETCH: u64 = 0x16;
    pub const FETCH_OK: u64 = 0x18;
    pub const PUBLISH: u64 = 0x1D;
    pub const PUBLISH_OK: u64 = 0x1E;
    pub const SUBSCRIBE_NAMESPACE: u64 = 0x50;
    pub const SUBSCRIBE_TRACKS: u64 = 0x51;

    /// The seven message types that may open a request stream (§3.3).
    pub fn starts_request(k: u64) -> bool {
        matches!(k, SUBSCRIBE | PUBLISH | FETCH | TRACK_STATUS | PUBLISH_NAMESPACE | SUBSCRIBE_NAMESPACE | SUBSCRIBE_TRACKS)
    }
}

/// One framed control message: type, and the payload without type and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u64,
    pub payload: Bytes,
    /// The draft the message was read under: it decides how
    /// [`Frame::request`], [`Frame::response`] and [`Frame::goaway`] read it.
    pub version: Version,
}

/// Splits the next complete draft-18 control message off `buf`.
pub fn take_frame(buf: &mut BytesMut) -> Result<Option<Frame>, WireError> {
    take_frame_as(buf, Version::Draft18)
}

/// Splits the next complete control message off `buf`, read under
/// `version` (the framing is the same in every draft moq-wire speaks).
pub fn take_frame_as(buf: &mut BytesMut, version: Version) -> Result<Option<Frame>, WireError> {
    let Some((kind, n)) = varint::read(buf) else { return Ok(None) };
    if buf.len() < n + 2 {
        return Ok(None);
    }
    let len = u16::from_be_bytes([buf[n], buf[n + 1]]) as usize;
    if buf.len() < n + 2 + len {
        return Ok(None);
    }
    buf.advance(n + 2);
    let payload = buf.split_to(len).freeze();
    Ok(Some(Frame { kind, payload, version }))
}

fn malformed(what: &'static str) -> impl Fn(moq_transport::coding::DecodeError) -> WireError {
    move |e| WireError::Malformed(what, e.to_string())
}

impl Frame {
    /// Decodes a request-initiating message (SUBSCRIBE, PUBLISH, FETCH,
    /// TRACK_STATUS, PUBLISH_NAMESPACE, SUBSCRIBE_NAMESPACE, SUBSCRIBE_TRACKS):
    /// in draft-18 these carry their Request ID on the wire, exactly as
    /// moq-transport's `Message` codec expects.
    ///
    /// Decoded as draft-18 defines them by [`crate::request::decode`], which
    /// also says which session error code a malformed one calls for.
    pub fn request(&self) -> Result<Message, WireError> {
        crate::request::decode(self).map_err(|r| WireError::Malformed("request", r.reason))
    }

    /// moq-transport's codec, for message types [`crate::request`] does not
    /// decode itself.
    pub(crate) fn request_other(&self) -> Result<Message, WireError> {
        let mut whole = Vec::with_capacity(self.payload.len() + 10);
        varint::write(&mut whole, self.kind);
        whole.extend_from_slice(&(self.payload.len() as u16).to_be_bytes());
        whole.extend_from_slice(&self.payload);
        Message::decode(&mut &whole[..]).map_err(malformed("request"))
    }

    /// Decodes a response or follow-up message on a request stream.
    pub fn response(&self) -> Result<Response, WireError> {
        if self.version == Version::Draft22 {
            return crate::draft22::decode_response(self);
        }
        let mut b = &self.payload[..];
        let r = match self.kind {
            kind::REQUEST_OK => {
                let r = Response::RequestOk(params(&mut b)?);
                // Trailing Track Properties (§10.5) are only meaningful for TRACK_STATUS.
                b = &[];
                r
            }
            kind::REQUEST_ERROR => {
                // The Redirect of a REDIRECT error (§10.6.1) is parsed, then
                // dropped: see [`Frame::request_error`] to keep it.
                let RequestError { code, retry_interval, reason, .. } = RequestError::read(&mut b)?;
                Response::RequestError { code, retry_interval, reason }
            }
            kind::SUBSCRIBE_OK => {
                let alias = u64::decode(&mut b).map_err(malformed("SUBSCRIBE_OK"))?;
                let params = params(&mut b)?;
                let properties = Bytes::copy_from_slice(b);
                b = &[];
                Response::SubscribeOk { alias, params, properties }
            }
            kind::PUBLISH_OK => Response::PublishOk(params(&mut b)?),
            kind::PUBLISH_DONE => Response::PublishDone {
                status: u64::decode(&mut b).map_err(malformed("PUBLISH_DONE"))?,
                stream_count: u64::decode(&mut b).map_err(malformed("PUBLISH_DONE"))?,
                reason: ReasonPhrase::decode(&mut b).map_err(malformed("PUBLISH_DONE"))?.0,
            },
            kind::NAMESPACE => Response::Namespace(TrackNamespacePrefix::decode(&mut b).map_err(malformed("NAMESPACE"))?),
            kind::NAMESPACE_DONE => Response::NamespaceDone(TrackNamespacePrefix::decode(&mut b).map_err(malformed("NAMESPACE_DONE"))?),
            kind::REQUEST_UPDATE => {
                let id = u64::decode(&mut b).map_err(malformed("REQUEST_UPDATE"))?;
                // Draft-18 parameter encodings (TRACK_NAMESPACE_PREFIX is a
                // Track Namespace, §10.2.14); what it updates decides which
                // are allowed (`request::check_params`).
                let params = crate::request::update_params(&mut b).map_err(|r| WireError::Malformed("REQUEST_UPDATE", r.reason))?;
                Response::RequestUpdate { id, params }
            }
            kind::FETCH_OK => {
                let end_of_track = bool::decode(&mut b).map_err(malformed("FETCH_OK"))?;
                let end_location = Location::decode(&mut b).map_err(malformed("FETCH_OK"))?;
                let params = params(&mut b)?;
                let properties = Bytes::copy_from_slice(b);
                b = &[];
                Response::FetchOk { end_of_track, end_location, params, properties }
            }
            kind::GOAWAY => {
                // The Request ID of a control-stream GOAWAY is dropped: see
                // [`Frame::goaway`] to keep it.
                let GoAway { uri, timeout_ms, .. } = GoAway::read(&mut b)?;
                Response::GoAway { uri, timeout_ms }
            }
            other => return Err(WireError::InvalidType(other)),
        };
        if !b.is_empty() {
            return Err(trailing(b));
        }
        Ok(r)
    }

    /// Decodes a REQUEST_ERROR (§10.6.2) with the Redirect that follows
    /// error code REDIRECT, which [`Self::response`] drops.
    pub fn request_error(&self) -> Result<RequestError, WireError> {
        if self.kind != kind::REQUEST_ERROR {
            return Err(WireError::InvalidType(self.kind));
        }
        let mut b = &self.payload[..];
        let e = RequestError::read(&mut b)?;
        if !b.is_empty() {
            return Err(trailing(b));
        }
        Ok(e)
    }

    /// Decodes a GOAWAY (§10.4) with the Request ID a control-stream GOAWAY
    /// carries, which [`Self::response`] drops.
    pub fn goaway(&self) -> Result<GoAway, WireError> {
        if self.kind != kind::GOAWAY {
            return Err(WireError::InvalidType(self.kind));
        }
        if self.version == Version::Draft22 {
            return crate::draft22::decode_goaway(self);
        }
        let mut b = &self.payload[..];
        let g = GoAway::read(&mut b)?;
        if !b.is_empty() {
            return Err(trailing(b));
        }
        Ok(g)
    }
}

fn trailing(b: &[u8]) -> WireError {
    WireError::Malformed("response", format!("{} trailing bytes", b.len()))
}

fn params(b: &mut &[u8]) -> Result<KeyValuePairs, WireError> {
    KeyValuePairs::decode_message_params(b).map_err(malformed("parameters"))
}

/// Responses and follow-ups on request streams (§10).
#[derive(Debug, Clone)]
pub enum Response {
    RequestOk(KeyValuePairs),
    /// REQUEST_OK answering TRACK_STATUS: it also carries Track Properties (§10.5).
    TrackStatusOk {
        params: KeyValuePairs,
        properties: Bytes,
    },
    /// REQUEST_ERROR (§10.6.2) without the Redirect of a REDIRECT error:
    /// see [`RequestError`] for the whole message.
    RequestError {
        code: u64,
        retry_interval: u64,
        reason: String,
    },
    SubscribeOk {
        alias: u64,
        params: KeyValuePairs,
        properties: Bytes,
    },
    PublishOk(KeyValuePairs),
    PublishDone {
        status: u64,
        stream_count: u64,
        reason: String,
    },
    Namespace(TrackNamespacePrefix),
    NamespaceDone(TrackNamespacePrefix),
    RequestUpdate {
        id: u64,
        params: KeyValuePairs,
    },
    FetchOk {
        end_of_track: bool,
        end_location: Location,
        params: KeyValuePairs,
        properties: Bytes,
    },
    /// GOAWAY (§10.4): New Session URI and Timeout in milliseconds, without
    /// the Request ID of a control-stream GOAWAY: see [`GoAway`] for the
    /// whole message.
    GoAway {
        uri: String,
        timeout_ms: u64,
    },
    /// PUBLISH_STATE_NOTIFY (draft-22 only, docs/DRAFT22.md §4): a
    /// publisher's changed LARGEST_OBJECT, FORWARD or LOCATION_FILTER on a
    /// subscription's stream; never answered. Draft-18 has no such message,
    /// so it encodes to nothing there.
    PublishStateNotify(KeyValuePairs),
}

impl Response {
    pub fn error(code: message::RequestErrorCode, retry_interval: u64, reason: &str) -> Self {
        Response::RequestError { code: code as u64, retry_interval, reason: reason.into() }
    }

    /// Serializes the message as `version` has it.
    pub fn encode_as(&self, version: Version) -> Bytes {
        match version {
            Version::Draft18 => self.encode(),
            Version::Draft22 => crate::draft22::encode_response(self),
        }
    }

    /// Serializes the message, as draft-18 has it, with its type and 16-bit length.
    pub fn encode(&self) -> Bytes {
        let mut p = BytesMut::new();
        let kind = match self {
            Response::PublishStateNotify(_) => return Bytes::new(),
            Response::RequestOk(params) => {
                encode_params(params, &mut p);
                kind::REQUEST_OK
            }
            Response::TrackStatusOk { params, properties } => {
                encode_params(params, &mut p);
                p.put_slice(properties);
                kind::REQUEST_OK
            }
            Response::RequestError { code, retry_interval, reason } => {
                RequestError { code: *code, retry_interval: *retry_interval, reason: reason.clone(), redirect: None }.write(&mut p);
                kind::REQUEST_ERROR
            }
            Response::SubscribeOk { alias, params, properties } => {
                enc(alias, &mut p);
                encode_params(params, &mut p);
                p.put_slice(properties);
                kind::SUBSCRIBE_OK
            }
            Response::PublishOk(params) => {
                encode_params(params, &mut p);
                kind::PUBLISH_OK
            }
            Response::PublishDone { status, stream_count, reason } => {
                enc(status, &mut p);
                enc(stream_count, &mut p);
                enc(&ReasonPhrase(truncate(reason)), &mut p);
                kind::PUBLISH_DONE
            }
            Response::Namespace(suffix) => {
                enc(suffix, &mut p);
                kind::NAMESPACE
            }
            Response::NamespaceDone(suffix) => {
                enc(suffix, &mut p);
                kind::NAMESPACE_DONE
            }
            Response::RequestUpdate { id, params } => {
                enc(id, &mut p);
                encode_params(params, &mut p);
                kind::REQUEST_UPDATE
            }
            Response::FetchOk { end_of_track, end_location, params, properties } => {
                enc(end_of_track, &mut p);
                enc(end_location, &mut p);
                encode_params(params, &mut p);
                p.put_slice(properties);
                kind::FETCH_OK
            }
            Response::GoAway { uri, timeout_ms } => {
                GoAway { uri: uri.clone(), timeout_ms: *timeout_ms, request_id: None }.write(&mut p);
                kind::GOAWAY
            }
        };
        frame(kind, &p)
    }
}

/// Longest GOAWAY New Session URI (§10.4).
pub const MAX_GOAWAY_URI: usize = 8192;

/// The Redirect structure of a REQUEST_ERROR with error code REDIRECT
/// (§10.6.1): where and under which Full Track Name to retry the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redirect {
    /// Connect URI; empty: retry on the current session's URI.
    pub connect_uri: String,
    /// Track Namespace (0 to 32 fields) and Track Name for the retried
    /// request; both empty: the original request's. The Track Name is empty
    /// for namespace requests (SUBSCRIBE_NAMESPACE, PUBLISH_NAMESPACE).
    pub namespace: TrackNamespacePrefix,
    pub track_name: TrackName,
}

impl Redirect {
    fn write(&self, p: &mut BytesMut) {
        enc(&(self.connect_uri.len() as u64), p);
        p.put_slice(self.connect_uri.as_bytes());
        enc(&self.namespace, p);
        enc(&self.track_name, p);
    }

    fn read(b: &mut &[u8]) -> Result<Self, WireError> {
        let bad = malformed("Redirect");
        let len = u64::decode(b).map_err(&bad)?;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= b.len())
            .ok_or_else(|| WireError::Malformed("Redirect", "bad Connect URI length".into()))?;
        let connect_uri = String::from_utf8_lossy(&b[..len]).into_owned();
        *b = &b[len..];
        let namespace = TrackNamespacePrefix::decode(b).map_err(&bad)?;
        let track_name = TrackName::decode(b).map_err(&bad)?;
        let full = namespace.fields.iter().map(|f| f.value.len()).sum::<usize>() + track_name.as_bytes().len();
        if full > moq_transport::coding::MAX_FULL_TRACK_NAME_LEN {
            return Err(WireError::Malformed("Redirect", "Full Track Name longer than 4096 bytes".into()));
        }
        Ok(Self { connect_uri, namespace, track_name })
    }
}

/// REQUEST_ERROR (§10.6.2) in full: [`Response::RequestError`] plus the
/// Redirect that follows error code REDIRECT. Read by
/// [`Frame::request_error`], written by [`Self::encode`] (and by
/// [`Response::encode`], which has no Redirect to give).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub code: u64,
    pub retry_interval: u64,
    pub reason: String,
    /// Written exactly when `code` is REDIRECT, where `None` writes an empty
    /// Redirect (retry here, same name) rather than a malformed message.
    /// Always `Some` when read with code REDIRECT, `None` otherwise.
    pub redirect: Option<Redirect>,
}

impl RequestError {
    fn is_redirect(code: u64) -> bool {
        code == RequestErrorCode::Redirect as u64
    }

    /// Serializes the message with its type and 16-bit length.
    pub fn encode(&self) -> Bytes {
        let mut p = BytesMut::new();
        self.write(&mut p);
        frame(kind::REQUEST_ERROR, &p)
    }

    fn write(&self, p: &mut BytesMut) {
        enc(&self.code, p);
        enc(&self.retry_interval, p);
        enc(&ReasonPhrase(truncate(&self.reason)), p);
        if Self::is_redirect(self.code) {
            self.redirect.clone().unwrap_or_default().write(p);
        }
    }

    pub(crate) fn read(b: &mut &[u8]) -> Result<Self, WireError> {
        let code = u64::decode(b).map_err(malformed("REQUEST_ERROR"))?;
        let retry_interval = u64::decode(b).map_err(malformed("REQUEST_ERROR"))?;
        let reason = ReasonPhrase::decode(b).map_err(malformed("REQUEST_ERROR"))?.0;
        // A Redirect is present only, and always, with error code REDIRECT.
        let redirect = if Self::is_redirect(code) { Some(Redirect::read(b)?) } else { None };
        Ok(Self { code, retry_interval, reason, redirect })
    }
}

/// GOAWAY (§10.4) in full: [`Response::GoAway`] plus the Request ID that is
/// present when it is sent on the control stream (the smallest peer Request
/// ID not or maybe not processed) and absent on a request stream. Read by
/// [`Frame::goaway`], written by [`Self::encode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoAway {
    /// New Session URI; empty: reconnect to the current URI.
    pub uri: String,
    pub timeout_ms: u64,
    pub request_id: Option<u64>,
}

impl GoAway {
    /// Serializes the message as `version` has it: draft-22's GOAWAY has no
    /// Request ID.
    pub fn encode_as(&self, version: Version) -> Bytes {
        match version {
            Version::Draft18 => self.encode(),
            Version::Draft22 => GoAway { request_id: None, ..self.clone() }.encode(),
        }
    }

    /// Serializes the message (draft-18) with its type and 16-bit length.
    pub fn encode(&self) -> Bytes {
        let mut p = BytesMut::new();
        self.write(&mut p);
        frame(kind::GOAWAY, &p)
    }

    fn write(&self, p: &mut BytesMut) {
        // moq-transport's GoAway predates draft-18's Timeout and Request ID.
        debug_assert!(self.uri.len() <= MAX_GOAWAY_URI, "GOAWAY New Session URI longer than 8192 bytes");
        enc(&(self.uri.len() as u64), p);
        p.put_slice(self.uri.as_bytes());
        enc(&self.timeout_ms, p);
        if let Some(id) = self.request_id {
            enc(&id, p);
        }
    }

    pub(crate) fn read(b: &mut &[u8]) -> Result<Self, WireError> {
        let len = u64::decode(b).map_err(malformed("GOAWAY"))?;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= MAX_GOAWAY_URI && *l <= b.len())
            .ok_or_else(|| WireError::Malformed("GOAWAY", "bad New Session URI length".into()))?;
        let uri = String::from_utf8_lossy(&b[..len]).into_owned();
        *b = &b[len..];
        let timeout_ms = u64::decode(b).map_err(malformed("GOAWAY"))?;
        let request_id = if b.is_empty() { None } else { Some(u64::decode(b).map_err(malformed("GOAWAY"))?) };
        Ok(Self { uri, timeout_ms, request_id })
    }
}

/// Serializes a request-initiating message with moq-transport's codec, or,
/// for a Track Namespace of 0 fields (well-formed, §2.4.1, but refused by
/// moq-transport's encoder), with [`crate::request::encode_empty_namespace`].
pub fn encode_request(msg: &Message) -> Result<Bytes, WireError> {
    encode_request_as(msg, Version::Draft18)
}

/// Serializes a request-initiating message as `version` has it.
pub fn encode_request_as(msg: &Message, version: Version) -> Result<Bytes, WireError> {
    if version == Version::Draft22 {
        return crate::draft22::encode_request(msg);
    }
    if let Some(b) = crate::request::encode_empty_namespace(msg) {
        return b;
    }
    let mut out = BytesMut::new();
    msg.encode(&mut out).map_err(|e| WireError::Malformed("request", e.to_string()))?;
    Ok(out.freeze())
}

pub(crate) fn frame(kind: u64, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() + 10);
    varint::write(&mut out, kind);
    let len = payload.len().min(u16::MAX as usize);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&payload[..len]);
    Bytes::from(out)
}

fn enc<T: Encode>(v: &T, p: &mut BytesMut) {
    // Encoding into a growable buffer only fails for out-of-range values we
    // never construct (varints > 2^62); such a field is dropped, not panicked on.
    if let Err(e) = v.encode(p) {
        tracing::warn!(error = %e, "failed to encode control field");
    }
}

fn encode_params(params: &KeyValuePairs, p: &mut BytesMut) {
    if let Err(e) = params.encode_message_params(p) {
        tracing::warn!(error = %e, "failed to encode parameters");
        enc(&0u64, p);
    }
}

fn truncate(s: &str) -> String {
    let mut end = s.len().min(ReasonPhrase::MAX_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests;
