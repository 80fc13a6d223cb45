//! [`Bundle`]: a validated certificate chain plus private key, and PEM I/O.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};

use crate::MAX_BROWSER_VALIDITY;

/// A certificate chain (leaf first) with its private key, checked to belong
/// together and ready to be served by rustls.
///
/// Everything a relay needs to know about its certificate is computed once at
/// construction: the SHA-256 of the leaf's DER (what browsers pin) and the
/// leaf's validity window (when to renew).
pub struct Bundle {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    certified: Arc<rustls::sign::CertifiedKey>,
    sha256: [u8; 32],
    not_before: SystemTime,
    not_after: SystemTime,
    p256: bool,
}

impl Bundle {
    /// Validate and wrap a DER chain (leaf first) and private key.
    ///
    /// Fails if the chain is empty, the leaf is not parseable X.509, ring
    /// cannot sign with the key, or the key's public half differs from the
    /// leaf's.
    pub fn from_der(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<Self> {
        let leaf = chain.first().ok_or_else(|| anyhow!("the certificate chain is empty"))?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(leaf).map_err(|e| anyhow!("the leaf certificate is not valid X.509 DER: {e}"))?;
        let not_before = SystemTime::from(parsed.validity().not_before.to_datetime());
        let not_after = SystemTime::from(parsed.validity().not_after.to_datetime());
        let spki = parsed.public_key();
        let p256 = spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY
            && spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).is_some_and(|curve| curve == OID_EC_P256);
        let sha256 = crate::sha256(leaf);

        let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| anyhow!("the private key cannot be used (supported: ECDSA P-256/P-384, Ed25519, RSA): {e}"))?;
        let certified = rustls::sign::CertifiedKey::new(chain.clone(), signing_key);
        match certified.keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                bail!("the private key does not belong to the leaf certificate (their public keys differ)")
            }
            Err(e) => bail!("cannot check that the private key matches the leaf certificate: {e}"),
        }

        Ok(Self { chain, key, certified: Arc::new(certified), sha256, not_before, not_after, p256 })
    }

    /// The chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The end-entity certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The private key (DER).
    pub fn key(&self) -> &PrivateKeyDer<'static> {
        &self.key
    }

    /// The chain and signing key in the form rustls serves.
    pub fn certified_key(&self) -> Arc<rustls::sign::CertifiedKey> {
        self.certified.clone()
    }

    /// SHA-256 of the leaf's DER: the bytes browsers put in
    /// `serverCertificateHashes`.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// [`Self::sha256`] as lowercase hex (64 characters).
    pub fn fingerprint(&self) -> String {
        hex::encode(self.sha256)
    }

    /// Start of the leaf's validity.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// End of the leaf's validity.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// Total validity of the leaf (`notAfter - notBefore`).
    pub fn validity(&self) -> Duration {
        self.not_after.duration_since(self.not_before).unwrap_or_default()
    }

    /// Why a browser would refuse this leaf when pinned with
    /// `serverCertificateHashes`, or `None` if it qualifies. Checks the two
    /// static W3C requirements: total validity of at most two weeks and an
    /// ECDSA P-256 key (the one algorithm every browser must accept). Useful
    /// for warning operators who load their own files.
    pub fn browser_hash_problem(&self) -> Option<String> {
        let days = |d: Duration| d.as_secs_f64() / 86_400.0;
        if self.validity() > MAX_BROWSER_VALIDITY {
            return Some(format!(
                "the certificate is valid for {:.1} days; browsers only accept certificates valid for at most 14 days with serverCertificateHashes",
                days(self.validity())
            ));
        }
        if !self.p256 {
            return Some(
                "the certificate's key is not ECDSA P-256; browsers are only required to accept P-256 with serverCertificateHashes (and refuse RSA)"
                    .to_string(),
            );
        }
        None
    }

    /// The chain as PEM `CERTIFICATE` blocks, leaf first.
    pub fn chain_pem(&self) -> String {
        let blocks: Vec<pem::Pem> = self.chain.iter().map(|c| pem::Pem::new("CERTIFICATE", c.to_vec())).collect();
        pem::encode_many_config(&blocks, pem_config())
    }

    /// The private key as PEM, tagged by its encoding (`PRIVATE KEY` for
    /// PKCS#8, which is what this crate generates).
    pub fn key_pem(&self) -> String {
        let tag = match &self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        let der = self.key.secret_der().to_vec();
        pem::encode_config(&pem::Pem::new(tag, der), pem_config())
    }

    /// Write [`Self::chain_pem`] to `cert_path` and [`Self::key_pem`] to
    /// `key_path` (mode 0600 on Unix), replacing existing files.
    pub fn write_pem(&self, cert_path: &Path, key_path: &Path) -> Result<()> {
        write_file(cert_path, self.chain_pem().as_bytes(), false)?;
        write_file(key_path, self.key_pem().as_bytes(), true)
    }
}

impl Clone for Bundle {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            certified: self.certified.clone(),
            sha256: self.sha256,
            not_before: self.not_before,
            not_after: self.not_after,
            p256: self.p256,
        }
    }
}

impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("Bundle")
            .field("fingerprint", &self.fingerprint())
            .field("chain_len", &self.chain.len())
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

fn pem_config() -> pem::EncodeConfig {
    pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF)
}

pub(crate) fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file =
        options.open(path).with_context(|| format!("cannot write {}: check that the directory exists and is writable", path.display()))?;
    // `mode` only applies to new files; tighten a key file left from before.
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private (mode 0600)", path.display()))?;
    }
    file.write_all(contents).with_context(|| format!("cannot write {}", path.display()))
}

fn read_file(path: &Path, what: &str, flag: &str) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| anyhow!("cannot read {what} file {}: {e}; {flag} must name a readable PEM file", path.display()))
}

fn read_certs(path: &Path, what: &str, flag: &str) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = read_file(path, what, flag)?;
    let certs = rustls_pemfile::certs(&mut bytes.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        let hint = if rustls_pemfile::private_key(&mut bytes.as_slice()).ok().flatten().is_some() {
            " (it holds a private key: did you swap --tls-cert and --tls-key?)"
        } else {
            ""
        };
        bail!("{} contains no PEM 'CERTIFICATE' block{hint}; {flag} must be a PEM {what} file", path.display());
    }
    Ok(certs)
}

/// Load a PEM certificate chain (leaf first, intermediates after; the root
/// is not needed) and a PEM private key (PKCS#8 `PRIVATE KEY`, SEC1
/// `EC PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
///
/// This is what the relay does for `--tls-cert`/`--tls-key` at startup and
/// on `SIGHUP`. Every error names the offending file and says what was
/// expected, e.g. a missing file, a swapped cert/key pair, or a key that
/// belongs to a different certificate.
pub fn load_pem(cert_path: impl AsRef<Path>, key_path: impl AsRef<Path>) -> Result<Bundle> {
    let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
    let chain = read_certs(cert_path, "certificate chain", "--tls-cert")?;

    let key_bytes = read_file(key_path, "private key", "--tls-key")?;
    let key = rustls_pemfile::private_key(&mut key_bytes.as_slice())
        .map_err(|e| anyhow!("{} is not valid PEM: {e}", key_path.display()))?
        .ok_or_else(|| {
            let hint = if rustls_pemfile::certs(&mut key_bytes.as_slice()).next().is_some() {
                " (it holds a certificate: did you swap --tls-cert and --tls-key?)"
            } else {
                ""
            };
            anyhow!(
                "{} contains no private key{hint}; --tls-key must be a PEM 'PRIVATE KEY', 'EC PRIVATE KEY' or 'RSA PRIVATE KEY' file",
                key_path.display()
            )
        })?;

    Bundle::from_der(chain, key).map_err(|e| anyhow!("cannot use certificate {} with key {}: {e}", cert_path.display(), key_path.display()))
}

/// Read every PEM certificate in `path` into a root store, typically the
/// `ca.pem` written by the `certs` tool, for native clients and tests.
pub fn load_ca_roots(path: impl AsRef<Path>) -> Result<RootCertStore> {
    let path = path.as_ref();
    let certs = read_certs(path, "CA certificate", "the CA path")?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| anyhow!("{} holds a certificate rustls cannot use as a trust anchor: {e}", path.display()))?;
    }
    Ok(roots)
}
