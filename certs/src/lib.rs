//! TLS certificates for moq-phone: the relay's serving certificate and the
//! development PKI used by native clients and tests.
//!
//! # Two ways a client can trust the relay
//!
//! * **Browsers** connect with WebTransport and pin the certificate by hash
//!   (`new WebTransport(url, { serverCertificateHashes: [...] })`). The W3C
//!   WebTransport spec ("custom certificate requirements",
//!   <https://w3c.github.io/webtransport/#custom-certificate-requirements>)
//!   only accepts a pinned certificate if it is an X.509v3 certificate whose
//!   *total* validity period (`notAfter - notBefore`) is **at most two
//!   weeks**, whose validity covers the current time, and whose public key
//!   uses an allowed algorithm: user agents must allow ECDSA with secp256r1
//!   (P-256) and must not allow RSA. [`generate_dev_leaf`] therefore makes a
//!   P-256 certificate valid for at most [`MAX_BROWSER_VALIDITY`], and the
//!   relay has to replace it before it expires ([`CertStore::renew_if_due`])
//!   and publish the new SHA-256 ([`CertStore::fingerprint`]) at
//!   `GET /certificate.sha256` so pages can fetch the current hash.
//! * **Native clients** (rustls/quinn) verify a chain against trust anchors.
//!   A self-signed `CA:TRUE` certificate (what `openssl req -x509` makes) is
//!   refused as a server certificate with `CaUsedAsEndEntity`, and the
//!   relay's `CA:FALSE` generated leaf is only accepted if that exact
//!   certificate is pinned as an anchor, which breaks at every renewal. So
//!   for native use [`mint_ca`] creates a development CA and [`mint_leaf`] a
//!   `CA:FALSE` leaf signed by it. The `certs` binary writes both to a
//!   directory ([`write_dev_files`]); the relay then runs with
//!   `--tls-cert leaf.pem --tls-key leaf.key` and clients trust `ca.pem`
//!   ([`load_ca_roots`], [`client_config`]).
//!
//! # Hot swapping
//!
//! [`CertStore`] implements [`rustls::server::ResolvesServerCert`], so the
//! [`rustls::ServerConfig`] built by [`server_config`] never needs to be
//! rebuilt: replacing the certificate (renewal timer, `SIGHUP`) affects every
//! new handshake while existing connections keep running.

mod bundle;
mod mint;
mod store;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use bundle::{load_ca_roots, load_pem, Bundle};
pub use mint::{generate_dev_leaf, mint_ca, mint_leaf, write_dev_files, DevCa, DevFiles};
pub use store::{client_config, next_check, renew_at, renew_due, server_config, CertSource, CertStore};

/// Longest total validity (`notAfter - notBefore`) a browser accepts for a
/// certificate pinned with WebTransport `serverCertificateHashes`: two weeks.
pub const MAX_BROWSER_VALIDITY: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// Validity of the relay's generated certificate: 13 days, one day below the
/// browser limit so rounding or a sloppy verifier can never push it over.
pub const DEFAULT_DEV_VALIDITY: Duration = Duration::from_secs(13 * 24 * 60 * 60);

/// Names every generated or minted leaf is valid for. Browsers and native
/// clients on the same machine may use any of the three to reach the relay.
pub const DEFAULT_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Lowercase hex SHA-256 of `der`: the form served at
/// `GET /certificate.sha256` and printed by the `certs` tool. Browsers need
/// the raw 32 bytes in `serverCertificateHashes`, which the page obtains by
/// hex-decoding this string.
pub fn sha256_hex(der: &[u8]) -> String {
    hex::encode(sha256(der))
}

pub(crate) fn sha256(der: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(der).into()
}

/// The ring crypto provider used for everything in this crate. Passed
/// explicitly instead of relying on a process-wide default provider, so the
/// crate works no matter which providers other dependencies enable.
pub(crate) fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
