//! CAT access tokens (draft-ietf-moq-c4m auth; CWT in COSE_Sign1, RFC 8392 /
//! RFC 9052) as a client presents them: raw bytes in SETUP's AUTHORIZATION
//! TOKEN, base64url text in `?jwt=` / the web phone's storage, and the claims
//! behind the signature (reached through the `fuzzing` feature, as no fuzzer
//! can forge an ES256 signature). The first byte picks the entry point.
#![no_main]
use libfuzzer_sys::fuzz_target;
use moq_auth::keys::SigningKey;
use moq_auth::token::{from_url, Verifier};
use std::sync::OnceLock;

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        let rng = ring::rand::SystemRandom::new();
        let key = SigningKey::generate(&rng).expect("a P-256 key");
        Verifier::new(vec![key.public().clone()])
    })
}

const NOW: u64 = 1_765_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let v = verifier();
    match mode % 3 {
        0 => {
            let _ = v.verify(rest, NOW);
        }
        1 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                if let Ok(token) = from_url(text) {
                    let _ = v.verify(&token, NOW);
                }
            }
        }
        _ => {
            if let Ok(grant) = v.fuzz_claims(rest, NOW) {
                // A grant's checks are total functions of their input.
                let _ = grant.check(moq_auth::Action::Subscribe, &[b"moq-phone", b"alice"], Some(b"audio"), NOW);
            }
        }
    }
});
