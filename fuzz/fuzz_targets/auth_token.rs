//! The AUTHORIZATION TOKEN parameter (draft-18 §10.2.2): alias types,
//! registration and use, as a SETUP option or a request parameter.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = moq_wire::auth_token::Token::decode(data);
});
