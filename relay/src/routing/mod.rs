//! The relay's routing core, sans-IO in the style of `quinn-proto` and
//! `str0m`: inputs are messages, objects, sessions gone and the current time;
//! outputs are items queued for sessions, phase changes and the deadlines it
//! wants to be called back at. Nothing here imports tokio or reads a clock, so
//! every rule (rendezvous timeout, the drain after PUBLISH_DONE, a subscriber
//! attaching mid-stream) is unit-tested with explicit time.
//!
//! - [`router`]: namespaces, tracks and namespace watches (§6.2, §9.4, §10.18);
//! - [`track`]: one track's upstream phase, subscribers and cache (§9.7);
//! - [`cache`]: the bounded per-track object cache behind FETCH (§10.12);
//! - [`outbound`]: each session's bounded outbound queue (§11.4.3);
//! - [`quota`]: per-session limits on open requests and request rate;
//! - [`catchup`]: cached objects re-sent to a late subscriber (§5.1.2);
//! - [`filter`]: which Locations a subscription's filter lets through (§5.1.2);
//! - [`signal`]: how the async shell learns that something changed.
//!
//! References are to draft-ietf-moq-transport-18.

pub mod cache;
pub mod catchup;
pub mod filter;
pub mod outbound;
pub mod quota;
pub mod router;
pub mod signal;
pub mod track;
