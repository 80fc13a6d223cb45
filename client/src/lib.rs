//! moq-client: an async MoQT client for draft-ietf-moq-transport-18 — connect
//! over raw QUIC or WebTransport, publish, subscribe, fetch, datagrams.
//!
//! Every byte it reads or writes goes through [`moq_wire`], the one protocol
//! vocabulary the relay uses too, so what it sends is what the relay parses,
//! and vice versa. It links no server code: the phone library, the Asterisk
//! module, the conformance client and the bench build on it.
//!
//! ```no_run
//! # async fn demo() -> moq_client::Result<()> {
//! use moq_client::{Client, SubscribeParams, Tls};
//! use moq_wire::coding::TrackNamespace;
//! let url = "moqt://127.0.0.1:4443".parse().unwrap();
//! let publisher = Client::connect(&url, &Tls::DisableVerify).await?;
//! let subscriber = Client::connect(&url, &Tls::DisableVerify).await?;
//! let ns = TrackNamespace::from_utf8_path("example/room");
//! let _announced = publisher.publish_namespace(&ns).await?;
//! let (sub, incoming) = tokio::join!(
//!     subscriber.subscribe(&ns, "audio", SubscribeParams::new()),
//!     publisher.accept_subscribe(std::time::Duration::from_secs(2)),
//! );
//! let track = incoming?.accept(1).await?;
//! let mut sub = sub?;
//! track.send_group(0, &[bytes::Bytes::from_static(b"hello")]).await?;
//! let object = sub.next_object(std::time::Duration::from_secs(2)).await?;
//! assert_eq!(&object.payload[..], b"hello");
//! # Ok(()) }
//! ```
//!
//! Layout:
//! - [`connect`]: QUIC / WebTransport and the SETUP exchange (§3.1, §3.3, §10.3);
//! - [`session`]: the session handle and object routing by Track Alias (§11.1);
//! - [`dispatch`]: background tasks for incoming streams and datagrams (§3.4, §11);
//! - [`stream`]: request streams (§3.3, §10);
//! - [`subscriber`], [`publisher`]: the two roles (§5, §6, §10);
//! - [`object`], [`fetch`]: data-plane encoding and parsing (§11.3, §11.4);
//! - [`tls`], [`error`].

mod budget;
pub mod congestion;
pub mod connect;
mod dispatch;
pub mod error;
pub mod fetch;
pub mod object;
pub mod publisher;
pub mod session;
pub mod stream;
pub mod subscriber;
pub mod tls;

pub use connect::{token_from_text, Client, Options, MOQT_ALPN};
pub use error::{Error, RequestError, Result};
pub use fetch::{FetchItem, Fetched, FetchedObject};
pub use object::{Carrier, DatagramSpec, Object, SubgroupSpec, SubgroupWriter};
pub use publisher::{IncomingFetch, IncomingSubscribe, PublisherRequest, RequestHandle, TrackPublisher};
pub use session::{GoAway, IncomingRequest, Session, Transport};
pub use stream::RequestStream;
pub use subscriber::{Delivery, NamespaceEvent, NamespaceSubscription, SubscribeParams, Subscription};
pub use tls::Tls;
