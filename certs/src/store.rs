//! [`CertStore`]: the hot-swappable certificate resolver, renewal policy and
//! rustls configs.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Result};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::{generate_dev_leaf, load_pem, Bundle, DEFAULT_DEV_VALIDITY};

/// Renew when less than this much validity is left (see [`renew_at`]).
const RENEW_MIN_REMAINING: Duration = Duration::from_secs(2 * 24 * 60 * 60);
/// Longest sleep [`next_check`] suggests, so a suspended machine or a clock
/// jump delays renewal by at most this much.
const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// Retry interval once renewal is due but did not produce a new certificate.
const RETRY_INTERVAL: Duration = Duration::from_secs(60);

/// When to replace a certificate valid from `not_before` to `not_after`:
/// once less than a third of its lifetime, or less than two days, is left,
/// but never before half of its lifetime has passed (so short-lived test
/// certificates are not renewed continuously).
///
/// For the default 13-day certificate this is 4⅓ days before expiry, so a
/// page that fetched the hash just before renewal still has days in which
/// the old certificate is valid, and an outage of the renewal loop has days
/// to be noticed.
pub fn renew_at(not_before: SystemTime, not_after: SystemTime) -> SystemTime {
    let total = not_after.duration_since(not_before).unwrap_or_default();
    let margin = (total / 3).max(RENEW_MIN_REMAINING).min(total / 2);
    not_after - margin
}

/// Whether a certificate valid from `not_before` to `not_after` should be
/// replaced at `now`: from [`renew_at`] on, and also while `now` is before
/// `not_before` (the clock moved backwards; clients would reject it).
pub fn renew_due(not_before: SystemTime, not_after: SystemTime, now: SystemTime) -> bool {
    now < not_before || now >= renew_at(not_before, not_after)
}

/// How long to sleep before calling [`CertStore::renew_if_due`] again: until
/// [`renew_at`], but at most an hour (timers may not count time a machine
/// spends suspended), and a minute when renewal is due but did not happen
/// (e.g. operator files not replaced yet).
pub fn next_check(not_before: SystemTime, not_after: SystemTime, now: SystemTime) -> Duration {
    if renew_due(not_before, not_after, now) {
        return RETRY_INTERVAL;
    }
    renew_at(not_before, not_after).duration_since(now).unwrap_or_default().clamp(Duration::from_secs(1), MAX_CHECK_INTERVAL)
}

/// Where a [`CertStore`]'s certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// Self-signed via [`generate_dev_leaf`], regenerated before it expires.
    Generated {
        /// Total validity of each generated certificate (≤ 14 days).
        validity: Duration,
    },
    /// PEM files given by the operator, re-read on reload.
    Files {
        /// Certificate chain, leaf first (`--tls-cert`).
        cert: PathBuf,
        /// Private key (`--tls-key`).
        key: PathBuf,
    },
}

impl CertSource {
    /// The relay's `--tls-cert`/`--tls-key` flags: both given means files,
    /// neither means a generated certificate with [`DEFAULT_DEV_VALIDITY`].
    pub fn from_flags(cert: Option<PathBuf>, key: Option<PathBuf>) -> Result<Self> {
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Self::Files { cert, key }),
            (None, None) => Ok(Self::Generated {
                validity: DEFAULT_DEV_VALIDITY,
            }),
            (Some(_), None) => bail!(
                "--tls-cert was given without --tls-key: pass both (PEM chain and PEM private key), or neither to use a generated self-signed certificate"
            ),
            (None, Some(_)) => bail!(
                "--tls-key was given without --tls-cert: pass both (PEM chain and PEM private key), or neither to use a generated self-signed certificate"
            ),
        }
    }

    /// Produce a fresh bundle: generate one, or read the files.
    pub fn load(&self) -> Result<Bundle> {
        match self {
            Self::Generated { validity } => generate_dev_leaf(*validity),
            Self::Files { cert, key } => load_pem(cert, key),
        }
    }
}

/// The relay's current certificate, swappable while serving.
///
/// Implements [`ResolvesServerCert`]: every handshake reads the current
/// certificate, so [`Self::replace`] takes effect for new connections
/// without rebuilding the [`ServerConfig`] or the QUIC endpoint. The relay
/// typically:
///
/// * builds it with [`Self::from_source`]`(CertSource::from_flags(..)?)`,
/// * passes `Arc<CertStore>` to [`server_config`],
/// * serves [`Self::fingerprint`] at `GET /certificate.sha256`,
/// * loops `sleep(store.next_check(now)); store.renew_if_due(now)`,
/// * calls [`Self::reload`] on `SIGHUP`.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<Arc<Bundle>>,
    source: Option<CertSource>,
}

impl CertStore {
    /// A store serving `bundle`, with no source: [`Self::reload`] fails and
    /// [`Self::renew_if_due`] never renews. Use [`Self::replace`] to swap.
    pub fn new(bundle: Bundle) -> Self {
        Self { current: RwLock::new(Arc::new(bundle)), source: None }
    }

    /// A store serving `source.load()`, able to reload and renew from it.
    pub fn from_source(source: CertSource) -> Result<Self> {
        let bundle = source.load()?;
        Ok(Self { current: RwLock::new(Arc::new(bundle)), source: Some(source) })
    }

    /// Where the certificate comes from, if known.
    pub fn source(&self) -> Option<&CertSource> {
        self.source.as_ref()
    }

    /// The bundle being served now.
    pub fn current(&self) -> Arc<Bundle> {
        // A panic while holding the lock cannot leave a half-written value
        // (the write is a single assignment), so poisoning is ignored.
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Serve `bundle` for all new handshakes.
    pub fn replace(&self, bundle: Bundle) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(bundle);
    }

    /// Hex SHA-256 of the current leaf's DER (for `GET /certificate.sha256`).
    pub fn fingerprint(&self) -> String {
        self.current().fingerprint()
    }

    /// Start of the current leaf's validity.
    pub fn not_before(&self) -> SystemTime {
        self.current().not_before()
    }

    /// End of the current leaf's validity.
    pub fn not_after(&self) -> SystemTime {
        self.current().not_after()
    }

    /// When the current certificate should be renewed ([`renew_at`]).
    pub fn renew_at(&self) -> SystemTime {
        let c = self.current();
        renew_at(c.not_before(), c.not_after())
    }

    /// How long to sleep before the next [`Self::renew_if_due`] ([`next_check`]).
    pub fn next_check(&self, now: SystemTime) -> Duration {
        let c = self.current();
        next_check(c.not_before(), c.not_after(), now)
    }

    /// Load a new bundle from the source and serve it (the `SIGHUP`
    /// handler). On error the current certificate stays in place, so a
    /// half-written file never takes the relay down; log the error and retry.
    pub fn reload(&self) -> Result<()> {
        let Some(source) = &self.source else {
            bail!("this certificate store was built from a fixed bundle; there is nothing to reload from");
        };
        self.replace(source.load()?);
        Ok(())
    }

    /// If [`renew_due`] at `now`, load a new bundle from the source and serve
    /// it. Returns whether the served certificate changed. Generated
    /// certificates are regenerated; operator files are re-read, and count as
    /// changed only if the operator has replaced them (otherwise the relay
    /// should warn that [`Self::not_after`] is approaching).
    pub fn renew_if_due(&self, now: SystemTime) -> Result<bool> {
        let current = self.current();
        if !renew_due(current.not_before(), current.not_after(), now) {
            return Ok(false);
        }
        let Some(source) = &self.source else {
            return Ok(false);
        };
        let bundle = source.load()?;
        if bundle.sha256() == current.sha256() {
            return Ok(false);
        }
        self.replace(bundle);
        Ok(true)
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.current().certified_key())
    }
}

/// A TLS 1.3-only [`ServerConfig`] (QUIC requires TLS 1.3, RFC 9001 §4.2)
/// using the ring provider, no client authentication, certificates from
/// `store`, and ALPN `alpns` in order of preference (e.g. `b"h3"` for
/// WebTransport and the moq-transport ALPN for raw QUIC).
///
/// For quinn, wrap it with `quinn::crypto::rustls::QuicServerConfig::try_from`.
pub fn server_config(store: Arc<CertStore>, alpns: &[&[u8]]) -> ServerConfig {
    let mut config = ServerConfig::builder_with_provider(crate::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("the ring provider supports TLS 1.3")
        .with_no_client_auth()
        .with_cert_resolver(store);
    config.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
    config
}

/// A TLS 1.3-only [`ClientConfig`] (ring provider) trusting exactly `roots`
/// (e.g. [`crate::load_ca_roots`]`("ca.pem")` or [`crate::DevCa::root_store`]),
/// offering ALPN `alpns`. For native clients and tests.
pub fn client_config(roots: RootCertStore, alpns: &[&[u8]]) -> ClientConfig {
    let mut config = ClientConfig::builder_with_provider(crate::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("the ring provider supports TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Duration = Duration::from_secs(60 * 60);
    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    fn at(t: Duration) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + t
    }

    #[test]
    fn renew_boundaries_for_the_default_validity() {
        let (nb, na) = (at(Duration::ZERO), at(13 * DAY));
        let renew = at(13 * DAY - 13 * DAY / 3);
        assert_eq!(renew_at(nb, na), renew);
        assert!(!renew_due(nb, na, nb));
        assert!(!renew_due(nb, na, renew - Duration::from_secs(1)));
        assert!(renew_due(nb, na, renew));
        assert!(renew_due(nb, na, na));
        assert!(renew_due(nb, na, na + DAY));
        // Clock before notBefore: clients would reject it, renew.
        assert!(renew_due(nb, na, nb - Duration::from_secs(1)));
    }

    #[test]
    fn renew_keeps_two_days_for_mid_length_certificates() {
        // 5 days: a third (40 h) is under two days, so renew 48 h early.
        let (nb, na) = (at(Duration::ZERO), at(5 * DAY));
        assert_eq!(renew_at(nb, na), na - 2 * DAY);
        // 90 days: a third (30 days) dominates.
        let na = at(90 * DAY);
        assert_eq!(renew_at(nb, na), na - 30 * DAY);
    }

    #[test]
    fn short_certificates_renew_at_half_life() {
        let (nb, na) = (at(Duration::ZERO), at(Duration::from_secs(60)));
        assert_eq!(renew_at(nb, na), at(Duration::from_secs(30)));
        assert!(!renew_due(nb, na, at(Duration::from_secs(29))));
        assert!(renew_due(nb, na, at(Duration::from_secs(30))));
        // Degenerate windows never panic and are always due.
        assert!(renew_due(na, nb, at(Duration::from_secs(10))));
        assert!(renew_due(nb, nb, nb));
    }

    #[test]
    fn next_check_is_clamped() {
        let (nb, na) = (at(Duration::ZERO), at(13 * DAY));
        assert_eq!(next_check(nb, na, nb), MAX_CHECK_INTERVAL);
        let renew = renew_at(nb, na);
        assert_eq!(next_check(nb, na, renew - 10 * 60 * Duration::from_secs(1)), Duration::from_secs(600));
        assert_eq!(next_check(nb, na, renew - Duration::from_millis(10)), Duration::from_secs(1));
        assert_eq!(next_check(nb, na, renew), RETRY_INTERVAL);
        assert_eq!(next_check(nb, na, na + H), RETRY_INTERVAL);
    }

    #[test]
    fn flags_need_both_or_neither() {
        assert_eq!(CertSource::from_flags(None, None).unwrap(), CertSource::Generated { validity: DEFAULT_DEV_VALIDITY });
        let both = CertSource::from_flags(Some("c.pem".into()), Some("k.pem".into())).unwrap();
        assert!(matches!(both, CertSource::Files { .. }));
        let err = CertSource::from_flags(Some("c.pem".into()), None).unwrap_err();
        assert!(err.to_string().contains("without --tls-key"), "{err}");
        let err = CertSource::from_flags(None, Some("k.pem".into())).unwrap_err();
        assert!(err.to_string().contains("without --tls-cert"), "{err}");
    }
}
