//! moq-auth: who may do what on a moq-phone relay.
//!
//! Tokens are Common Access Tokens as draft-ietf-moq-c4m profiles them for
//! MoQ: a CWT (RFC 8392) signed with COSE_Sign1 and ES256 (RFC 9052), whose
//! `moqt` claim (key 327) lists scopes — MoQT actions on namespace and track
//! matches (c4m §2). [`token`] mints and verifies them, [`scope`] decides
//! whether a request falls inside a verified token, [`policy`] adds the call
//! model's rules (docs/CALLS.md §2) that a token's tail-wildcard scopes cannot
//! express, [`keys`] reads and writes the ES256 keys, and [`users`] keeps
//! the password hashes behind a relay's sign-in.
//!
//! Sans-IO like the rest of the house: no clock (every check takes `now`, in
//! seconds since the Unix epoch), no files, no sockets; randomness for
//! signing is passed in.
//!
//! Why not the `cat-token` crate: it reads the wall clock inside validation,
//! is a pre-1.0 alpha needing a newer compiler than the workspace, and pulls
//! RSA, X.509 and AES stacks that one fixed ES256 profile does not need. It
//! stays the reference our tokens are tested against, inside moq-relay-ietf.

pub mod keys;
pub mod policy;
pub mod scope;
pub mod token;
pub mod users;

pub use keys::{SigningKey, VerifyKey};
pub use scope::{Action, BinMatch, Scope};
pub use token::{Claims, Grant, Verifier};

/// Why a token or a request under it was refused. Each maps to the
/// draft-18 code a relay answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no token")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("signature does not verify with any configured key")]
    BadSignature,
    #[error("token issuer not accepted")]
    Issuer,
    #[error("token audience not accepted")]
    Audience,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet ({0} s to go)")]
    NotYetValid(u64),
    #[error("token lifetime exceeds the relay's maximum")]
    TooLong,
    #[error("token carries claim {0}, which this relay cannot enforce")]
    Unenforceable(i64),
    #[error("token does not allow CLIENT_SETUP")]
    NoSetupScope,
    #[error("not within the token's scopes")]
    OutOfScope,
    #[error("not allowed by the call model (docs/CALLS.md §2)")]
    CallPolicy,
}

impl Refusal {
    /// Session close code (draft-18 §3.5): MALFORMED_AUTH_TOKEN 0x16,
    /// EXPIRED_AUTH_TOKEN 0x18, else UNAUTHORIZED 0x2.
    pub fn session_code(&self) -> u32 {
        match self {
            Refusal::Malformed(_) => 0x16,
            Refusal::Expired => 0x18,
            _ => 0x2,
        }
    }

    /// REQUEST_ERROR code (draft-18 §10.6): MALFORMED_AUTH_TOKEN 0x4,
    /// EXPIRED_AUTH_TOKEN 0x5, else UNAUTHORIZED 0x1.
    pub fn request_code(&self) -> u64 {
        match self {
            Refusal::Malformed(_) => 0x4,
            Refusal::Expired => 0x5,
            _ => 0x1,
        }
    }

    /// A fixed label for metrics and logs (never a user name).
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed(_) => "malformed",
            Refusal::BadSignature => "signature",
            Refusal::Issuer => "issuer",
            Refusal::Audience => "audience",
            Refusal::Expired => "expired",
            Refusal::NotYetValid(_) => "not_yet_valid",
            Refusal::TooLong => "lifetime",
            Refusal::Unenforceable(_) => "unenforceable",
            Refusal::NoSetupScope => "no_setup_scope",
            Refusal::OutOfScope => "scope",
            Refusal::CallPolicy => "call_policy",
        }
    }
}
