//! moq-relay: a draft-ietf-moq-transport-18 relay for moq-phone.
//!
//! The routing core ([`routing`]) decides; it holds no sockets, no tokio
//! types and reads no clock (time is an input). [`session`], [`server`],
//! [`state`] and [`http`] are the async shell that moves bytes and time into
//! it and carries out what it decides. Wire formats come from `moq-wire`.

pub mod auth;
pub mod config;
/// The congestion-controller floor of call sessions (docs/design/quality.md
/// §3.6), one source with moq-client's, which the relay does not otherwise
/// depend on.
#[path = "../../client/src/congestion.rs"]
pub mod congestion;
pub mod http;
pub mod login;
pub mod metrics;
pub mod routing;
pub mod server;
pub mod session;
pub mod state;
pub mod tokens;
pub mod users;
pub mod webrtc;
use moq_wire as wire;

use anyhow::Context;
use config::Config;
use login::Access;
use moq_certs::{CertSource, CertStore};
use state::Relay;
use std::sync::Arc;
use std::time::SystemTime;

/// Runs the relay until SIGTERM / SIGINT, then drains with GOAWAY.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let source = CertSource::from_flags(config.tls_cert.clone(), config.tls_key.clone())?;
    let generated = config.tls_cert.is_none();
    let certs = Arc::new(CertStore::from_source(source).context("loading the TLS certificate")?);
    let relay = Relay::with_access(config.limits.clone(), config.auth.clone(), config.access);

    let endpoint = server::endpoint(config.bind, certs.clone(), config.limits.idle_timeout)?;
    let tcp = tokio::net::TcpListener::bind(config.bind).await.with_context(|| {
        format!("cannot bind TCP {} for the web phone: is another process using it? pick another port with --bind", config.bind)
    })?;
    #[cfg(feature = "webrtc")]
    let gateway = webrtc::Gateway::start(relay.clone(), config.webrtc.clone())?;
    #[cfg(not(feature = "webrtc"))]
    let gateway: Option<Arc<webrtc::Gateway>> = None;
    let app = http::router(relay.clone(), certs.clone(), config.webapp.clone(), config.access, config.login.clone(), gateway.clone())
        .into_make_service_with_connect_info::<http::TcpAddrs>();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(tcp, app).await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    tokio::spawn(server::accept(relay.clone(), endpoint.clone()));
    // Signal handlers exist before the banner says the relay is up: whoever
    // waits for the banner (a supervisor, a test) may send SIGTERM or SIGHUP
    // at once, and an unhandled SIGTERM would kill the relay without GOAWAY.
    let shutdown = Shutdown::install()?;
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("installing the SIGHUP handler")?;
    tokio::spawn(maintain_certificate(certs.clone(), hup));

    let port = endpoint.local_addr()?.port();
    println!("moq-relay (draft-ietf-moq-transport-18) on UDP+TCP {}", config.bind);
    println!("  web phone:     http://localhost:{port}/");
    println!("  WebTransport:  https://localhost:{port}/   (subprotocol moqt-18)");
    println!("  raw QUIC:      moqt://localhost:{port}/    (ALPN moqt-18)");
    println!(
        "  certificate:   {} sha256 {}  (GET /certificate.sha256)",
        if generated { "generated, renews itself;" } else { "from files, reload with SIGHUP;" },
        certs.fingerprint()
    );
    match (&config.auth, config.access) {
        (Some(a), _) => println!("  access:        tokens required ({} key(s); mint with `moq-relay token`)", a.verifier.keys.len()),
        (None, Access::Open) => {
            println!("  access:        OPEN (--auth none): anyone who reaches this relay can register as anyone");
            tracing::warn!(
                "--auth none: the relay checks no tokens; anyone who reaches it can register as any user and answer their calls"
            );
        }
        (None, _) => {
            println!("  access:        THIS MACHINE ONLY: no --auth-key, so sessions from other machines are refused");
            println!("                 (deploying: README \"Access tokens\"; or --auth none to open it to anyone)");
            tracing::warn!("no --auth-key: only clients on this machine may use the relay, as any user");
        }
    }
    match &gateway {
        #[cfg(feature = "webrtc")]
        Some(g) => println!(
            "  WebRTC:        POST /webrtc, UDP {} (ICE-lite; up to {} browsers)",
            g.local_addr().map_or_else(|_| config.webrtc.bind.to_string(), |a| a.to_string()),
            config.webrtc.max_peers
        ),
        _ => println!("  WebRTC:        off (browsers without WebTransport cannot call through this relay)"),
    }
    if let Some(l) = &config.login {
        println!("  sign-in:       POST /login with the users in {} (tokens valid {} s)", l.users_file.display(), l.ttl.as_secs());
    }
    match &config.webapp {
        Some(dir) => println!("  serving:       {}", dir.display()),
        None => println!("  note: no webapp/ directory found; pass --webapp DIR to serve the web phone"),
    }

    shutdown.wait().await;
    tracing::info!("shutting down: GOAWAY to all sessions");
    relay.going_away.send_replace(true);
    for s in relay.sessions() {
        s.go_away(config.drain).await;
    }
    let deadline = tokio::time::Instant::now() + config.drain;
    while !relay.sessions().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    endpoint.close(0u32.into(), b"relay shutting down");
    endpoint.wait_idle().await;
    Ok(())
}

/// SIGTERM and SIGINT, registered up front (see [`run`]).
struct Shutdown {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Shutdown {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
    }
}

/// Renews the generated certificate before it expires and reloads PEM files
/// on SIGHUP, without dropping sessions (new handshakes see the new one).
async fn maintain_certificate(certs: Arc<CertStore>, mut hup: tokio::signal::unix::Signal) {
    loop {
        let wait = certs.next_check(SystemTime::now());
        tokio::select! {
            _ = tokio::time::sleep(wait) => match certs.renew_if_due(SystemTime::now()) {
                Ok(true) => tracing::info!(sha256 = %certs.fingerprint(), "certificate renewed"),
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "certificate renewal failed"),
            },
            _ = hup.recv() => match certs.reload() {
                Ok(()) => tracing::info!(sha256 = %certs.fingerprint(), "certificate reloaded"),
                Err(e) => tracing::error!(error = %e, "certificate reload failed; keeping the old one"),
            },
        }
    }
}
