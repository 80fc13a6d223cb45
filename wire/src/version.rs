//! The draft versions moq-wire speaks, and how each is negotiated.
//!
//! Draft-18 negotiates the version out of band (§3.1, §3.3): raw QUIC by the
//! TLS ALPN `moqt-18`, WebTransport by the `moqt-18` subprotocol in
//! WT-Available-Protocols / WT-Protocol. A second draft is added here — a
//! variant, its protocol name, and a place in [`Version::ALL`] — and the relay
//! and the client offer it from this list; codecs that differ between drafts
//! take the negotiated [`Version`].

/// A draft-ietf-moq-transport version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// draft-ietf-moq-transport-18.
    Draft18,
    /// draft-ietf-moq-transport-22 (docs/DRAFT22.md; codec in
    /// [`crate::draft22`]).
    Draft22,
}

impl Version {
    /// Every version this build speaks, most preferred first.
    pub const ALL: &'static [Version] = &[Version::Draft22, Version::Draft18];

    /// The ALPN (raw QUIC) and WebTransport subprotocol naming this version.
    pub const fn protocol(self) -> &'static str {
        match self {
            Version::Draft18 => "moqt-18",
            Version::Draft22 => "moqt-22",
        }
    }

    /// The version a negotiated ALPN or WT-Protocol names, if we speak it.
    pub fn from_protocol(p: &[u8]) -> Option<Version> {
        Version::ALL.iter().copied().find(|v| v.protocol().as_bytes() == p)
    }

    /// The draft number, for logs and SETUP's implementation string.
    pub const fn draft(self) -> u32 {
        match self {
            Version::Draft18 => 18,
            Version::Draft22 => 22,
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "draft-ietf-moq-transport-{}", self.draft())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_round_trip_and_unknown_ones_are_refused() {
        for v in Version::ALL {
            assert_eq!(Version::from_protocol(v.protocol().as_bytes()), Some(*v));
        }
        assert_eq!(Version::from_protocol(b"moqt-17"), None);
        assert_eq!(Version::from_protocol(b"h3"), None);
    }
}
