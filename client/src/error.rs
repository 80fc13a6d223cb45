//! Errors of the client library, shaped so a conformance test can report
//! what it expected and what it received.

use std::fmt;

/// A REQUEST_ERROR received on a request stream
/// (draft-ietf-moq-transport-18 §10.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub code: u64,
    /// Minimum retry delay in milliseconds plus one; 0 means "do not retry".
    pub retry_interval: u64,
    pub reason: String,
}

impl RequestError {
    /// The IANA name of the error code (§15 "REQUEST_ERROR Codes").
    pub fn code_name(&self) -> &'static str {
        request_error_name(self.code)
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "REQUEST_ERROR {} ({:#x})", self.code_name(), self.code)?;
        if !self.reason.is_empty() {
            write!(f, ": {}", self.reason)?;
        }
        Ok(())
    }
}

/// Names of REQUEST_ERROR codes (§15, "REQUEST_ERROR Codes" registry).
pub fn request_error_name(code: u64) -> &'static str {
    match code {
        0x0 => "INTERNAL_ERROR",
        0x1 => "UNAUTHORIZED",
        0x2 => "TIMEOUT",
        0x3 => "NOT_SUPPORTED",
        0x4 => "MALFORMED_AUTH_TOKEN",
        0x5 => "EXPIRED_AUTH_TOKEN",
        0x6 => "GOING_AWAY",
        0x9 => "EXCESSIVE_LOAD",
        0x10 => "DOES_NOT_EXIST",
        0x11 => "INVALID_RANGE",
        0x12 => "MALFORMED_TRACK",
        0x19 => "DUPLICATE_SUBSCRIPTION",
        0x20 => "UNINTERESTED",
        0x30 => "PREFIX_OVERLAP",
        0x31 => "NAMESPACE_TOO_LARGE",
        0x32 => "INVALID_JOINING_REQUEST_ID",
        0x33 => "UNSUPPORTED_EXTENSION",
        0x34 => "REDIRECT",
        _ => "UNKNOWN",
    }
}

/// Names of session termination codes (§15, "Session Termination Error Codes").
pub fn session_error_name(code: u64) -> &'static str {
    match code {
        0x0 => "NO_ERROR",
        0x1 => "INTERNAL_ERROR",
        0x2 => "UNAUTHORIZED",
        0x3 => "PROTOCOL_VIOLATION",
        0x4 => "INVALID_REQUEST_ID",
        0x5 => "DUPLICATE_TRACK_ALIAS",
        0x6 => "KEY_VALUE_FORMATTING_ERROR",
        0x8 => "INVALID_PATH",
        0x9 => "MALFORMED_PATH",
        0x10 => "GOAWAY_TIMEOUT",
        0x11 => "CONTROL_MESSAGE_TIMEOUT",
        0x12 => "DATA_STREAM_TIMEOUT",
        0x19 => "INVALID_AUTHORITY",
        0x1A => "MALFORMED_AUTHORITY",
        _ => "UNKNOWN",
    }
}

/// Everything that can go wrong talking to a relay.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The QUIC / WebTransport handshake failed: the relay is unreachable,
    /// refused the ALPN, or its certificate was not trusted.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The peer answered a request with REQUEST_ERROR.
    #[error("{0}")]
    Rejected(RequestError),
    /// Nothing arrived within the allotted time; names what was awaited.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// A message of the wrong type, a malformed message or stream.
    #[error("unexpected {received} (expected {expected})")]
    Unexpected { expected: String, received: String },
    /// The peer broke the wire format.
    #[error("protocol violation by the peer: {0}")]
    Protocol(String),
    /// The peer reset (or stopped) a stream we were using.
    #[error("stream reset by the peer (code {0:#x})")]
    Reset(u32),
    /// The peer ended a stream (FIN) where more was expected.
    #[error("stream closed by the peer")]
    StreamClosed,
    /// The session is gone.
    #[error("session closed: {0}")]
    Closed(String),
    /// The peer closed the session with a session error code
    /// (draft-ietf-moq-transport-18 §3.5), e.g. UNAUTHORIZED or
    /// EXPIRED_AUTH_TOKEN for a token it does not take.
    #[error("session closed by the peer (code {code:#x}): {reason}")]
    ClosedWith { code: u32, reason: String },
    /// Local or transport-level failure.
    #[error("transport: {0}")]
    Transport(String),
}

impl Error {
    /// The relay closed the session over our credentials (§3.5: UNAUTHORIZED,
    /// MALFORMED_AUTH_TOKEN, UNKNOWN_AUTH_TOKEN_ALIAS, EXPIRED_AUTH_TOKEN):
    /// trying again with the same token cannot succeed.
    pub fn is_auth_refusal(&self) -> bool {
        use moq_wire::session_error as e;
        matches!(
            self,
            Error::ClosedWith { code, .. }
                if [e::UNAUTHORIZED, e::MALFORMED_AUTH_TOKEN, e::UNKNOWN_AUTH_TOKEN_ALIAS, e::EXPIRED_AUTH_TOKEN].contains(code)
        )
    }

    /// The session error code and reason in `e`, when the peer closed the
    /// session with one (raw QUIC: the CONNECTION_CLOSE's application code;
    /// WebTransport: the CLOSE_WEBTRANSPORT_SESSION code).
    pub(crate) fn close_code(e: &web_transport_quinn::SessionError) -> Option<(u32, String)> {
        use web_transport_quinn::{SessionError, WebTransportError};
        match e {
            SessionError::ConnectionError(quinn::ConnectionError::ApplicationClosed(c)) => {
                u32::try_from(c.error_code.into_inner()).ok().map(|code| (code, String::from_utf8_lossy(&c.reason).into_owned()))
            }
            SessionError::WebTransportError(WebTransportError::Closed(code, reason)) => Some((*code, reason.clone())),
            _ => None,
        }
    }

    pub fn unexpected(expected: impl Into<String>, received: impl Into<String>) -> Self {
        Error::Unexpected { expected: expected.into(), received: received.into() }
    }

    /// A short description of what was received, for TAP `received:`.
    pub fn received(&self) -> String {
        match self {
            Error::Rejected(e) => e.to_string(),
            Error::Timeout(_) => "timeout".into(),
            Error::Unexpected { received, .. } => received.clone(),
            Error::Reset(code) => format!("stream reset {code:#x}"),
            Error::StreamClosed => "stream FIN".into(),
            other => other.to_string(),
        }
    }
}

impl From<moq_wire::WireError> for Error {
    fn from(e: moq_wire::WireError) -> Self {
        Error::Protocol(e.to_string())
    }
}

impl From<web_transport_quinn::SessionError> for Error {
    fn from(e: web_transport_quinn::SessionError) -> Self {
        match Error::close_code(&e) {
            Some((code, reason)) => Error::ClosedWith { code, reason },
            None => Error::Closed(e.to_string()),
        }
    }
}

impl From<web_transport_quinn::WriteError> for Error {
    fn from(e: web_transport_quinn::WriteError) -> Self {
        match e {
            web_transport_quinn::WriteError::Stopped(code) => Error::Reset(code),
            web_transport_quinn::WriteError::SessionError(e) => e.into(),
            other => Error::Transport(other.to_string()),
        }
    }
}

impl From<web_transport_quinn::ReadError> for Error {
    fn from(e: web_transport_quinn::ReadError) -> Self {
        match e {
            web_transport_quinn::ReadError::Reset(code) => Error::Reset(code),
            web_transport_quinn::ReadError::SessionError(e) => e.into(),
            other => Error::Transport(other.to_string()),
        }
    }
}

impl From<moq_wire::coding::EncodeError> for Error {
    fn from(e: moq_wire::coding::EncodeError) -> Self {
        Error::Transport(format!("encoding: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, Error>;
