//! Tokens minted and verified with explicit time.

use super::*;
use crate::scope::{call_scopes, BinMatch};

const NOW: u64 = 1_800_000_000;

fn rng() -> ring::rand::SystemRandom {
    ring::rand::SystemRandom::new()
}

fn claims(user: &str) -> Claims {
    Claims::new(user, NOW, 3600, vec![7; 16], call_scopes(&["moq-phone"], user))
}

fn setup() -> (SigningKey, Verifier) {
    let key = SigningKey::generate(&rng()).unwrap();
    let v = Verifier::new(vec![key.public().clone()]);
    (key, v)
}

fn ns(p: &str) -> Vec<&[u8]> {
    p.split('/').map(str::as_bytes).collect()
}

#[test]
fn a_minted_token_verifies_and_carries_its_scopes() {
    let (key, v) = setup();
    let token = claims("alice").mint(&key, &rng()).unwrap();
    assert!(token.len() < 600, "fits a URL: {} bytes", token.len());
    let g = v.verify(&token, NOW).unwrap();
    assert_eq!(g.subject.as_deref(), Some("alice"));
    assert_eq!(g.check(Action::PublishNamespace, &ns("moq-phone/users/alice/laptop"), None, NOW), Ok(()));
    assert_eq!(g.check(Action::PublishNamespace, &ns("moq-phone/users/bob/laptop"), None, NOW), Err(Refusal::OutOfScope));
    // Through a URL and back.
    assert!(v.verify(&from_url(&to_url(&token)).unwrap(), NOW).is_ok());
}

#[test]
fn forged_tampered_and_foreign_tokens_are_refused() {
    let (key, v) = setup();
    let token = claims("alice").mint(&key, &rng()).unwrap();
    // Another issuer's key signed it.
    let (other, _) = setup();
    assert_eq!(v.verify(&claims("alice").mint(&other, &rng()).unwrap(), NOW).unwrap_err(), Refusal::BadSignature);
    // One bit of the signature flipped; one byte of the claims changed.
    let mut flipped = token.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert_eq!(v.verify(&flipped, NOW).unwrap_err(), Refusal::BadSignature);
    let at = token.windows(5).position(|w| w == b"alice").unwrap();
    let mut renamed = token.clone();
    renamed[at..at + 5].copy_from_slice(b"mally");
    assert_eq!(v.verify(&renamed, NOW).unwrap_err(), Refusal::BadSignature);
    // Not a token at all.
    assert_eq!(v.verify(b"", NOW).unwrap_err(), Refusal::Missing);
    assert!(matches!(v.verify(b"\xff\x00garbage", NOW).unwrap_err(), Refusal::Malformed(_)));
    let mut trailing = token.clone();
    trailing.push(0);
    assert!(matches!(v.verify(&trailing, NOW).unwrap_err(), Refusal::Malformed(_)));
    assert!(matches!(v.verify(&vec![0x80; MAX_TOKEN_BYTES + 1], NOW).unwrap_err(), Refusal::Malformed(_)));
    // Rotation: a verifier with the old and the new key takes both.
    let both = Verifier::new(vec![other.public().clone(), key.public().clone()]);
    assert!(both.verify(&token, NOW).is_ok());
}

#[test]
fn time_bounds_are_checked_with_the_skew_at_the_edges() {
    let (key, v) = setup();
    let token = claims("alice").mint(&key, &rng()).unwrap();
    let exp = NOW + 3600;
    assert!(v.verify(&token, exp + v.skew).is_ok());
    assert_eq!(v.verify(&token, exp + v.skew + 1).unwrap_err(), Refusal::Expired);
    let g = v.verify(&token, NOW).unwrap();
    assert_eq!(g.check(Action::ClientSetup, &[], None, exp + v.skew + 1), Err(Refusal::Expired));
    let mut later = claims("alice");
    later.not_before = Some(NOW + 600);
    later.expires = NOW + 1200;
    let t = later.mint(&key, &rng()).unwrap();
    assert_eq!(v.verify(&t, NOW).unwrap_err(), Refusal::NotYetValid(600));
    assert!(v.verify(&t, NOW + 600 - v.skew).is_ok());
    let mut long = claims("alice");
    long.expires = NOW + v.max_ttl + 1;
    assert_eq!(v.verify(&long.mint(&key, &rng()).unwrap(), NOW).unwrap_err(), Refusal::TooLong);
}

#[test]
fn issuer_audience_and_setup_scope_are_required_when_configured() {
    let (key, mut v) = setup();
    v.issuers = vec!["moq-phone".into()];
    v.audiences = vec!["pbx.example".into()];
    assert_eq!(v.verify(&claims("alice").mint(&key, &rng()).unwrap(), NOW).unwrap_err(), Refusal::Audience);
    v.audiences.push("moq-phone".into());
    assert!(v.verify(&claims("alice").mint(&key, &rng()).unwrap(), NOW).is_ok());
    let mut c = claims("alice");
    c.issuer = "someone-else".into();
    assert_eq!(v.verify(&c.mint(&key, &rng()).unwrap(), NOW).unwrap_err(), Refusal::Issuer);
    let mut c = claims("alice");
    c.scopes = vec![Scope::new(&[Action::Subscribe], vec![BinMatch::Exact(b"x".to_vec())])];
    assert_eq!(v.verify(&c.mint(&key, &rng()).unwrap(), NOW).unwrap_err(), Refusal::NoSetupScope);
}

#[test]
fn refusals_map_to_the_draft_codes() {
    assert_eq!((Refusal::Expired.session_code(), Refusal::Expired.request_code()), (0x18, 0x5));
    assert_eq!((Refusal::Malformed("x").session_code(), Refusal::Malformed("x").request_code()), (0x16, 0x4));
    assert_eq!((Refusal::BadSignature.session_code(), Refusal::OutOfScope.request_code()), (0x2, 0x1));
}
