//! OBJECT_DATAGRAM (draft-18 §11.3): parse, and re-encode what parsed —
//! the relay rewrites the Track Alias of every forwarded datagram.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use moq_wire::datagram::Datagram;

fuzz_target!(|data: &[u8]| {
    let Ok(d) = Datagram::parse(Bytes::copy_from_slice(data)) else { return };
    // Ranges point inside the datagram.
    assert!(d.properties.end <= d.raw.len() && d.payload.end <= d.raw.len());
    assert!(d.after_alias <= d.raw.len());
});
