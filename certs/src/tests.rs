//! Cross-module tests: certificate contents, verification by rustls, PEM
//! round trips and hot swapping during real (in-memory) handshakes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConnection, RootCertStore, ServerConnection};
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};

use crate::*;

const DAY: Duration = Duration::from_secs(86_400);

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("moq-certs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn verify(roots: RootCertStore, leaf: &CertificateDer<'_>, name: &str) -> Result<(), rustls::Error> {
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider()).build().unwrap();
    let name = ServerName::try_from(name.to_string()).unwrap();
    verifier.verify_server_cert(leaf, &[], &name, &[], UnixTime::now()).map(|_| ())
}

/// Run a TLS handshake between in-memory client and server connections.
fn handshake(client: rustls::ClientConfig, server: Arc<rustls::ServerConfig>, name: &str) -> Result<(), rustls::Error> {
    let name = ServerName::try_from(name.to_string()).unwrap();
    let mut c = ClientConnection::new(Arc::new(client), name)?;
    let mut s = ServerConnection::new(server)?;
    for _ in 0..20 {
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let mut rd = buf.as_slice();
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
            s.process_new_packets()?;
        }
        buf.clear();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        let mut rd = buf.as_slice();
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
            c.process_new_packets()?;
        }
        if !c.is_handshaking() && !s.is_handshaking() {
            assert_eq!(c.alpn_protocol(), Some(&b"h3"[..]));
            assert_eq!(c.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

#[test]
fn generated_leaf_is_browser_hashable() {
    let bundle = generate_dev_leaf(DEFAULT_DEV_VALIDITY).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(bundle.leaf()).unwrap();

    // ECDSA P-256.
    let spki = cert.public_key();
    assert_eq!(spki.algorithm.algorithm, OID_KEY_TYPE_EC_PUBLIC_KEY);
    let curve = spki.algorithm.parameters.as_ref().unwrap().as_oid().unwrap();
    assert_eq!(curve, OID_EC_P256);

    // SANs.
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => d.to_string(),
            GeneralName::IPAddress(ip) => match ip.len() {
                4 => std::net::IpAddr::from(<[u8; 4]>::try_from(*ip).unwrap()).to_string(),
                _ => std::net::IpAddr::from(<[u8; 16]>::try_from(*ip).unwrap()).to_string(),
            },
            other => panic!("unexpected SAN {other:?}"),
        })
        .collect();
    assert_eq!(names, DEFAULT_SANS);
    assert!(!cert.is_ca());

    // Validity ≤ 14 days, covering now, and matching the bundle's view.
    let v = cert.validity();
    let total = v.not_after.timestamp() - v.not_before.timestamp();
    assert!(total as u64 <= MAX_BROWSER_VALIDITY.as_secs());
    assert_eq!(total as u64, DEFAULT_DEV_VALIDITY.as_secs());
    assert!(v.is_valid());
    assert_eq!(bundle.validity(), DEFAULT_DEV_VALIDITY);
    assert!(bundle.not_before() < SystemTime::now() && SystemTime::now() < bundle.not_after());
    assert_eq!(bundle.browser_hash_problem(), None);

    // Fingerprint = SHA-256 of the DER.
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bundle.leaf().as_ref());
    assert_eq!(bundle.sha256(), <[u8; 32]>::from(digest));
    assert_eq!(bundle.fingerprint(), hex::encode(digest));
    assert_eq!(bundle.fingerprint().len(), 64);

    // Every generation is a fresh key and certificate.
    assert_ne!(generate_dev_leaf(DEFAULT_DEV_VALIDITY).unwrap().fingerprint(), bundle.fingerprint());
}

#[test]
fn minted_ca_verifies_minted_leaf_for_all_names() {
    let ca = mint_ca(DAY).unwrap();
    let leaf = mint_leaf(&ca, &["relay.test", "192.0.2.7"], DAY).unwrap();
    for name in ["localhost", "127.0.0.1", "::1", "relay.test", "192.0.2.7"] {
        verify(ca.root_store(), leaf.leaf(), name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let err = verify(ca.root_store(), leaf.leaf(), "other.test").unwrap_err();
    assert!(format!("{err:?}").contains("NotValidForName"), "{err:?}");

    // A different CA does not vouch for it.
    let other = mint_ca(DAY).unwrap();
    let err = verify(other.root_store(), leaf.leaf(), "localhost").unwrap_err();
    assert!(matches!(err, rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)), "{err:?}");

    // The leaf is CA:FALSE and qualifies for browser hashing too.
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.leaf()).unwrap();
    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(!bc.value.ca);
    assert_eq!(leaf.browser_hash_problem(), None);
    let long = mint_leaf(&ca, &[] as &[&str], 30 * DAY).unwrap();
    assert!(long.browser_hash_problem().unwrap().contains("14 days"));
}

#[test]
fn self_signed_certificates_as_roots() {
    // What the issue ran into: a self-signed CA:TRUE certificate (the default
    // of `openssl req -x509`) is refused as a server certificate even when it
    // is the trust anchor. That is why the CLI mints a CA plus a CA:FALSE leaf.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_leaf = params.self_signed(&key).unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca_leaf.der().clone()).unwrap();
    let err = verify(roots, ca_leaf.der(), "localhost").unwrap_err();
    assert!(format!("{err:?}").contains("CaUsedAsEndEntity"), "{err:?}");

    // The relay's generated leaf is CA:FALSE. webpki accepts it only when the
    // exact certificate is pinned as an anchor, which breaks at every renewal;
    // a client trusting the dev CA (or any CA) rejects it.
    let leaf = generate_dev_leaf(DAY).unwrap();
    let mut pinned = RootCertStore::empty();
    pinned.add(leaf.leaf().clone()).unwrap();
    verify(pinned, leaf.leaf(), "localhost").unwrap();
    let renewed = generate_dev_leaf(DAY).unwrap();
    let mut pinned = RootCertStore::empty();
    pinned.add(leaf.leaf().clone()).unwrap();
    let err = verify(pinned, renewed.leaf(), "localhost").unwrap_err();
    assert!(matches!(err, rustls::Error::InvalidCertificate(_)), "{err:?}");
    let err = verify(mint_ca(DAY).unwrap().root_store(), leaf.leaf(), "localhost").unwrap_err();
    assert!(matches!(err, rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)), "{err:?}");
}

#[test]
fn handshake_follows_store_replacement() {
    let ca = mint_ca(DAY).unwrap();
    let store = Arc::new(CertStore::new(mint_leaf(&ca, &[] as &[&str], DAY).unwrap()));
    let server = Arc::new(server_config(store.clone(), &[b"moq-00", b"h3"]));
    let client = || client_config(ca.root_store(), &[b"h3"]);

    handshake(client(), server.clone(), "localhost").unwrap();
    handshake(client(), server.clone(), "127.0.0.1").unwrap();

    // Swap in the self-signed leaf: clients trusting the CA now fail...
    let dev = generate_dev_leaf(DAY).unwrap();
    store.replace(dev.clone());
    assert_eq!(store.fingerprint(), dev.fingerprint());
    assert!(handshake(client(), server.clone(), "localhost").is_err());

    // ...and succeed again once a CA-signed leaf is back, same ServerConfig.
    store.replace(mint_leaf(&ca, &[] as &[&str], DAY).unwrap());
    handshake(client(), server, "::1").unwrap();
}

#[test]
fn generated_store_renews_when_due() {
    let store = CertStore::from_source(CertSource::Generated { validity: DAY }).unwrap();
    let first = store.fingerprint();
    assert!(!store.renew_if_due(SystemTime::now()).unwrap());
    assert_eq!(store.fingerprint(), first);
    assert!(store.next_check(SystemTime::now()) <= Duration::from_secs(3600));

    let later = store.renew_at() + Duration::from_secs(1);
    assert!(store.renew_if_due(later).unwrap());
    assert_ne!(store.fingerprint(), first);
    store.reload().unwrap();

    let fixed = CertStore::new(generate_dev_leaf(DAY).unwrap());
    assert!(!fixed.renew_if_due(later + DAY).unwrap());
    assert!(fixed.reload().is_err());
}

#[test]
fn pem_round_trip_and_reload() {
    let dir = TempDir::new("roundtrip");
    // A world-readable key file from before is tightened when replaced.
    std::fs::write(dir.0.join("leaf.key"), "old").unwrap();
    let files = write_dev_files(&dir.0, &["relay.test"], 13 * DAY).unwrap();
    assert_eq!(files.sans, ["localhost", "127.0.0.1", "::1", "relay.test"]);
    let key_pem = std::fs::read_to_string(&files.leaf_key).unwrap();
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{key_pem}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files.leaf_key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "key must not be group/world readable");
    }

    let loaded = load_pem(&files.leaf_pem, &files.leaf_key).unwrap();
    assert_eq!(loaded.fingerprint(), files.fingerprint);
    assert_eq!(loaded.not_after(), files.not_after);
    let roots = load_ca_roots(&files.ca_pem).unwrap();
    verify(roots, loaded.leaf(), "relay.test").unwrap();

    // Written PEM reads back byte-identical.
    let again = dir.0.join("again");
    std::fs::create_dir(&again).unwrap();
    loaded.write_pem(&again.join("c.pem"), &again.join("k.pem")).unwrap();
    let reloaded = load_pem(again.join("c.pem"), again.join("k.pem")).unwrap();
    assert_eq!(reloaded.chain(), loaded.chain());
    assert_eq!(reloaded.key().secret_der(), loaded.key().secret_der());

    // A store over the files picks up replaced files on reload (SIGHUP).
    let source = CertSource::from_flags(Some(files.leaf_pem.clone()), Some(files.leaf_key.clone())).unwrap();
    let store = CertStore::from_source(source).unwrap();
    assert_eq!(store.fingerprint(), files.fingerprint);
    let far = store.renew_at() + Duration::from_secs(1);
    assert!(!store.renew_if_due(far).unwrap(), "unchanged files are not a renewal");
    let newer = write_dev_files(&dir.0, &[] as &[&str], DAY).unwrap();
    store.reload().unwrap();
    assert_eq!(store.fingerprint(), newer.fingerprint);

    // A broken file keeps the old certificate in place.
    std::fs::write(&newer.leaf_pem, "garbage").unwrap();
    assert!(store.reload().is_err());
    assert_eq!(store.fingerprint(), newer.fingerprint);
}

#[test]
fn load_pem_errors_say_what_is_wrong() {
    let dir = TempDir::new("errors");
    let files = write_dev_files(&dir.0, &[] as &[&str], DAY).unwrap();
    let missing = dir.0.join("nope.pem");
    let msg = |r: anyhow::Result<Bundle>| r.unwrap_err().to_string();

    let e = msg(load_pem(&missing, &files.leaf_key));
    assert!(e.contains("nope.pem") && e.contains("--tls-cert") && e.contains("cannot read"), "{e}");
    let e = msg(load_pem(&files.leaf_pem, &missing));
    assert!(e.contains("nope.pem") && e.contains("--tls-key"), "{e}");

    let e = msg(load_pem(&files.leaf_key, &files.leaf_pem));
    assert!(e.contains("leaf.key") && e.contains("swap"), "{e}");

    let empty = dir.0.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let e = msg(load_pem(&files.leaf_pem, &empty));
    assert!(e.contains("empty.pem") && e.contains("no private key"), "{e}");

    // Key from another certificate.
    let other = dir.0.join("other");
    let other_files = write_dev_files(&other, &[] as &[&str], DAY).unwrap();
    let e = msg(load_pem(&files.leaf_pem, &other_files.leaf_key));
    assert!(e.contains("does not belong"), "{e}");
    assert!(e.contains("leaf.pem") && e.contains("other"), "{e}");

    let e = load_ca_roots(&missing).unwrap_err().to_string();
    assert!(e.contains("nope.pem"), "{e}");
}
