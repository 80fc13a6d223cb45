//! A few hostile sessions beside the calls, over raw QUIC (ALPN moqt-18),
//! each one of the misbehaviours relay/tests/hostile.rs and stalls.rs pin
//! one at a time — here repeated for the whole soak, so what each leaves
//! behind in the relay (a session, a stream, a queue) would add up and show
//! in the samples. Each outcome is recorded as seen; relay/tests asserts the
//! codes, the soak reports them.

use bytes::BytesMut;
use moq_wire::message::{Message, Subscribe, SubscribeNamespace};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// SETUP, then bytes that are no control message (draft-18 §10).
    Garbage,
    /// A request stream whose message type does not exist (§10).
    UnknownRequest,
    /// A SUBSCRIBE claiming 65535 bytes, then FIN after 3.
    Truncated,
    /// QUIC up, SETUP never sent (the relay's handshake timeout).
    NoSetup,
    /// A request stream with the first bytes of a message, then silence
    /// (the relay's stall timeout).
    Partial,
    /// 20 request streams opened and never written, then left after 15 s.
    Abandoned,
    /// Watches `moq-phone/v1/users` (every registration of the churn is a
    /// NAMESPACE message to it) and never reads a byte, for the whole soak.
    NeverReads,
}

impl Kind {
    /// The short-lived kinds, started in turn through the soak.
    pub const ROTATION: [Kind; 6] = [Kind::Garbage, Kind::UnknownRequest, Kind::Truncated, Kind::NoSetup, Kind::Partial, Kind::Abandoned];

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Garbage => "garbage after SETUP on the control stream",
            Kind::UnknownRequest => "request stream with an unknown message type",
            Kind::Truncated => "SUBSCRIBE claiming 65535 bytes, FIN after 3",
            Kind::NoSetup => "QUIC handshake, SETUP never sent",
            Kind::Partial => "3 bytes of a request, then silence",
            Kind::Abandoned => "20 request streams opened, never written, then a SUBSCRIBE; left after 15 s",
            Kind::NeverReads => "watches the users namespace, never reads (whole run)",
        }
    }
}

/// A QUIC client endpoint speaking moqt-18 that accepts the relay's
/// throwaway certificate.
pub fn endpoint() -> anyhow::Result<quinn::Endpoint> {
    let tls = moq_client::Tls::DisableVerify.client_config(moq_client::MOQT_ALPN.as_bytes())?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    ep.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    Ok(ep)
}

fn setup_bytes() -> Vec<u8> {
    let mut b = BytesMut::new();
    // A SETUP with no options always encodes.
    let _ = moq_wire::setup::Setup { params: Default::default() }.encode_full(&mut b);
    b.to_vec()
}

/// How the relay ended a session, or that it did not within `within`.
async fn closed(conn: &quinn::Connection, within: Duration) -> String {
    match tokio::time::timeout(within, conn.closed()).await {
        Ok(quinn::ConnectionError::ApplicationClosed(c)) => format!("closed by the relay, code {:#x}", c.error_code.into_inner()),
        Ok(other) => format!("ended: {other}"),
        Err(_) => format!("still open after {} s", within.as_secs()),
    }
}

/// Runs one short-lived hostile session to its end; returns what happened.
pub async fn run(ep: &quinn::Endpoint, relay: std::net::SocketAddr, kind: Kind) -> String {
    match session(ep, relay, kind).await {
        Ok(s) => s,
        Err(e) => format!("failed before misbehaving: {e}"),
    }
}

async fn connect(ep: &quinn::Endpoint, relay: std::net::SocketAddr, setup: bool) -> anyhow::Result<(quinn::Connection, quinn::SendStream)> {
    let conn = tokio::time::timeout(Duration::from_secs(10), ep.connect(relay, "localhost")?).await??;
    let mut ctl = conn.open_uni().await?;
    if setup {
        ctl.write_all(&setup_bytes()).await?;
    }
    Ok((conn, ctl))
}

async fn session(ep: &quinn::Endpoint, relay: std::net::SocketAddr, kind: Kind) -> anyhow::Result<String> {
    let wait = Duration::from_secs(30);
    let (conn, mut ctl) = connect(ep, relay, kind != Kind::NoSetup).await?;
    let out = match kind {
        Kind::Garbage => {
            ctl.write_all(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02]).await?;
            closed(&conn, wait).await
        }
        Kind::UnknownRequest => {
            let (mut send, _recv) = conn.open_bi().await?;
            send.write_all(&[0x3f, 0x00, 0x01, 0x00]).await?;
            closed(&conn, wait).await
        }
        Kind::Truncated => {
            let (mut send, _recv) = conn.open_bi().await?;
            send.write_all(&[0x03, 0xff, 0xff, 0x00, 0x01, 0x02]).await?;
            send.finish()?;
            closed(&conn, wait).await
        }
        Kind::NoSetup => closed(&conn, wait).await,
        Kind::Partial => {
            let (mut send, _recv) = conn.open_bi().await?;
            send.write_all(&[0x03, 0x00, 0x40]).await?;
            closed(&conn, wait).await
        }
        Kind::Abandoned => {
            let mut idle = Vec::new();
            for _ in 0..20 {
                idle.push(conn.open_bi().await?);
            }
            // Empty streams reach the relay when a later one of their kind
            // carries a frame (RFC 9000 §3.2): a uni PADDING stream
            // (§11.5.1), and a SUBSCRIBE to a track nobody publishes.
            let _idle_uni = conn.open_uni().await?;
            let mut padding = conn.open_uni().await?;
            let mut b = Vec::new();
            moq_wire::varint::write(&mut b, 0x132B3E28);
            padding.write_all(&b).await?;
            let probe = Message::Subscribe(Subscribe {
                id: 0,
                track_namespace: moq_wire::coding::TrackNamespace::from_utf8_path("soak/none"),
                track_name: "t".into(),
                params: Default::default(),
            });
            let (mut last, _r) = conn.open_bi().await?;
            last.write_all(&moq_wire::control::encode_request(&probe)?).await?;
            tokio::time::sleep(Duration::from_secs(15)).await;
            let mut stopped = 0;
            for (send, _) in idle.iter_mut() {
                if matches!(tokio::time::timeout(Duration::from_millis(10), send.stopped()).await, Ok(Ok(Some(_)))) {
                    stopped += 1;
                }
            }
            let state = match conn.close_reason() {
                None => "session up".to_string(),
                Some(quinn::ConnectionError::ApplicationClosed(c)) => format!("closed by the relay, code {:#x}", c.error_code.into_inner()),
                Some(e) => format!("ended: {e}"),
            };
            conn.close(0u32.into(), b"leaving");
            format!("{state} after 15 s, {stopped}/20 idle streams stopped by the relay")
        }
        Kind::NeverReads => unreachable!("NeverReads is started by never_reads()"),
    };
    conn.close(0u32.into(), b"done");
    Ok(out)
}

/// The session that never reads, with its streams held (not read, not
/// reset) so the relay's writes to it back up. Dropping it closes it.
pub struct Deaf {
    pub conn: quinn::Connection,
    _streams: (quinn::SendStream, quinn::SendStream, quinn::RecvStream),
}

/// Sets up the session that never reads, watching the users namespace;
/// [`outcome`] says whether the relay ended it before the soak did.
pub async fn never_reads(ep: &quinn::Endpoint, relay: std::net::SocketAddr) -> anyhow::Result<Deaf> {
    let (conn, ctl) = connect(ep, relay, true).await?;
    let (mut send, recv) = conn.open_bi().await?;
    let watch = Message::SubscribeNamespace(SubscribeNamespace {
        id: 0,
        track_namespace_prefix: moq_wire::coding::TrackNamespacePrefix::from_utf8_path("moq-phone/v1/users"),
        params: Default::default(),
    });
    send.write_all(&moq_wire::control::encode_request(&watch)?).await?;
    Ok(Deaf { conn, _streams: (ctl, send, recv) })
}

/// What became of the never-reading session by the end of the soak.
pub fn outcome(conn: &quinn::Connection) -> String {
    match conn.close_reason() {
        None => "still open at the end (the relay kept it)".into(),
        Some(quinn::ConnectionError::ApplicationClosed(c)) => format!("closed by the relay, code {:#x}", c.error_code.into_inner()),
        Some(e) => format!("ended: {e}"),
    }
}
