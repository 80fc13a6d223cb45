//! The audio path of a call (docs/CALLS.md §6): Opus 48 kHz mono 20 ms with
//! in-band FEC, LOC packaging, the playout controller and time-stretch
//! (docs/design/quality.md §3.3), WAV in and out.

pub mod adapt;
pub mod codec;
pub mod feedback;
pub mod playout;
pub mod stretch;
/// LOC packaging lives in moq-wire (the relay's WebRTC gateway writes it
/// too); re-exported so `audio::loc` keeps its name here.
pub use moq_wire::loc;
pub mod wav;

/// Samples per second on the wire and inside the phone.
pub const RATE: u32 = 48_000;
/// Samples per 20 ms frame.
pub const FRAME: usize = 960;
/// Frame duration in milliseconds.
pub const FRAME_MS: u64 = 20;
