//! chan_moq's `moq.conf` (Asterisk's INI dialect; chan_moq/README.md): read
//! at module load inside the PBX, where a panic would take Asterisk down.
//!
//! chan_moq's library refers to Asterisk's symbols, which only a running
//! Asterisk provides, so the target compiles the parser's own file (it
//! depends on nothing else in chan_moq) instead of linking the crate.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../chan_moq/src/driver/conf.rs"]
mod conf;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = conf::Config::parse(text);
    }
});
