//! TLS for the client: verify against a CA file, the platform's roots, or —
//! for interop runs against relays with throwaway certificates — nothing.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;

/// How the relay's certificate is checked.
#[derive(Debug, Clone, Default)]
pub enum Tls {
    /// The platform's trust store.
    #[default]
    System,
    /// PEM trust anchors (e.g. the `ca.pem` written by moq-phone's `certs` tool).
    Ca(PathBuf),
    /// Accept any certificate (`--tls-disable-verify`). Handshake signatures
    /// are still checked, so the session is encrypted to whoever holds the
    /// presented key — just not authenticated.
    DisableVerify,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    /// A rustls client config offering exactly `alpn` (§3.1: `moqt-18` for
    /// native QUIC, `h3` for WebTransport).
    pub fn client_config(&self, alpn: &[u8]) -> anyhow::Result<ClientConfig> {
        self.client_config_offering(&[alpn])
    }

    /// A rustls client config offering `alpns`, most preferred first (native
    /// QUIC offers every MoQT draft the client speaks; the server picks).
    pub fn client_config_offering(&self, alpns: &[&[u8]]) -> anyhow::Result<ClientConfig> {
        let mut config = match self {
            Tls::Ca(path) => moq_certs::client_config(moq_certs::load_ca_roots(path)?, &[]),
            Tls::System => {
                let mut roots = RootCertStore::empty();
                let native = rustls_native_certs::load_native_certs();
                for cert in native.certs {
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    anyhow::bail!("no system trust anchors found: pass --ca FILE or --tls-disable-verify");
                }
                ClientConfig::builder_with_provider(provider())
                    .with_protocol_versions(&[&rustls::version::TLS13])?
                    .with_root_certificates(roots)
                    .with_no_client_auth()
            }
            Tls::DisableVerify => ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(&[&rustls::version::TLS13])?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
                .with_no_client_auth(),
        };
        config.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
        Ok(config)
    }
}

/// A verifier that trusts every certificate chain but still verifies the
/// handshake signature with the presented key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `n` bytes from the crypto provider's CSPRNG (connection IDs, run ids).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if provider().secure_random.fill(&mut b).is_err() {
        // Never expected with ring; fall back to something unique enough.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        for (i, x) in b.iter_mut().enumerate() {
            *x = (t >> ((i % 16) * 8)) as u8 ^ (std::process::id() as u8).wrapping_add(i as u8);
        }
    }
    b
}
