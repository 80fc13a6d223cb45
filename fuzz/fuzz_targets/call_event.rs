//! Call events (docs/CALLS.md §5): JSON objects on a call's `events` track,
//! written by the far party — whoever that is. decode, and decode ∘ encode
//! is stable on what decoded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pub_sub_audio::call::event::Event;

fuzz_target!(|data: &[u8]| {
    let Ok(e) = Event::decode(data) else { return };
    // An event of an unknown type is kept for the caller to ignore (CALLS.md §5), never sent.
    if matches!(e, Event::Unknown(_)) {
        return;
    }
    let bytes = e.encode();
    let again = Event::decode(&bytes).expect("our own event decodes");
    assert_eq!(again.encode(), bytes);
});
