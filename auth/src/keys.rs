//! ES256 keys (ECDSA P-256 with SHA-256, COSE algorithm -7): the issuer's
//! signing key as PKCS#8 PEM, the relay's verification keys as SPKI PEM
//! ("PUBLIC KEY", the form moq-relay-ietf's `--scope-config` takes too).

use ring::rand::SecureRandom;
use ring::signature::{EcdsaKeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING};

/// DER of a P-256 SubjectPublicKeyInfo up to the uncompressed point
/// (RFC 5480: id-ecPublicKey, secp256r1, BIT STRING of 66 bytes).
const SPKI_P256_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01,
    0x07, 0x03, 0x42, 0x00,
];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not PEM: {0}")]
    Pem(String),
    #[error("expected a PEM block labelled {expected}, found {found}")]
    Label { expected: &'static str, found: String },
    #[error("not an ECDSA P-256 key in PKCS#8 form (make one with `moq-relay keygen`)")]
    Pkcs8,
    #[error("not an ECDSA P-256 public key (SubjectPublicKeyInfo)")]
    Spki,
    #[error("no randomness available")]
    Random,
}

/// A key id: the first 8 bytes of SHA-256 over the public key's SPKI DER.
fn kid_of(spki: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, spki).as_ref()[..8].to_vec()
}

fn pem_block(text: &str, expected: &'static str) -> Result<Vec<u8>, KeyError> {
    let p = pem::parse(text).map_err(|e| KeyError::Pem(e.to_string()))?;
    if p.tag() != expected {
        return Err(KeyError::Label { expected, found: p.tag().to_string() });
    }
    Ok(p.into_contents())
}

/// The issuer's signing key.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    public: VerifyKey,
}

impl SigningKey {
    /// A fresh key.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, KeyError> {
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng).map_err(|_| KeyError::Random)?;
        Self::from_pkcs8(doc.as_ref(), rng)
    }

    pub fn from_pkcs8(der: &[u8], rng: &dyn SecureRandom) -> Result<Self, KeyError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, rng).map_err(|_| KeyError::Pkcs8)?;
        let public = VerifyKey::from_point(ring::signature::KeyPair::public_key(&pair).as_ref())?;
        Ok(Self { pair, pkcs8: der.to_vec(), public })
    }

    /// From a `PRIVATE KEY` PEM block.
    pub fn from_pem(text: &str, rng: &dyn SecureRandom) -> Result<Self, KeyError> {
        Self::from_pkcs8(&pem_block(text, "PRIVATE KEY")?, rng)
    }

    pub fn to_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PRIVATE KEY", self.pkcs8.clone()))
    }

    pub fn public(&self) -> &VerifyKey {
        &self.public
    }

    /// ES256 over `msg`: r ‖ s, 64 bytes, the COSE form (RFC 9053 §2.1).
    pub(crate) fn sign(&self, msg: &[u8], rng: &dyn SecureRandom) -> Result<Vec<u8>, KeyError> {
        Ok(self.pair.sign(rng, msg).map_err(|_| KeyError::Random)?.as_ref().to_vec())
    }
}

/// A verification key the relay trusts.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyKey {
    point: Vec<u8>,
    kid: Vec<u8>,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyKey({})", self.kid_hex())
    }
}

impl VerifyKey {
    fn from_point(point: &[u8]) -> Result<Self, KeyError> {
        if point.len() != 65 || point[0] != 4 {
            return Err(KeyError::Spki);
        }
        let mut spki = SPKI_P256_PREFIX.to_vec();
        spki.extend_from_slice(point);
        Ok(Self { point: point.to_vec(), kid: kid_of(&spki) })
    }

    /// From SubjectPublicKeyInfo DER.
    pub fn from_spki(der: &[u8]) -> Result<Self, KeyError> {
        match der.strip_prefix(&SPKI_P256_PREFIX[..]) {
            Some(point) => Self::from_point(point),
            None => Err(KeyError::Spki),
        }
    }

    /// From a `PUBLIC KEY` PEM block.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        Self::from_spki(&pem_block(text, "PUBLIC KEY")?)
    }

    pub fn to_pem(&self) -> String {
        let mut spki = SPKI_P256_PREFIX.to_vec();
        spki.extend_from_slice(&self.point);
        pem::encode(&pem::Pem::new("PUBLIC KEY", spki))
    }

    /// The key id tokens name in their `kid` header.
    pub fn kid(&self) -> &[u8] {
        &self.kid
    }

    pub fn kid_hex(&self) -> String {
        self.kid.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.point).verify(msg, sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_pem_and_sign_what_they_verify() {
        let rng = ring::rand::SystemRandom::new();
        let k = SigningKey::generate(&rng).unwrap();
        let again = SigningKey::from_pem(&k.to_pem(), &rng).unwrap();
        assert_eq!(again.public(), k.public());
        let public = VerifyKey::from_pem(&k.public().to_pem()).unwrap();
        assert_eq!(&public, k.public());
        assert_eq!(public.kid().len(), 8);
        let sig = k.sign(b"msg", &rng).unwrap();
        assert_eq!(sig.len(), 64);
        assert!(public.verify(b"msg", &sig) && !public.verify(b"other", &sig));
        assert!(matches!(VerifyKey::from_pem(&k.to_pem()), Err(KeyError::Label { .. })), "a private key is not a public key");
        assert!(matches!(SigningKey::from_pem(&public.to_pem(), &rng), Err(KeyError::Label { .. })));
    }
}
