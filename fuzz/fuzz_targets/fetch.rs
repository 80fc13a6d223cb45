//! A FETCH response stream (draft-18 §11.4.4) in arbitrary pieces.
#![no_main]
use libfuzzer_sys::fuzz_target;
use moq_wire::fetch::FetchParser;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let step = usize::from(split).max(1);
    let mut p = FetchParser::new(64 * 1024);
    let mut header = false;
    for chunk in rest.chunks(step) {
        p.push(chunk);
        if !header {
            match p.header() {
                Ok(Some(_)) => header = true,
                Ok(None) => continue,
                Err(_) => return,
            }
        }
        loop {
            match p.next() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = p.finish();
});
