//! Request messages (draft-18 §10) survive a round trip: whatever our strict
//! decoder accepts, our encoder writes so that it decodes again, to a
//! message that encodes to the same bytes (encode ∘ decode is idempotent) —
//! a relay forwards what it parsed. (moq-transport's `Message` has no
//! `PartialEq`, so the bytes are compared.)
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use moq_wire::control::{encode_request, kind, take_frame};

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let Ok(Some(frame)) = take_frame(&mut buf) else { return };
    if !kind::starts_request(frame.kind) {
        return;
    }
    let Ok(msg) = moq_wire::request::decode(&frame) else { return };
    let Ok(bytes) = encode_request(&msg) else { return };
    let mut again = BytesMut::from(&bytes[..]);
    let frame2 = take_frame(&mut again).expect("our own frame").expect("a whole frame");
    assert!(again.is_empty(), "encoder wrote trailing bytes");
    let msg2 = moq_wire::request::decode(&frame2).expect("our own encoding decodes");
    let bytes2 = encode_request(&msg2).expect("re-encodes");
    assert_eq!(bytes, bytes2);
});
