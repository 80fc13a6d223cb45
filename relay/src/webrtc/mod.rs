//! The WebRTC gateway (issue 14, docs/design/webrtc.md): browsers without a
//! working WebTransport run their MoQ session over data channels and send
//! and receive audio as RTP, and the relay attaches that session to its
//! routing core like any other.
//!
//! Sans-IO cores, like `routing/`: they take plain values (bytes, message
//! kinds, RTP times as `u64`) and return what to do, with no str0m types, no
//! tokio, no sockets and no clock, so they are unit-tested with explicit
//! inputs and shared with the TypeScript copy through
//! `docs/vectors/datachannel.json`:
//! - [`streams`]: "moq-dc/1" (design §2.3), MoQ streams and datagrams over
//!   data channels — who may send what, chunking, per-channel write queues,
//!   the receive budget, protocol violations; [`signals`] is its vocabulary
//!   (labels, text signals, `moq-gw` JSON).
//! - [`audio`]: RTP Opus ↔ LOC OBJECT_DATAGRAMs (design §3): what a
//!   WebTransport phone would send for the browser's RTP, and RTP for the
//!   datagrams of the subscription the browser listens to.
//!
//! The shell adapts str0m's events and types to these (behind the default
//! cargo feature `webrtc`, which brings str0m):
//! - [`mux`]: the one UDP socket, demultiplexed by ICE ufrag, then address;
//! - [`peer`]: one task per browser owning str0m's `Rtc`;
//! - [`dc`]: the session's handles (`Conn::Rtc` and its streams), commands
//!   to the peer task — no str0m types, so `session/transport.rs` names them
//!   whatever the features;
//! - [`signal`]: `POST /webrtc` / `DELETE /webrtc/<id>` / `GET /webrtc` (the
//!   [`ice_servers`] for the page) and the [`Gateway`].

pub mod audio;
pub mod dc;
pub mod ice_servers;
#[cfg(feature = "webrtc")]
pub mod mux;
#[cfg(feature = "webrtc")]
pub mod peer;
#[cfg(feature = "webrtc")]
pub mod signal;
pub mod signals;
pub mod streams;

#[cfg(feature = "webrtc")]
pub use signal::Gateway;

/// Built without the `webrtc` feature: there is no gateway.
#[cfg(not(feature = "webrtc"))]
pub enum Gateway {}

#[cfg(test)]
mod vectors;
