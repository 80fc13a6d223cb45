//! A SUBGROUP stream (draft-18 §11.4) arriving in arbitrary pieces: the first
//! byte picks the piece size, so the parser's resumption at every split point
//! is exercised. Memory stays bounded by the object-size cap.
#![no_main]
use libfuzzer_sys::fuzz_target;
use moq_wire::subgroup::SubgroupParser;

const MAX_OBJECT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let step = usize::from(split).max(1);
    let mut p = SubgroupParser::new(MAX_OBJECT);
    for chunk in rest.chunks(step) {
        p.push(chunk);
        loop {
            match p.next() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(p.buffered() <= MAX_OBJECT + rest.len().min(MAX_OBJECT) + 64, "parser buffers beyond its cap");
    }
    let _ = p.finish();
});
