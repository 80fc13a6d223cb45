//! Minting and verifying a CAT: CWT claims (RFC 8392) in a COSE_Sign1
//! envelope (RFC 9052 §4.2, CBOR tag 18) signed with ES256 (alg -7), as
//! draft-ietf-moq-c4m carries them in MoQT (token type 0x01, §7.1).
//!
//! The verifier is strict in the ways moq-relay-ietf's is (tag 18 only, a
//! 64-byte signature, no `crit`, an `exp` within the relay's maximum
//! lifetime, only claims it can enforce), so a token one relay accepts the
//! other does too.

use crate::keys::{KeyError, SigningKey, VerifyKey};
use crate::scope::{int, Action, Scope};
use crate::Refusal;
use base64::Engine;
use ciborium::value::Value;
use ring::rand::SecureRandom;

/// COSE_Sign1 (RFC 9052 §4.2).
const TAG_COSE_SIGN1: u64 = 18;
/// COSE algorithm ES256 (RFC 9053 §2.1).
const ES256: i64 = -7;
/// COSE header labels: alg, crit, kid, typ (RFC 9052 §3.1, RFC 9596).
const H_ALG: i64 = 1;
const H_CRIT: i64 = 2;
const H_KID: i64 = 4;
const H_TYP: i64 = 16;
/// CWT claim keys (RFC 8392 §3.1) and the CAT / c4m ones.
const ISS: i64 = 1;
const SUB: i64 = 2;
const AUD: i64 = 3;
const EXP: i64 = 4;
const NBF: i64 = 5;
const IAT: i64 = 6;
const CTI: i64 = 7;
/// CAT version (CTA-5007-B); must be 1 when present.
const CATV: i64 = 310;
/// The `moqt` claim (c4m §2; its vectors, cat-token and moq-relay-ietf use 327).
const MOQT: i64 = 327;
/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub issuer: String,
    /// The user the token was issued to.
    pub subject: String,
    pub audience: String,
    /// Seconds since the Unix epoch.
    pub expires: u64,
    pub not_before: Option<u64>,
    pub issued_at: u64,
    /// The token's id (`cti`), a byte string.
    pub id: Vec<u8>,
    pub scopes: Vec<Scope>,
}

fn ival(n: i64) -> Value {
    Value::Integer(n.into())
}

fn uval(n: u64) -> Value {
    Value::Integer(n.into())
}

fn to_cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = ciborium::into_writer(v, &mut out);
    out
}

/// What is signed: `["Signature1", protected, external_aad = h'', payload]`.
fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    to_cbor(&Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(protected.to_vec()),
        Value::Bytes(Vec::new()),
        Value::Bytes(payload.to_vec()),
    ]))
}

impl Claims {
    /// Claims as moq-phone's issuer mints them: issuer and audience
    /// `moq-phone`, valid from `now` for `ttl` seconds, id `id`.
    pub fn new(subject: &str, now: u64, ttl: u64, id: Vec<u8>, scopes: Vec<Scope>) -> Self {
        Self {
            issuer: "moq-phone".into(),
            subject: subject.into(),
            audience: "moq-phone".into(),
            expires: now + ttl,
            not_before: None,
            issued_at: now,
            id,
            scopes,
        }
    }

    /// The claims map, keys in canonical (ascending) order.
    fn encode(&self) -> Vec<u8> {
        let mut m = vec![(ival(ISS), Value::Text(self.issuer.clone())), (ival(SUB), Value::Text(self.subject.clone()))];
        m.push((ival(AUD), Value::Text(self.audience.clone())));
        m.push((ival(EXP), uval(self.expires)));
        if let Some(nbf) = self.not_before {
            m.push((ival(NBF), uval(nbf)));
        }
        m.push((ival(IAT), uval(self.issued_at)));
        m.push((ival(CTI), Value::Bytes(self.id.clone())));
        m.push((ival(MOQT), Value::Array(self.scopes.iter().map(Scope::encode).collect())));
        to_cbor(&Value::Map(m))
    }

    /// Signs the claims: the token's bytes, as SETUP's AUTHORIZATION TOKEN
    /// carries them (draft-18 §10.2.2, token type 0x01).
    pub fn mint(&self, key: &SigningKey, rng: &dyn SecureRandom) -> Result<Vec<u8>, KeyError> {
        let protected = to_cbor(&Value::Map(vec![
            (ival(H_ALG), ival(ES256)),
            (ival(H_KID), Value::Bytes(key.public().kid().to_vec())),
            (ival(H_TYP), Value::Text("CAT".into())),
        ]));
        let payload = self.encode();
        let sig = key.sign(&sig_structure(&protected, &payload), rng)?;
        let body = Value::Array(vec![Value::Bytes(protected), Value::Map(Vec::new()), Value::Bytes(payload), Value::Bytes(sig)]);
        Ok(to_cbor(&Value::Tag(TAG_COSE_SIGN1, Box::new(body))))
    }
}

/// A token in a URL (`?token=`): base64url without padding.
pub fn to_url(token: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token)
}

/// The token of a URL query value; padding tolerated.
pub fn from_url(s: &str) -> Result<Vec<u8>, Refusal> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| Refusal::Malformed("token is not base64url"))
}

/// A verified token: what its holder may do until it expires.
#[derive(Debug, Clone)]
pub struct Grant {
    pub subject: Option<String>,
    pub expires: u64,
    skew: u64,
    scopes: Vec<Scope>,
}

impl Grant {
    /// The last second the grant is good for: `exp` plus the verifier's
    /// clock skew, as [`Grant::check`] and [`Verifier::verify`] judge it.
    pub fn valid_until(&self) -> u64 {
        self.expires.saturating_add(self.skew)
    }

    /// Whether `action` on namespace `ns` and `track` is allowed at `now`.
    pub fn check(&self, action: Action, ns: &[&[u8]], track: Option<&[u8]>, now: u64) -> Result<(), Refusal> {
        if now > self.valid_until() {
            return Err(Refusal::Expired);
        }
        if self.scopes.iter().any(|s| s.allows(action, ns, track)) {
            Ok(())
        } else {
            Err(Refusal::OutOfScope)
        }
    }
}

/// The relay's side: which keys, issuers and audiences it trusts.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub keys: Vec<VerifyKey>,
    /// Empty: any issuer.
    pub issuers: Vec<String>,
    /// Empty: any audience.
    pub audiences: Vec<String>,
    /// Tolerated clock difference, seconds.
    pub skew: u64,
    /// Longest lifetime accepted (moq-relay-ietf: 7 days).
    pub max_ttl: u64,
}

impl Verifier {
    pub fn new(keys: Vec<VerifyKey>) -> Self {
        Self { keys, issuers: Vec::new(), audiences: Vec::new(), skew: 60, max_ttl: 7 * 24 * 3600 }
    }

    /// Checks signature, expiry, issuer, audience and that the token allows
    /// CLIENT_SETUP (c4m §2), at `now` (seconds since the Unix epoch).
    pub fn verify(&self, token: &[u8], now: u64) -> Result<Grant, Refusal> {
        if token.is_empty() {
            return Err(Refusal::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Refusal::Malformed("token too long"));
        }
        let Value::Tag(TAG_COSE_SIGN1, body) = decode(token)? else { return Err(Refusal::Malformed("not a COSE_Sign1 (tag 18)")) };
        let Value::Array(parts) = *body else { return Err(Refusal::Malformed("COSE_Sign1 is not an array")) };
        let [Value::Bytes(protected), Value::Map(_), Value::Bytes(payload), Value::Bytes(sig)] = &parts[..] else {
            return Err(Refusal::Malformed("COSE_Sign1 has the wrong shape"));
        };
        let Value::Map(header) = decode(protected)? else { return Err(Refusal::Malformed("protected header is not a map")) };
        let label = |l: i64| header.iter().find(|(k, _)| int(k) == Some(l.into())).map(|(_, v)| v);
        if label(H_ALG).and_then(int) != Some(ES256.into()) {
            return Err(Refusal::Malformed("algorithm is not ES256"));
        }
        if label(H_CRIT).is_some() {
            return Err(Refusal::Malformed("critical headers are not supported"));
        }
        let kid = match label(H_KID) {
            Some(Value::Bytes(k)) => Some(k.as_slice()),
            _ => None,
        };
        if sig.len() != 64 {
            return Err(Refusal::Malformed("ES256 signature is not 64 bytes"));
        }
        // The named key first, then the others (a kid is a hint, not a rule).
        let msg = sig_structure(protected, payload);
        let named = self.keys.iter().filter(|k| Some(k.kid()) == kid);
        let others = self.keys.iter().filter(|k| Some(k.kid()) != kid);
        if !named.chain(others).any(|k| k.verify(&msg, sig)) {
            return Err(Refusal::BadSignature);
        }
        self.claims(&decode(payload)?, now)
    }

    /// The claims decoder behind [`Self::verify`]'s signature check, which a
    /// fuzzer cannot reach through a signature (fuzz/fuzz_targets/cat_token.rs).
    /// Only with the `fuzzing` feature, which only the fuzz crate turns on.
    #[cfg(feature = "fuzzing")]
    pub fn fuzz_claims(&self, payload: &[u8], now: u64) -> Result<Grant, Refusal> {
        self.claims(&decode(payload)?, now)
    }

    fn claims(&self, payload: &Value, now: u64) -> Result<Grant, Refusal> {
        let Value::Map(m) = payload else { return Err(Refusal::Malformed("claims are not a map")) };
        let mut seen = Vec::with_capacity(m.len());
        let (mut iss, mut sub, mut aud, mut exp, mut nbf, mut scopes) = (None, None, Vec::new(), None, None, Vec::new());
        for (k, v) in m {
            let k = int(k).and_then(|k| i64::try_from(k).ok()).ok_or(Refusal::Malformed("claim key is not an integer"))?;
            if seen.contains(&k) {
                return Err(Refusal::Malformed("repeated claim"));
            }
            seen.push(k);
            let time = || int(v).and_then(|t| u64::try_from(t).ok()).ok_or(Refusal::Malformed("date is not an integer"));
            match (k, v) {
                (ISS, Value::Text(t)) => iss = Some(t.clone()),
                (SUB, Value::Text(t)) => sub = Some(t.clone()),
                (AUD, Value::Text(t)) => aud.push(t.clone()),
                (AUD, Value::Array(a)) => aud.extend(a.iter().filter_map(|x| x.as_text().map(str::to_string))),
                (EXP, _) => exp = Some(time()?),
                (NBF, _) => nbf = Some(time()?),
                (IAT, _) => {
                    time()?;
                }
                (CTI, Value::Bytes(_)) => {}
                (CATV, v) if int(v) == Some(1) => {}
                (MOQT, Value::Array(a)) => scopes = a.iter().map(Scope::decode).collect::<Result<_, _>>()?,
                (ISS | SUB | AUD | CTI | CATV | MOQT, _) => return Err(Refusal::Malformed("claim has the wrong type")),
                (other, _) => return Err(Refusal::Unenforceable(other)),
            }
        }
        let exp = exp.ok_or(Refusal::Malformed("no expiry (exp)"))?;
        if now > exp.saturating_add(self.skew) {
            return Err(Refusal::Expired);
        }
        if let Some(nbf) = nbf {
            if now.saturating_add(self.skew) < nbf {
                return Err(Refusal::NotYetValid(nbf - now));
            }
        }
        if exp.saturating_sub(now.max(nbf.unwrap_or(0))) > self.max_ttl {
            return Err(Refusal::TooLong);
        }
        if !self.issuers.is_empty() && !iss.as_ref().is_some_and(|i| self.issuers.contains(i)) {
            return Err(Refusal::Issuer);
        }
        if !self.audiences.is_empty() && !aud.iter().any(|a| self.audiences.contains(a)) {
            return Err(Refusal::Audience);
        }
        if !scopes.iter().any(|s| s.allows_action(Action::ClientSetup)) {
            return Err(Refusal::NoSetupScope);
        }
        Ok(Grant { subject: sub, expires: exp, skew: self.skew, scopes })
    }
}

/// One CBOR item, nothing after it.
fn decode(bytes: &[u8]) -> Result<Value, Refusal> {
    let mut r = bytes;
    let v: Value = ciborium::from_reader(&mut r).map_err(|_| Refusal::Malformed("not CBOR"))?;
    if !r.is_empty() {
        return Err(Refusal::Malformed("bytes after the CBOR item"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests;
