//! `POST /login` and `GET /access` on the relay's TCP side (issue 13): how
//! the web phone learns whether it must sign in, and trades a user name and
//! password from the users file for an access token signed with the relay's
//! key — the same token `moq-relay token` mints, so the relay's session
//! checks cannot tell the two apart.
//!
//! Passwords are argon2id (moq-auth `users`): ~20 MiB and tens of
//! milliseconds per check, so checks run off the async threads, two at a
//! time, and each source address gets a few attempts a minute ([`Throttle`]).
//! The users file is read at every sign-in: `moq-relay user add` takes
//! effect without a restart.

use crate::tokens::{mint, Mint};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use moq_auth::SigningKey;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Who may use the relay, as `GET /access` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Every session presents a valid token.
    Tokens,
    /// `--auth none`: anyone, as anyone.
    Open,
    /// No key and no `--auth none`: sessions from this machine only, so a
    /// first `moq-relay` works on a laptop without exposing it to the network.
    Loopback,
}

impl Access {
    pub fn name(self) -> &'static str {
        match self {
            Access::Tokens => "tokens",
            Access::Open => "open",
            Access::Loopback => "loopback",
        }
    }
}

/// Sign-in settings and state.
pub struct Login {
    pub users_file: PathBuf,
    pub key: SigningKey,
    /// Lifetime of the tokens handed out.
    pub ttl: Duration,
    pub issuer: String,
    pub audience: String,
    /// Accept passwords over plain HTTP from other machines.
    pub insecure_http: bool,
    throttle: Mutex<Throttle>,
    hashing: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").field("users_file", &self.users_file).field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl Login {
    pub fn new(users_file: PathBuf, key: SigningKey, ttl: Duration, issuer: String, audience: String, insecure_http: bool) -> Self {
        Self {
            users_file,
            key,
            ttl,
            issuer,
            audience,
            insecure_http,
            throttle: Mutex::new(Throttle::default()),
            // Two cores' worth: more would only queue inside argon2.
            hashing: tokio::sync::Semaphore::new(2),
        }
    }
}

/// Sign-in attempts per source address: a token bucket of [`Throttle::BURST`]
/// attempts refilled one per [`Throttle::REFILL`]. Pure bookkeeping; the
/// caller supplies the time.
#[derive(Debug, Default)]
pub struct Throttle {
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

impl Throttle {
    pub const BURST: f64 = 10.0;
    pub const REFILL: Duration = Duration::from_secs(6);
    /// Addresses tracked at once; beyond it, full buckets are forgotten first.
    const MAX_TRACKED: usize = 4096;

    /// Takes an attempt for `ip`, or says how long until the next one.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.buckets.len() >= Self::MAX_TRACKED && !self.buckets.contains_key(&ip) {
            self.buckets.retain(|_, (tokens, at)| Self::level(*tokens, *at, now) < Self::BURST);
            if self.buckets.len() >= Self::MAX_TRACKED {
                return Err(Self::REFILL);
            }
        }
        let (tokens, at) = self.buckets.entry(ip).or_insert((Self::BURST, now));
        let level = Self::level(*tokens, *at, now);
        if level < 1.0 {
            return Err(Self::REFILL.mul_f64(1.0 - level));
        }
        *tokens = level - 1.0;
        *at = now;
        Ok(())
    }

    fn level(tokens: f64, at: Instant, now: Instant) -> f64 {
        (tokens + now.saturating_duration_since(at).as_secs_f64() / Self::REFILL.as_secs_f64()).min(Self::BURST)
    }
}

/// The body of `POST /login`.
#[derive(serde::Deserialize)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    /// Parses the body (also the entry of fuzz/fuzz_targets/http_bodies.rs).
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body.to_string()).into_response()
}

fn error(status: StatusCode, text: &str) -> Response {
    json(status, serde_json::json!({ "error": text }))
}

/// `GET /access`: `{"mode": "tokens"|"open"|"loopback", "login": bool}`.
pub fn access(mode: Access, login: bool) -> Response {
    json(StatusCode::OK, serde_json::json!({ "mode": mode.name(), "login": login }))
}

/// The address a sign-in comes from: the peer, or, when the peer is a proxy
/// on this machine, the last address it appended to X-Forwarded-For.
fn client_ip(peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let ip = peer.ip().to_canonical();
    if !ip.is_loopback() {
        return ip;
    }
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    forwarded.and_then(|v| v.rsplit(',').next()).and_then(|v| v.trim().parse::<IpAddr>().ok()).unwrap_or(ip)
}

/// `POST /login` with `{"user","password"}`: 200 `{"token","user","expires"}`,
/// or an `{"error"}` with 400 / 401 / 403 / 404 / 429 / 500.
pub async fn login(
    login: Option<&Login>,
    metrics: &crate::metrics::Metrics,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let Some(login) = login else {
        metrics.login("not_configured");
        return error(
            StatusCode::NOT_FOUND,
            "this relay has no sign-in: start it with --users FILE --signing-key KEY (README, \"Access tokens\"), or use a token",
        );
    };
    let plain_remote = !peer.ip().to_canonical().is_loopback();
    let via_tls = headers.get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    if plain_remote && !via_tls && !login.insecure_http {
        metrics.login("insecure");
        return error(
            StatusCode::FORBIDDEN,
            "passwords are not taken over plain HTTP from another machine: put TLS in front of the relay (README, \"Deploying\") or start it with --login-insecure-http",
        );
    }
    let ip = client_ip(peer, headers);
    if let Err(wait) = login.throttle.lock().unwrap_or_else(|e| e.into_inner()).allow(ip, Instant::now()) {
        metrics.login("throttled");
        let mut r = error(StatusCode::TOO_MANY_REQUESTS, "too many sign-in attempts from your address; wait a minute and try again");
        r.headers_mut().insert(header::RETRY_AFTER, (wait.as_secs() + 1).into());
        return r;
    }
    let Some(creds) = Credentials::parse(body) else {
        metrics.login("bad_request");
        return error(StatusCode::BAD_REQUEST, "send JSON {\"user\": \"…\", \"password\": \"…\"}");
    };
    let users = match crate::users::load(&login.users_file) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot read the users file");
            metrics.login("users_file");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "the relay cannot read its users file; its log says why");
        }
    };
    let Ok(_permit) = login.hashing.acquire().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the relay is shutting down");
    };
    let name = creds.user.clone();
    let checked = tokio::task::spawn_blocking(move || users.check(&creds.user, &creds.password).map(|u| u.scope.clone())).await;
    let scope = match checked {
        Ok(Ok(scope)) => scope,
        Ok(Err(moq_auth::users::UsersError::WrongCredentials)) => {
            metrics.login("wrong_credentials");
            tracing::info!(%ip, "sign-in refused: wrong user name or password");
            return error(StatusCode::UNAUTHORIZED, "wrong user name or password");
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "users file entry is broken");
            metrics.login("users_file");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "the relay's users file has a broken entry; its log says which");
        }
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "password check failed"),
    };
    let rng = ring::rand::SystemRandom::new();
    let m =
        Mint { user: &name, scope: scope.as_deref().unwrap_or("calls"), ttl: login.ttl, issuer: &login.issuer, audience: &login.audience };
    match mint(&login.key, &m, crate::auth::unix_now(), &rng) {
        Ok(t) => {
            metrics.login("ok");
            tracing::info!(user = %name, "signed in");
            json(StatusCode::OK, serde_json::json!({ "token": t.token, "user": name, "expires": t.expires }))
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "minting a token failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "could not mint a token")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_refill_one_per_interval_and_addresses_are_apart() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..Throttle::BURST as usize {
            assert_eq!(t.allow(a, t0), Ok(()));
        }
        let wait = t.allow(a, t0).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Throttle::REFILL, "{wait:?}");
        assert_eq!(t.allow(b, t0), Ok(()));
        assert_eq!(t.allow(a, t0 + Throttle::REFILL), Ok(()));
        assert!(t.allow(a, t0 + Throttle::REFILL).is_err());
    }

    #[test]
    fn a_local_proxys_forwarded_address_is_the_client() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 198.51.100.7".parse().unwrap());
        assert_eq!(client_ip("127.0.0.1:5000".parse().unwrap(), &h), "198.51.100.7".parse::<IpAddr>().unwrap());
        // From another machine the header is the client's own claim: ignored.
        assert_eq!(client_ip("192.0.2.5:5000".parse().unwrap(), &h), "192.0.2.5".parse::<IpAddr>().unwrap());
    }
}
