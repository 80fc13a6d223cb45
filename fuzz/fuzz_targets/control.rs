//! A control stream's bytes, as a peer sends them after SETUP
//! (draft-ietf-moq-transport-18 §10): framing (§10.1, 16-bit length) and
//! every message decoder the relay and the client use. Each must return a
//! value or an error — never panic, loop or allocate beyond the frame.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use moq_wire::control::{kind, take_frame};

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = take_frame(&mut buf) {
        if kind::starts_request(frame.kind) {
            let _ = moq_wire::request::decode(&frame);
        }
        let _ = frame.response();
        let _ = frame.request_error();
        let _ = frame.goaway();
    }
});
