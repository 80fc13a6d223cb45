//! A client's SETUP (draft-18 §10.3): the Setup Options as the relay reads
//! them (bounded Key-Value-Pairs, §1.4.3) and its PATH / AUTHORITY checks
//! (§10.3.1.1–2, RFC 3986) on native QUIC and on WebTransport.
#![no_main]
use libfuzzer_sys::fuzz_target;
use moq_relay::session::setup::{check_options, undecodable};
use moq_wire::coding::KeyValuePairs;

fuzz_target!(|data: &[u8]| {
    match KeyValuePairs::decode_bounded(&mut &data[..], data.len()) {
        Ok(options) => {
            let _ = check_options(&options, true);
            let _ = check_options(&options, false);
        }
        Err(e) => {
            let _ = undecodable(&e);
        }
    }
});
