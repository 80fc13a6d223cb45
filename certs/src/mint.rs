//! Minting certificates: the relay's browser-hashable leaf, and a dev CA with
//! a leaf for native clients.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::RootCertStore;
use time::OffsetDateTime;

use crate::bundle::write_file;
use crate::{Bundle, DEFAULT_SANS, MAX_BROWSER_VALIDITY};

/// How far `notBefore` is moved into the past, so that a client whose clock
/// is slightly behind still sees the certificate as valid. Capped at a
/// quarter of the validity so short-lived test certificates stay usable.
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// `(not_before, not_after)` with `not_after - not_before == validity`
/// exactly (whole seconds, as X.509 encodes them).
fn window(validity: Duration) -> Result<(OffsetDateTime, OffsetDateTime)> {
    let secs = validity.as_secs();
    if secs < 4 {
        bail!("certificate validity must be at least a few seconds, got {validity:?}");
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let backdate = BACKDATE.as_secs().min(secs / 4);
    let not_before = OffsetDateTime::from_unix_timestamp(now - backdate as i64)?;
    let not_after = not_before + Duration::from_secs(secs);
    Ok((not_before, not_after))
}

fn p256_key() -> Result<KeyPair> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| anyhow!("cannot generate an ECDSA P-256 key: {e}"))
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "moq-phone development");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn leaf_params(sans: &[String], validity: Duration) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(sans.to_vec()).map_err(|e| anyhow!("invalid subject alternative name: {e}"))?;
    (params.not_before, params.not_after) = window(validity)?;
    params.distinguished_name = name(&sans[0]);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

fn bundle(cert: &CertificateDer<'static>, key: &KeyPair) -> Result<Bundle> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Bundle::from_der(vec![cert.clone()], key)
}

/// [`DEFAULT_SANS`] followed by `extra`, without duplicates. Each extra name
/// must be an IP address or a DNS name (optionally a `*.` wildcard).
fn all_sans(extra: &[impl AsRef<str>]) -> Result<Vec<String>> {
    let mut sans: Vec<String> = DEFAULT_SANS.iter().map(|s| s.to_string()).collect();
    for san in extra {
        let san = san.as_ref().trim();
        let dns = san.strip_prefix("*.").unwrap_or(san);
        let valid =
            san.parse::<IpAddr>().is_ok() || (!dns.is_empty() && dns.parse::<IpAddr>().is_err() && ServerName::try_from(dns).is_ok());
        if !valid {
            bail!(
                "invalid subject alternative name {san:?}: use a DNS name or an IP address, e.g. --san myhost.local or --san 192.168.1.10"
            );
        }
        let canonical = match san.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => san.to_ascii_lowercase(),
        };
        if !sans.contains(&canonical) {
            sans.push(canonical);
        }
    }
    Ok(sans)
}

/// Generate the relay's self-signed serving certificate: a fresh ECDSA P-256
/// key, SANs [`DEFAULT_SANS`], total validity `validity` (normally
/// [`crate::DEFAULT_DEV_VALIDITY`]) starting up to an hour in the past.
///
/// This is the certificate browsers pin by hash, so `validity` may not
/// exceed [`MAX_BROWSER_VALIDITY`] (W3C WebTransport: at most two weeks) and
/// the key is P-256 (browsers must accept it, and must refuse RSA). Native
/// clients cannot trust it as a root; they should use [`mint_ca`] +
/// [`mint_leaf`] instead.
pub fn generate_dev_leaf(validity: Duration) -> Result<Bundle> {
    if validity > MAX_BROWSER_VALIDITY {
        bail!(
            "a generated certificate may be valid for at most 14 days (browsers reject longer ones with serverCertificateHashes), got {:.1} days",
            validity.as_secs_f64() / 86_400.0
        );
    }
    let sans: Vec<String> = DEFAULT_SANS.iter().map(|s| s.to_string()).collect();
    let params = leaf_params(&sans, validity)?;
    let key = p256_key()?;
    let cert = params.self_signed(&key).map_err(|e| anyhow!("cannot self-sign the development certificate: {e}"))?;
    bundle(cert.der(), &key)
}

/// A development certificate authority: its certificate and the key that
/// signs leaves. The key lives only in memory; [`write_dev_files`] does not
/// save it, so a leaked `ca.pem` can never be used to mint more certificates.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
}

impl DevCa {
    /// The CA certificate (DER).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The CA certificate as a PEM `CERTIFICATE` block.
    pub fn cert_pem(&self) -> String {
        pem::encode_config(&pem::Pem::new("CERTIFICATE", self.cert.to_vec()), pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF))
    }

    /// A root store trusting only this CA, for [`crate::client_config`].
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.clone()).expect("a CA certificate generated by rcgen is a valid trust anchor");
        roots
    }
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa").field("sha256", &crate::sha256_hex(&self.cert)).finish_non_exhaustive()
    }
}

/// Create a development CA (ECDSA P-256, `CA:TRUE` with path length 0, so it
/// can sign leaves but no intermediates) valid for `validity`.
pub fn mint_ca(validity: Duration) -> Result<DevCa> {
    let mut params = CertificateParams::default();
    (params.not_before, params.not_after) = window(validity)?;
    let key = p256_key()?;
    // A per-CA name: clients look issuers up by name, so two dev CAs with the
    // same name would turn "wrong CA" into a confusing BadSignature error.
    let id = crate::sha256_hex(key.public_key_raw());
    params.distinguished_name = name(&format!("moq-phone development CA {}", &id[..12]));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let cert = params.self_signed(&key).map_err(|e| anyhow!("cannot self-sign the development CA: {e}"))?;
    Ok(DevCa { cert: cert.der().clone(), issuer: Issuer::new(params, key) })
}

/// Mint a `CA:FALSE` server leaf (ECDSA P-256, EKU serverAuth) signed by
/// `ca`, valid for [`DEFAULT_SANS`] plus `extra_sans` (DNS names or IP
/// addresses) for `validity`. The returned chain holds just the leaf; clients
/// trust the CA certificate directly.
///
/// With `validity` of at most 14 days the leaf also satisfies the browsers'
/// `serverCertificateHashes` rules, so one leaf can serve both kinds of
/// client.
pub fn mint_leaf(ca: &DevCa, extra_sans: &[impl AsRef<str>], validity: Duration) -> Result<Bundle> {
    let sans = all_sans(extra_sans)?;
    let mut params = leaf_params(&sans, validity)?;
    params.use_authority_key_identifier_extension = true;
    let key = p256_key()?;
    let cert = params.signed_by(&key, &ca.issuer).map_err(|e| anyhow!("cannot sign the leaf certificate with the development CA: {e}"))?;
    bundle(cert.der(), &key)
}

/// What [`write_dev_files`] wrote.
#[derive(Debug, Clone)]
pub struct DevFiles {
    /// The CA certificate native clients should trust.
    pub ca_pem: PathBuf,
    /// The leaf certificate: pass to the relay as `--tls-cert`.
    pub leaf_pem: PathBuf,
    /// The leaf's PKCS#8 private key: pass to the relay as `--tls-key`.
    pub leaf_key: PathBuf,
    /// Names the leaf is valid for.
    pub sans: Vec<String>,
    /// Hex SHA-256 of the leaf's DER.
    pub fingerprint: String,
    /// End of the leaf's validity.
    pub not_after: SystemTime,
}

/// Mint a fresh CA and leaf (see [`mint_ca`], [`mint_leaf`]) and write
/// `ca.pem`, `leaf.pem` and `leaf.key` (mode 0600) into `dir`, creating it if
/// needed and replacing earlier files. This is the `certs` tool; tests call it
/// to get files for the relay's `--tls-cert`/`--tls-key`.
pub fn write_dev_files(dir: impl AsRef<Path>, extra_sans: &[impl AsRef<str>], validity: Duration) -> Result<DevFiles> {
    let dir = dir.as_ref();
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output directory {}: choose a writable directory with --out", dir.display()))?;
    let ca = mint_ca(validity)?;
    let leaf = mint_leaf(&ca, extra_sans, validity)?;

    let files = DevFiles {
        ca_pem: dir.join("ca.pem"),
        leaf_pem: dir.join("leaf.pem"),
        leaf_key: dir.join("leaf.key"),
        sans: all_sans(extra_sans)?,
        fingerprint: leaf.fingerprint(),
        not_after: leaf.not_after(),
    };
    write_file(&files.ca_pem, ca.cert_pem().as_bytes(), false)?;
    leaf.write_pem(&files.leaf_pem, &files.leaf_key)?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_are_defaults_plus_valid_extras() {
        let sans = all_sans(&["Example.test", "10.0.0.1", "localhost", "*.lan.test"]).unwrap();
        assert_eq!(sans, ["localhost", "127.0.0.1", "::1", "example.test", "10.0.0.1", "*.lan.test"]);
        for bad in ["", "foo bar", "-x.test/", "*."] {
            let err = all_sans(&[bad]).unwrap_err().to_string();
            assert!(err.contains("--san"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn window_is_exact_and_backdated() {
        let (nb, na) = window(Duration::from_secs(13 * 86_400)).unwrap();
        assert_eq!(na - nb, time::Duration::days(13));
        let ago = OffsetDateTime::now_utc() - nb;
        assert!(ago >= time::Duration::minutes(59) && ago <= time::Duration::minutes(61));
        // Short validities are backdated by a quarter only.
        let (nb, na) = window(Duration::from_secs(60)).unwrap();
        assert_eq!(na - nb, time::Duration::seconds(60));
        assert!(OffsetDateTime::now_utc() - nb <= time::Duration::seconds(16));
        assert!(window(Duration::from_secs(1)).is_err());
    }

    #[test]
    fn generated_leaf_rejects_more_than_two_weeks() {
        let err = generate_dev_leaf(MAX_BROWSER_VALIDITY + Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("at most 14 days"), "{err}");
        generate_dev_leaf(MAX_BROWSER_VALIDITY).unwrap();
    }
}
