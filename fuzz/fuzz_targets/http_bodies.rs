//! Bodies the relay's HTTP side takes from anyone: `POST /login`'s JSON
//! credentials, `POST /webrtc`'s SDP offer (our checks, then str0m's parser),
//! and the WebRTC gateway's JSON signals on the data channel
//! (docs/design/webrtc.md). The first byte picks which.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    match which % 3 {
        0 => {
            let _ = moq_relay::login::Credentials::parse(body);
        }
        1 => {
            let _ = moq_relay::webrtc::signal::parse_offer(body);
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(body) {
                let _ = moq_relay::webrtc::signals::GwMessage::parse(text);
            }
        }
    }
});
