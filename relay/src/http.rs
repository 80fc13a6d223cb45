//! The relay's TCP side, on the same port number as its UDP side: the web
//! phone, `/certificate.sha256` for browsers' `serverCertificateHashes`,
//! Prometheus `/metrics`, sign-in (`/access`, `/login`; see [`crate::login`])
//! and the WebRTC gateway's signalling (`POST /webrtc`, `DELETE
//! /webrtc/<id>`; see `crate::webrtc::signal`; 501 without a gateway, which
//! the page reads as "no gateway here").

use crate::login::{Access, Login};
use crate::metrics::{rss_bytes, Snapshot};
use crate::state::Relay;
use crate::webrtc::Gateway;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use moq_certs::CertStore;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone)]
struct Ctx {
    relay: Arc<Relay>,
    certs: Arc<CertStore>,
    access: Access,
    login: Option<Arc<Login>>,
    gateway: Option<Arc<Gateway>>,
}

/// Both ends of the TCP connection a request came on: the peer (sign-in
/// throttling, the WebRTC gateway's per-address slot) and ours (the address
/// the browser reached, the gateway's ICE candidate when none is configured).
#[derive(Debug, Clone, Copy)]
pub struct TcpAddrs {
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>> for TcpAddrs {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        let peer = *stream.remote_addr();
        let local = stream.io().local_addr().unwrap_or(peer);
        TcpAddrs { peer, local }
    }
}

/// The TCP side's routes. Serve it with `into_make_service_with_connect_info::<TcpAddrs>()`:
/// `/login` throttles by source address, `/webrtc` needs both ends.
pub fn router(
    relay: Arc<Relay>,
    certs: Arc<CertStore>,
    webapp: Option<PathBuf>,
    access: Access,
    login: Option<Arc<Login>>,
    gateway: Option<Arc<Gateway>>,
) -> axum::Router {
    let app = axum::Router::new()
        .route("/certificate.sha256", get(fingerprint))
        .route("/metrics", get(metrics))
        .route("/access", get(access_mode))
        .route("/login", post(sign_in))
        .route("/webrtc", post(webrtc_offer).get(webrtc_ice_servers).options(webrtc_preflight))
        .route("/webrtc/{id}", delete(webrtc_delete).options(webrtc_preflight))
        .with_state(Ctx { relay, certs, access, login, gateway });
    match webapp {
        Some(dir) => app.fallback_service(tower_http::services::ServeDir::new(dir)),
        None => app.route("/", get(no_webapp)),
    }
}

async fn fingerprint(State(c): State<Ctx>) -> impl IntoResponse {
    // Fetched cross-origin by pages that dial this relay, and never cached:
    // the development certificate is renewed every few days.
    (
        [(header::CONTENT_TYPE, "text/plain"), (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"), (header::CACHE_CONTROL, "no-store")],
        c.certs.fingerprint(),
    )
}

async fn metrics(State(c): State<Ctx>) -> impl IntoResponse {
    let sessions = c.relay.sessions();
    let queued_bytes = sessions.iter().map(|s| s.outbound.queued_bytes() as u64).sum();
    let cache_bytes = c.relay.router().tracks().map(|t| t.cache_bytes() as u64).sum();
    let snap = Snapshot { queued_bytes, cache_bytes, rss_bytes: rss_bytes() };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], c.relay.metrics.render(&snap))
}

async fn access_mode(State(c): State<Ctx>) -> impl IntoResponse {
    crate::login::access(c.access, c.login.is_some())
}

async fn sign_in(State(c): State<Ctx>, ConnectInfo(tcp): ConnectInfo<TcpAddrs>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    crate::login::login(c.login.as_deref(), &c.relay.metrics, tcp.peer, &headers, &body).await
}

const NO_GATEWAY: &str = "this relay has no WebRTC gateway (built without it, --webrtc-max-peers 0, or its UDP port was taken)\n";

async fn webrtc_offer(
    State(c): State<Ctx>,
    ConnectInfo(tcp): ConnectInfo<TcpAddrs>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    match &c.gateway {
        #[cfg(feature = "webrtc")]
        Some(g) => g.offer(tcp.peer, tcp.local, &headers, uri.query(), &body),
        _ => {
            let _ = (tcp, headers, uri, body);
            (StatusCode::NOT_IMPLEMENTED, [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], NO_GATEWAY).into_response()
        }
    }
}

async fn webrtc_ice_servers(State(c): State<Ctx>, ConnectInfo(tcp): ConnectInfo<TcpAddrs>, headers: HeaderMap, uri: Uri) -> Response {
    match &c.gateway {
        #[cfg(feature = "webrtc")]
        Some(g) => g.ice_servers(tcp.peer, &headers, uri.query()),
        _ => {
            let _ = (tcp, headers, uri);
            (StatusCode::NOT_IMPLEMENTED, [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], NO_GATEWAY).into_response()
        }
    }
}

async fn webrtc_delete(State(c): State<Ctx>, Path(id): Path<String>) -> Response {
    let found = match &c.gateway {
        #[cfg(feature = "webrtc")]
        Some(g) => g.delete(&id),
        _ => {
            let _ = id;
            false
        }
    };
    let status = if found { StatusCode::OK } else { StatusCode::NOT_FOUND };
    (status, [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")]).into_response()
}

/// CORS preflight (the page may be served elsewhere than the relay):
/// `Authorization` and `Content-Type: application/sdp` are not simple headers.
async fn webrtc_preflight() -> impl IntoResponse {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, DELETE, OPTIONS"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "Authorization, Content-Type"),
            (header::ACCESS_CONTROL_EXPOSE_HEADERS, "Location"),
            (header::ACCESS_CONTROL_MAX_AGE, "600"),
        ],
    )
}

async fn no_webapp() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain")],
        "moq-relay is running, but the web phone was not found.\nBuild it (see README) or pass --webapp DIR.\n",
    )
}
