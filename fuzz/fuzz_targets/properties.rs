//! Object properties (draft-18 §11.1, Key-Value-Pairs §1.4.3):
//! decode, and decode ∘ encode = id on what decoded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use moq_wire::properties;

fuzz_target!(|data: &[u8]| {
    let Ok(props) = properties::decode(data) else { return };
    let mut out = Vec::new();
    properties::encode(&props, &mut out);
    let again = properties::decode(&out).expect("our own encoding decodes");
    let mut sorted = props.clone();
    sorted.sort_by_key(|(t, _)| *t);
    let mut again_sorted = again;
    again_sorted.sort_by_key(|(t, _)| *t);
    assert_eq!(sorted, again_sorted);
});
