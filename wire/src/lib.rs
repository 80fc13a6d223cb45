//! moq-wire: the protocol vocabulary of moq-phone — every message, name type,
//! error code and data-stream format of draft-ietf-moq-transport-18 that any
//! crate uses, with the draft [`Version`]s and how they are negotiated. No
//! other crate depends on moq-transport.
//!
//! Request-initiating control messages (SUBSCRIBE, PUBLISH, FETCH, …) are
//! decoded with moq-transport's `message::Message`. Responses on request
//! streams (§10: they carry no Request ID in draft-18) are only encoded inside
//! moq-transport's private session code, so [`control`] frames them here from
//! moq-transport's public field codecs. Data streams and datagrams are parsed
//! and written by [`subgroup`], [`datagram`] and [`fetch`], built for
//! zero-copy forwarding: each of these formats has exactly one encoder and one
//! parser, here, used by the relay and the client alike.

pub mod auth_token;
pub mod control;
/// Names and parameter values (§1.4, §2.4, §9.3): Track Namespace, Track Name,
/// Location, Key-Value-Pairs — moq-transport's field codecs, re-exported so
/// that no other crate depends on moq-transport directly.
pub use moq_transport::coding;
/// Request-initiating control messages (§10): moq-transport's message codecs.
pub use moq_transport::message;
/// CLIENT_SETUP / SERVER_SETUP (§10.3).
pub use moq_transport::setup;
pub mod datagram;
pub mod draft22;
pub mod fetch;
pub mod loc;
pub mod properties;
pub mod request;
pub mod subgroup;
pub mod varint;
pub mod version;

pub use version::Version;

/// Publisher priority when neither the stream nor the track names one (§7).
pub const DEFAULT_PUBLISHER_PRIORITY: u8 = moq_transport::data::DEFAULT_PUBLISHER_PRIORITY;

/// Uni stream type of the control stream: the SETUP message type (§3.3, §10.3).
pub const SETUP: u64 = 0x2F00;
/// Uni stream type of padding streams (§11.5.1), read and discarded.
pub const PADDING: u64 = 0x132B_3E28;
/// Datagram type of padding datagrams (§11.5.2): the receiver MUST discard them.
pub const PADDING_DATAGRAM: u64 = 0x132B_3E29;

/// Why a data stream, datagram or control frame could not be parsed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum WireError {
    #[error("invalid stream/datagram/message type {0:#x}")]
    InvalidType(u64),
    #[error("stream or message ended inside a field")]
    Truncated,
    #[error("object of {0} bytes exceeds the relay's limit")]
    TooLarge(u64),
    #[error("invalid object status {0:#x}")]
    InvalidStatus(u64),
    #[error("properties on an object whose status is not Normal")]
    PropertiesOnStatus,
    #[error("object id overflow")]
    ObjectIdOverflow,
    #[error("malformed {0}: {1}")]
    Malformed(&'static str, String),
}

/// Object Status values (§11.2.1.1), shared by SUBGROUP objects and
/// OBJECT_DATAGRAMs. Objects delivered via FETCH carry no status.
pub mod status {
    /// A normal object; the only status an object with properties may have.
    pub const NORMAL: u64 = 0x0;
    /// No objects with this Group ID and a larger Object ID exist.
    pub const END_OF_GROUP: u64 = 0x3;
    /// No objects with a larger Location exist in the track.
    pub const END_OF_TRACK: u64 = 0x4;

    /// True for the values §11.2.1.1 defines.
    pub fn is_valid(status: u64) -> bool {
        matches!(status, NORMAL | END_OF_GROUP | END_OF_TRACK)
    }
}

/// Session termination codes (§3.5).
pub mod session_error {
    pub const NO_ERROR: u32 = 0x0;
    pub const INTERNAL_ERROR: u32 = 0x1;
    pub const UNAUTHORIZED: u32 = 0x2;
    pub const PROTOCOL_VIOLATION: u32 = 0x3;
    pub const INVALID_REQUEST_ID: u32 = 0x4;
    pub const DUPLICATE_TRACK_ALIAS: u32 = 0x5;
    pub const KEY_VALUE_FORMATTING_ERROR: u32 = 0x6;
    pub const INVALID_PATH: u32 = 0x8;
    pub const MALFORMED_PATH: u32 = 0x9;
    pub const GOAWAY_TIMEOUT: u32 = 0x10;
    pub const CONTROL_MESSAGE_TIMEOUT: u32 = 0x11;
    pub const DATA_STREAM_TIMEOUT: u32 = 0x12;
    pub const AUTH_TOKEN_CACHE_OVERFLOW: u32 = 0x13;
    pub const DUPLICATE_AUTH_TOKEN_ALIAS: u32 = 0x14;
    pub const MALFORMED_AUTH_TOKEN: u32 = 0x16;
    pub const UNKNOWN_AUTH_TOKEN_ALIAS: u32 = 0x17;
    pub const EXPIRED_AUTH_TOKEN: u32 = 0x18;
    pub const INVALID_AUTHORITY: u32 = 0x19;
    pub const MALFORMED_AUTHORITY: u32 = 0x1A;
}

/// Stream reset / STOP_SENDING codes (§3.3.3).
pub mod stream_error {
    pub const INTERNAL_ERROR: u32 = 0x0;
    pub const CANCELLED: u32 = 0x1;
    pub const DELIVERY_TIMEOUT: u32 = 0x2;
    pub const SESSION_CLOSED: u32 = 0x3;
    pub const GOING_AWAY: u32 = 0x4;
    pub const TOO_FAR_BEHIND: u32 = 0x5;
    pub const UNKNOWN_OBJECT_STATUS: u32 = 0x6;
    pub const EXPIRED_AUTH_TOKEN: u32 = 0x7;
    pub const EXCESSIVE_LOAD: u32 = 0x9;
    pub const MALFORMED_TRACK: u32 = 0x12;
}

/// PUBLISH_DONE status codes (§10.11).
pub use moq_transport::message::PublishDoneCode;
/// REQUEST_ERROR codes (§10.6, IANA table), as moq-transport numbers them.
pub use moq_transport::message::RequestErrorCode;
