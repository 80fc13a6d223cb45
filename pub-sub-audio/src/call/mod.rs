//! The call model of `docs/CALLS.md`.

pub mod address;
pub mod early;
pub mod event;
pub mod machine;
pub mod sequencer;

pub use address::{Address, AddressError, Namespaces};
pub use early::EarlyAudio;
pub use event::{Event, RejectReason};
pub use machine::{Call, EndReason, Input, Output, Role, State, Timers, UserAction};
pub use sequencer::EventSequencer;
