//! One UDP port, several ALPNs (draft-ietf-moq-transport-18 §3.1): `moqt-18`
//! and `moqt-22` for raw QUIC and `h3` for WebTransport, whose CONNECT must
//! offer one of those as a subprotocol (WT-Available-Protocols /
//! WT-Protocol). Both end up as the same web-transport-quinn `Session`,
//! handed to the session code as a [`Conn`] with the negotiated
//! [`Version`], so it does not care which transport.
//!
//! When a client offers both drafts the relay picks draft-18 (the order of
//! [`PREFERENCE`]): every peer here speaks it, and what the relay cannot do
//! at draft-22 yet is listed in docs/DRAFT22.md §0.3.

use crate::session::transport::Conn;
use crate::state::Relay;
use anyhow::Context;
use moq_certs::CertStore;
use moq_wire::Version;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use web_transport_quinn::proto::ConnectResponse;

/// The drafts the relay speaks, the one it picks first when offered both.
pub const PREFERENCE: [Version; 2] = [Version::Draft18, Version::Draft22];

/// Binds the UDP socket. `[::]` is dual-stack: IPv4 clients arrive as
/// v4-mapped addresses on the same port.
/// A connection silent for `idle` is gone (QUIC idle timeout, RFC 9000 §10.1;
/// the smaller of both sides' values applies).
pub fn endpoint(bind: SocketAddr, certs: Arc<CertStore>, idle: Duration) -> anyhow::Result<quinn::Endpoint> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(bind), socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if bind.is_ipv6() {
        // Dual-stack regardless of the host's net.ipv6.bindv6only default.
        socket.set_only_v6(false).context("enabling dual-stack (IPV6_V6ONLY=0)")?;
    }
    size_buffers(&socket);
    socket
        .bind(&bind.into())
        .with_context(|| format!("cannot bind UDP {bind}: is another relay running? pick another port with --bind"))?;
    // rustls picks the first of these the client offers.
    let tls = moq_certs::server_config(
        certs,
        &[web_transport_quinn::ALPN.as_bytes(), PREFERENCE[0].protocol().as_bytes(), PREFERENCE[1].protocol().as_bytes()],
    );
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).context("TLS config is not usable for QUIC")?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(idle.try_into().context("idle timeout out of range")?))
        // Grown per session as it is used (session::credit).
        .max_concurrent_bidi_streams(quinn::VarInt::from_u64(crate::session::credit::BIDI.0)?)
        .max_concurrent_uni_streams(quinn::VarInt::from_u64(crate::session::credit::UNI.0)?)
        .datagram_receive_buffer_size(Some(1 << 20))
        // After an outage of a listener's link, its first audio frame must
        // leave at once, not wait for a backed-off probe (quality.md §3.6).
        .congestion_controller_factory(crate::congestion::FloorFactory::for_calls());
    config.transport_config(Arc::new(transport));
    let runtime = quinn::default_runtime().context("no async runtime")?;
    quinn::Endpoint::new(quinn::EndpointConfig::default(), Some(config), socket.into(), runtime).context("creating QUIC endpoint")
}

/// Socket buffers for bursts: every party of every call shares this one UDP
/// socket, and the kernel's default 208 KiB receive buffer overflowed from
/// 150 calls while the relay still had CPU to spare (bench/RESULTS.md, "UDP
/// drops"). The kernel caps the request at net.core.rmem_max / wmem_max.
const SOCKET_BUFFER: usize = 4 << 20;

fn size_buffers(socket: &socket2::Socket) {
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    // Linux reports twice what it grants (bookkeeping overhead).
    let got = socket.recv_buffer_size().unwrap_or(0) / 2;
    if got < SOCKET_BUFFER / 2 {
        tracing::warn!(
            granted_kib = got >> 10,
            wanted_kib = SOCKET_BUFFER >> 10,
            "small UDP receive buffer: packets may drop under load; raise it with `sysctl -w net.core.rmem_max={SOCKET_BUFFER} net.core.wmem_max={SOCKET_BUFFER}`"
        );
    }
}

/// Accepts connections until the endpoint closes.
pub async fn accept(relay: Arc<Relay>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        // One host cannot take every session: refused before the handshake,
        // so an excess connection costs one packet (CONNECTION_REFUSED).
        let ip = incoming.remote_address().ip().to_canonical();
        let admitted =
            relay.per_address.lock().unwrap_or_else(|e| e.into_inner()).admit(ip, relay.limits.sessions_per_address, relay.limits.sessions);
        if let Err(cap) = admitted {
            relay.metrics.limit(cap.label());
            tracing::info!(%ip, limit = cap.label(), "connection refused: too many sessions");
            incoming.refuse();
            continue;
        }
        let relay = relay.clone();
        tokio::spawn(async move {
            let _release = AddressSlot { relay: relay.clone(), ip };
            // Boxed apart: the handshake's state is gone once the session runs.
            match tokio::time::timeout(relay.limits.handshake_timeout, Box::pin(handshake(incoming))).await {
                Ok(Ok((session, version, query))) => Box::pin(crate::session::run(relay, Conn::quic(session, version), query)).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "handshake failed"),
                Err(_) => tracing::debug!("handshake timed out"),
            }
        });
    }
}

/// The session, its draft, and the query of its WebTransport CONNECT URL
/// (where a browser puts `?token=`); a raw-QUIC session's URL travels in
/// SETUP's PATH.
async fn handshake(incoming: quinn::Incoming) -> anyhow::Result<(web_transport_quinn::Session, Version, Option<String>)> {
    let conn = incoming.await?;
    let alpn = conn
        .handshake_data()
        .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|h| h.protocol)
        .unwrap_or_default();
    if let Some(version) = Version::from_protocol(&alpn) {
        // Raw QUIC: stream and session error codes go on the wire as is.
        return Ok((web_transport_quinn::Session::raw(conn), version, None));
    }
    let request = web_transport_quinn::Request::accept(conn).await?;
    let offered = request.protocols.clone();
    let query = request.url.query().map(str::to_string);
    if offered.is_empty() {
        // No subprotocol offered (an older client): draft-18.
        return Ok((request.respond(ConnectResponse::OK).await?, Version::Draft18, query));
    }
    match PREFERENCE.into_iter().find(|v| offered.iter().any(|p| p == v.protocol())) {
        Some(version) => {
            let response = ConnectResponse::OK.with_protocol(version.protocol());
            Ok((request.respond(response).await?, version, query))
        }
        None => {
            request.reject(http::StatusCode::BAD_REQUEST).await?;
            anyhow::bail!("WebTransport client offered {offered:?}, none of moqt-18, moqt-22")
        }
    }
}

/// Gives a source address's session slot back when its connection ends.
struct AddressSlot {
    relay: Arc<Relay>,
    ip: std::net::IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        self.relay.per_address.lock().unwrap_or_else(|e| e.into_inner()).release(self.ip);
    }
}
