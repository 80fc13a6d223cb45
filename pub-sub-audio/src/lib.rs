//! pub-sub-audio: phone calls as plain MoQ (see `docs/CALLS.md`).
//!
//! [`call`] is the call model as a sans-IO state machine: inputs (what was
//! seen on the relay, what the user did, the time) go in, outputs (what to
//! announce, publish and subscribe, what to show) come out. The async shell
//! that drives it over a MoQ session, and the audio path, live beside it.

pub mod audio;
pub mod call;
pub mod phone;
