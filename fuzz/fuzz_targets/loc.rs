//! A LOC audio object (draft-ietf-moq-loc §2): properties and payload,
//! split where the first byte says.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let at = usize::from(split).min(rest.len());
    let (props, payload) = rest.split_at(at);
    if let Ok(f) = moq_wire::loc::decode(props, payload) {
        assert_eq!(f.opus, payload);
    }
});
