//! A control stream's bytes, as a peer sends them after SETUP
//! (draft-ietf-moq-transport-18 §10): framing (§10.1, 16-bit length) and
//! every message decoder the relay and the client use, under draft-18 and
//! under draft-22 (docs/DRAFT22.md). Each must return a value or an error —
//! never panic, loop or allocate beyond the frame — and what decodes must
//! encode again in either draft without panicking (the relay carries
//! messages between sessions of different drafts).
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use moq_wire::control::{encode_request_as, kind, take_frame_as};
use moq_wire::Version;

fuzz_target!(|data: &[u8]| {
    for version in [Version::Draft18, Version::Draft22] {
        let mut buf = BytesMut::from(data);
        while let Ok(Some(frame)) = take_frame_as(&mut buf, version) {
            if kind::starts_request(frame.kind) {
                if let Ok(msg) = moq_wire::request::decode(&frame) {
                    let _ = moq_wire::draft22::unsupported(&msg);
                    for v in [Version::Draft18, Version::Draft22] {
                        let _ = encode_request_as(&msg, v);
                    }
                }
            }
            if let Ok(r) = frame.response() {
                if let moq_wire::control::Response::RequestUpdate { params, .. } = &r {
                    if let Some(fill) = moq_wire::draft22::fill::Fill::of(params) {
                        let _ = fill.range(None, Some(moq_wire::coding::Location::new(u64::MAX, u64::MAX)));
                    }
                }
                let _ = r.encode_as(Version::Draft18);
                let _ = r.encode_as(Version::Draft22);
            }
            let _ = frame.request_error();
            let _ = frame.goaway();
        }
    }
});
