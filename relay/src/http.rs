//! The relay's TCP side, on the same port number as its UDP side: the web
//! phone, `/certificate.sha256` for browsers' `serverCertificateHashes`,
//! Prometheus `/metrics`, and sign-in (`/access`, `/login`; see [`crate::login`]).

use crate::login::{Access, Login};
use crate::metrics::{rss_bytes, Snapshot};
use crate::state::Relay;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::routing::{get, post};
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
}

/// The TCP side's routes. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`:
/// `/login` throttles by source address.
pub fn router(
    relay: Arc<Relay>,
    certs: Arc<CertStore>,
    webapp: Option<PathBuf>,
    access: Access,
    login: Option<Arc<Login>>,
) -> axum::Router {
    let app = axum::Router::new()
        .route("/certificate.sha256", get(fingerprint))
        .route("/metrics", get(metrics))
        .route("/access", get(access_mode))
        .route("/login", post(sign_in))
        .with_state(Ctx { relay, certs, access, login });
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

async fn sign_in(State(c): State<Ctx>, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    crate::login::login(c.login.as_deref(), &c.relay.metrics, peer, &headers, &body).await
}

async fn no_webapp() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain")],
        "moq-relay is running, but the web phone was not found.\nBuild it (see README) or pass --webapp DIR.\n",
    )
}
