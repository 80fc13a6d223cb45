//! The relay's TOML config file (`moq-relay --config FILE`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = moq_relay::config::File::parse(text);
    }
});
