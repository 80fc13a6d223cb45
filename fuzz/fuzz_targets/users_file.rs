//! The relay's users file behind `POST /login` (TOML, argon2id PHC hashes;
//! README "Access tokens"): an operator's typo must be a clear error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(users) = moq_auth::users::Users::parse(text) {
            // What parsed writes back and parses again.
            moq_auth::users::Users::parse(&users.to_toml()).expect("our own users file parses");
        }
    }
});
