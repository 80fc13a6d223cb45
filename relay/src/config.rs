//! Command line, environment and optional TOML configuration.
//! Precedence: command line / environment, then the TOML file, then defaults.

use crate::state::Limits;
use crate::webrtc::ice_servers::IceServers;
use clap::Parser;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug, Clone, Default)]
#[command(
    name = "moq-relay",
    version,
    about = "MoQ relay (draft-ietf-moq-transport-18) for moq-phone: raw QUIC and WebTransport on one UDP port"
)]
pub struct Args {
    /// UDP (MoQT) and TCP (web phone, /certificate.sha256, /metrics) address. [default: [::]:4443]
    #[arg(long, env = "MOQ_RELAY_BIND")]
    pub bind: Option<SocketAddr>,
    /// PEM certificate chain; without it a ≤14-day development certificate is generated.
    #[arg(long, env = "MOQ_RELAY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert (reloaded with the certificate on SIGHUP).
    #[arg(long, env = "MOQ_RELAY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Directory with the built web phone. [default: webapp/dist next to the binary's workspace]
    #[arg(long, env = "MOQ_RELAY_WEBAPP")]
    pub webapp: Option<PathBuf>,
    /// TOML file with any of these settings (names with underscores).
    #[arg(long, env = "MOQ_RELAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Seconds between GOAWAY and closing the remaining sessions on SIGTERM. [default: 5]
    #[arg(long, env = "MOQ_RELAY_DRAIN_SECS")]
    pub drain_secs: Option<u64>,
    /// Largest object accepted, in bytes. [default: 1048576]
    #[arg(long, env = "MOQ_RELAY_MAX_OBJECT_SIZE")]
    pub max_object_size: Option<usize>,
    /// Outbound queue per session, in bytes. [default: 1048576]
    #[arg(long, env = "MOQ_RELAY_SESSION_QUEUE_BYTES")]
    pub session_queue_bytes: Option<usize>,
    /// Groups kept per track for FETCH. [default: 32]
    #[arg(long, env = "MOQ_RELAY_CACHE_GROUPS")]
    pub cache_groups: Option<usize>,
    /// Bytes kept per track for FETCH. [default: 262144]
    #[arg(long, env = "MOQ_RELAY_CACHE_BYTES")]
    pub cache_bytes: Option<usize>,
    /// Milliseconds a peer has to send SETUP, a request or a stream header. [default: 10000]
    #[arg(long, env = "MOQ_RELAY_HANDSHAKE_TIMEOUT_MS")]
    pub handshake_timeout_ms: Option<u64>,
    /// Milliseconds a stream header, object or control message begun and not finished may wait
    /// for its next bytes (then DATA_STREAM_TIMEOUT / CONTROL_MESSAGE_TIMEOUT). [default: 5000]
    #[arg(long, env = "MOQ_RELAY_STALL_TIMEOUT_MS")]
    pub stall_timeout_ms: Option<u64>,
    /// Subscriptions (SUBSCRIBE, FETCH, TRACK_STATUS) a session may hold open. [default: 4096]
    #[arg(long, env = "MOQ_RELAY_MAX_SUBSCRIPTIONS")]
    pub max_subscriptions: Option<usize>,
    /// Namespaces a session may announce (PUBLISH_NAMESPACE). [default: 1024]
    #[arg(long, env = "MOQ_RELAY_MAX_NAMESPACES")]
    pub max_namespaces: Option<usize>,
    /// SUBSCRIBE_NAMESPACE / SUBSCRIBE_TRACKS a session may hold open. [default: 64]
    #[arg(long, env = "MOQ_RELAY_MAX_NAMESPACE_WATCHES")]
    pub max_namespace_watches: Option<usize>,
    /// Tracks a session may PUBLISH. [default: 4096]
    #[arg(long, env = "MOQ_RELAY_MAX_PUBLISHED_TRACKS")]
    pub max_published_tracks: Option<usize>,
    /// New requests per second a session may send, sustained. [default: 500]
    #[arg(long, env = "MOQ_RELAY_MAX_REQUESTS_PER_SEC")]
    pub max_requests_per_sec: Option<u32>,
    /// New requests a session may send at once above that rate. [default: 1000]
    #[arg(long, env = "MOQ_RELAY_REQUEST_BURST")]
    pub request_burst: Option<u32>,
    /// Sessions open at once from one source address (a NAT can hide many phones). [default: 256]
    #[arg(long, env = "MOQ_RELAY_MAX_SESSIONS_PER_ADDRESS")]
    pub max_sessions_per_address: Option<usize>,
    /// Sessions open at once in total, from every address (each costs ~40 KB even idle). [default: 10000]
    #[arg(long, env = "MOQ_RELAY_MAX_SESSIONS")]
    pub max_sessions: Option<usize>,
    /// Public key (PEM, from `moq-relay keygen`) whose tokens the relay accepts; repeat for
    /// rotation. Without one the relay checks no tokens and anyone may use it.
    #[arg(long = "auth-key", env = "MOQ_RELAY_AUTH_KEY", value_delimiter = ',')]
    pub auth_key: Vec<PathBuf>,
    /// Accept only tokens from this issuer (`iss`). [default: any]
    #[arg(long, env = "MOQ_RELAY_AUTH_ISSUER")]
    pub auth_issuer: Option<String>,
    /// Accept only tokens for this audience (`aud`). [default: any]
    #[arg(long, env = "MOQ_RELAY_AUTH_AUDIENCE")]
    pub auth_audience: Option<String>,

    /// Seconds of silence after which a session is gone (QUIC idle timeout; clients that
    /// stay longer send keep-alives). [default: 30]
    #[arg(long, env = "MOQ_RELAY_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Seconds a session may stay after its token expires: GOAWAY at expiry, then
    /// EXPIRED_AUTH_TOKEN. [default: 600]
    #[arg(long, env = "MOQ_RELAY_TOKEN_GRACE_SECS")]
    pub token_grace_secs: Option<u64>,
    /// Seconds of clock difference allowed between token issuer and relay: a
    /// token counts from `nbf` minus this until `exp` plus this. [default: 60]
    #[arg(long, env = "MOQ_RELAY_TOKEN_SKEW_SECS")]
    pub token_skew_secs: Option<u64>,
    /// `none`: anyone may use the relay as anyone (no tokens). Without it and without
    /// --auth-key / --signing-key, only clients on this machine may connect.
    #[arg(long, env = "MOQ_RELAY_AUTH", value_parser = ["none"])]
    pub auth: Option<String>,
    /// Users who may sign in at POST /login (from `moq-relay user add`); needs --signing-key.
    #[arg(long, env = "MOQ_RELAY_USERS")]
    pub users: Option<PathBuf>,
    /// Private key (from `moq-relay keygen`) that signs /login's tokens; its public half is
    /// accepted like an --auth-key.
    #[arg(long, env = "MOQ_RELAY_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
    /// Lifetime of the tokens /login hands out, e.g. 30m, 12h, 7d. [default: 12h]
    #[arg(long, env = "MOQ_RELAY_LOGIN_TTL", value_parser = crate::tokens::parse_ttl)]
    pub login_ttl: Option<Duration>,
    /// Take passwords over plain HTTP from other machines (only on a network you trust;
    /// otherwise put TLS in front and let it set X-Forwarded-Proto: https).
    #[arg(long, env = "MOQ_RELAY_LOGIN_INSECURE_HTTP")]
    pub login_insecure_http: bool,

    /// UDP address of the WebRTC gateway (POST /webrtc; ICE-lite, one port for every
    /// browser on it). [default: --bind's address, port + 1]
    #[arg(long, env = "MOQ_RELAY_WEBRTC_BIND")]
    pub webrtc_bind: Option<SocketAddr>,
    /// An IP browsers reach the relay at, offered as the gateway's ICE host candidate
    /// (repeat; a public or NAT address). [default: --webrtc-bind's IP if specific, else
    /// the address the browser's POST /webrtc arrived on]
    #[arg(long = "webrtc-candidate", env = "MOQ_RELAY_WEBRTC_CANDIDATE", value_delimiter = ',')]
    pub webrtc_candidate: Vec<IpAddr>,
    /// Browsers on the WebRTC gateway at once; 0 turns the gateway off. [default: 256]
    #[arg(long, env = "MOQ_RELAY_WEBRTC_MAX_PEERS")]
    pub webrtc_max_peers: Option<usize>,
    /// Seconds a browser has after its offer to complete ICE and DTLS. [default: 30]
    #[arg(long, env = "MOQ_RELAY_WEBRTC_ICE_TIMEOUT_SECS")]
    pub webrtc_ice_timeout_secs: Option<u64>,
    /// A STUN or TURN server for browsers on the gateway (repeat): stun:HOST[:PORT],
    /// turn:HOST[:PORT][?transport=tcp], turns:HOST:443?transport=tcp. The page gets them
    /// from GET /webrtc; TURN lets browsers on networks that block UDP reach the gateway.
    #[arg(long = "webrtc-ice-server", env = "MOQ_RELAY_WEBRTC_ICE_SERVER", value_delimiter = ',')]
    pub webrtc_ice_server: Vec<String>,
    /// File holding the TURN server's shared secret (coturn: use-auth-secret,
    /// static-auth-secret): pages get 24-hour TURN credentials made with it.
    #[arg(long, env = "MOQ_RELAY_WEBRTC_TURN_SECRET_FILE")]
    pub webrtc_turn_secret_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<crate::tokens::Command>,
}

/// The relay's TOML config file (`--config`); every key is optional and a
/// flag given on the command line wins over it.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct File {
    bind: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    webapp: Option<PathBuf>,
    drain_secs: Option<u64>,
    max_object_size: Option<usize>,
    session_queue_bytes: Option<usize>,
    cache_groups: Option<usize>,
    cache_bytes: Option<usize>,
    handshake_timeout_ms: Option<u64>,
    stall_timeout_ms: Option<u64>,
    auth_key: Option<Vec<PathBuf>>,
    max_subscriptions: Option<usize>,
    max_namespaces: Option<usize>,
    max_namespace_watches: Option<usize>,
    max_published_tracks: Option<usize>,
    max_requests_per_sec: Option<u32>,
    request_burst: Option<u32>,
    max_sessions_per_address: Option<usize>,
    max_sessions: Option<usize>,
    auth_issuer: Option<String>,
    auth_audience: Option<String>,
    auth: Option<String>,
    token_grace_secs: Option<u64>,
    token_skew_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    users: Option<PathBuf>,
    signing_key: Option<PathBuf>,
    login_ttl: Option<String>,
    login_insecure_http: Option<bool>,
    webrtc_bind: Option<SocketAddr>,
    webrtc_candidate: Option<Vec<IpAddr>>,
    webrtc_max_peers: Option<usize>,
    webrtc_ice_timeout_secs: Option<u64>,
    webrtc_ice_server: Option<Vec<String>>,
    webrtc_turn_secret_file: Option<PathBuf>,
}

/// The WebRTC gateway's settings (issue 14, docs/design/webrtc.md §2.4).
#[derive(Debug, Clone)]
pub struct Webrtc {
    /// The gateway's one UDP socket.
    pub bind: SocketAddr,
    /// `bind` was given: failing to bind it is fatal. A defaulted port that is
    /// taken only turns the gateway off (with a warning), so a relay started
    /// next to another process on port + 1 still serves QUIC.
    pub bind_explicit: bool,
    /// Host candidates to offer (RFC 8445 §5.1.1.1), with the gateway's port.
    pub candidates: Vec<IpAddr>,
    /// Peers at once; 0: no gateway.
    pub max_peers: usize,
    /// From the offer to ICE + DTLS up. str0m never gives up on an ICE-lite
    /// agent whose peer sent no candidate and no check (design §2.4).
    pub ice_timeout: Duration,
    /// STUN/TURN servers for the page (`GET /webrtc`).
    pub ice_servers: IceServers,
}

impl Webrtc {
    /// The default gateway port: the QUIC port + 1 (0, an ephemeral port,
    /// when the QUIC port is 0 or 65535).
    pub fn default_bind(quic: SocketAddr) -> SocketAddr {
        let port = if quic.port() == 0 { 0 } else { quic.port().checked_add(1).unwrap_or(0) };
        SocketAddr::new(quic.ip(), port)
    }
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub webapp: Option<PathBuf>,
    pub drain: Duration,
    pub limits: Limits,
    pub auth: Option<crate::auth::Auth>,
    /// Who may connect when `auth` is `None`.
    pub access: crate::login::Access,
    /// `POST /login`, when a users file and a signing key are given.
    pub login: Option<std::sync::Arc<crate::login::Login>>,
    pub webrtc: Webrtc,
}

impl File {
    /// Parses the file's text (also the entry of fuzz/fuzz_targets/relay_config.rs).
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}

impl Args {
    pub fn resolve(self) -> anyhow::Result<Config> {
        let file: File = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", p.display()))?;
                File::parse(&text).map_err(|e| anyhow::anyhow!("invalid config {}: {e}", p.display()))?
            }
            None => File::default(),
        };
        let d = Limits::default();
        let limits = Limits {
            max_object_size: self.max_object_size.or(file.max_object_size).unwrap_or(d.max_object_size),
            session_queue_bytes: self.session_queue_bytes.or(file.session_queue_bytes).unwrap_or(d.session_queue_bytes),
            cache_groups: self.cache_groups.or(file.cache_groups).unwrap_or(d.cache_groups),
            cache_bytes: self.cache_bytes.or(file.cache_bytes).unwrap_or(d.cache_bytes),
            handshake_timeout: self
                .handshake_timeout_ms
                .or(file.handshake_timeout_ms)
                .map(Duration::from_millis)
                .unwrap_or(d.handshake_timeout),
            stall_timeout: self.stall_timeout_ms.or(file.stall_timeout_ms).map(Duration::from_millis).unwrap_or(d.stall_timeout),
            quota: crate::routing::quota::QuotaLimits {
                subscriptions: self.max_subscriptions.or(file.max_subscriptions).unwrap_or(d.quota.subscriptions),
                namespaces: self.max_namespaces.or(file.max_namespaces).unwrap_or(d.quota.namespaces),
                watches: self.max_namespace_watches.or(file.max_namespace_watches).unwrap_or(d.quota.watches),
                tracks: self.max_published_tracks.or(file.max_published_tracks).unwrap_or(d.quota.tracks),
                requests_per_sec: self.max_requests_per_sec.or(file.max_requests_per_sec).unwrap_or(d.quota.requests_per_sec),
                request_burst: self.request_burst.or(file.request_burst).unwrap_or(d.quota.request_burst),
            },
            sessions_per_address: self.max_sessions_per_address.or(file.max_sessions_per_address).unwrap_or(d.sessions_per_address),
            sessions: self.max_sessions.or(file.max_sessions).unwrap_or(d.sessions),
            idle_timeout: self.idle_timeout_secs.or(file.idle_timeout_secs).map(Duration::from_secs).unwrap_or(d.idle_timeout),
            token_grace: self.token_grace_secs.or(file.token_grace_secs).map(Duration::from_secs).unwrap_or(d.token_grace),
            ..d
        };
        let keys = if self.auth_key.is_empty() { file.auth_key.unwrap_or_default() } else { self.auth_key };
        let rng = ring::rand::SystemRandom::new();
        let signing = match self.signing_key.or(file.signing_key) {
            Some(p) => {
                let text = std::fs::read_to_string(&p).map_err(|e| anyhow::anyhow!("cannot read signing key {}: {e}", p.display()))?;
                Some(moq_auth::SigningKey::from_pem(&text, &rng).map_err(|e| anyhow::anyhow!("signing key {}: {e}", p.display()))?)
            }
            None => None,
        };
        let open = match self.auth.or(file.auth).as_deref() {
            None => false,
            Some("none") => true,
            Some(other) => anyhow::bail!("auth = {other:?}: the only value is \"none\" (anyone may use the relay)"),
        };
        if open && (!keys.is_empty() || signing.is_some()) {
            anyhow::bail!("--auth none opens the relay to everyone, but keys were given too: drop one or the other");
        }
        let issuer = self.auth_issuer.or(file.auth_issuer);
        let audience = self.auth_audience.or(file.auth_audience);
        let auth = if keys.is_empty() && signing.is_none() {
            None
        } else {
            let mut verifier = moq_auth::Verifier::new(Vec::new());
            for k in &keys {
                let text = std::fs::read_to_string(k).map_err(|e| anyhow::anyhow!("cannot read auth key {}: {e}", k.display()))?;
                let key = moq_auth::VerifyKey::from_pem(&text).map_err(|e| anyhow::anyhow!("auth key {}: {e}", k.display()))?;
                verifier.keys.push(key);
            }
            verifier.keys.extend(signing.as_ref().map(|k| k.public().clone()));
            verifier.issuers.extend(issuer.clone());
            verifier.audiences.extend(audience.clone());
            if let Some(skew) = self.token_skew_secs.or(file.token_skew_secs) {
                verifier.skew = skew;
            }
            let root = crate::tokens::CALL_ROOT.iter().map(|s| s.to_string()).collect();
            Some(crate::auth::Auth { verifier, call_root: Some(root) })
        };
        let access = match (&auth, open) {
            (Some(_), _) => crate::login::Access::Tokens,
            (None, true) => crate::login::Access::Open,
            (None, false) => crate::login::Access::Loopback,
        };
        let login_ttl = match (self.login_ttl, file.login_ttl) {
            (Some(t), _) => t,
            (None, Some(t)) => crate::tokens::parse_ttl(&t).map_err(|e| anyhow::anyhow!("login_ttl: {e}"))?,
            (None, None) => Duration::from_secs(12 * 3600),
        };
        if login_ttl > Duration::from_secs(7 * 86400) {
            anyhow::bail!("login_ttl is longer than 7 days, which relays refuse; use 7d or less");
        }
        let login = match (self.users.or(file.users), signing) {
            (Some(users), Some(key)) => {
                crate::users::load(&users)?;
                let insecure = self.login_insecure_http || file.login_insecure_http.unwrap_or(false);
                let (issuer, audience) = (issuer.unwrap_or_else(|| "moq-phone".into()), audience.unwrap_or_else(|| "moq-phone".into()));
                Some(std::sync::Arc::new(crate::login::Login::new(users, key, login_ttl, issuer, audience, insecure)))
            }
            (Some(_), None) => {
                anyhow::bail!("--users needs --signing-key: the private key (moq-relay keygen) that signs the tokens /login hands out")
            }
            (None, _) => None,
        };
        let tls_cert = self.tls_cert.or(file.tls_cert);
        let tls_key = self.tls_key.or(file.tls_key);
        if tls_cert.is_some() != tls_key.is_some() {
            anyhow::bail!("give both tls_cert and tls_key, or neither for a generated development certificate");
        }
        let bind = self.bind.or(file.bind).unwrap_or_else(|| "[::]:4443".parse().expect("valid default"));
        let webrtc_bind = self.webrtc_bind.or(file.webrtc_bind);
        let candidates = if self.webrtc_candidate.is_empty() { file.webrtc_candidate.unwrap_or_default() } else { self.webrtc_candidate };
        for ip in &candidates {
            let unusable = ip.is_unspecified() || ip.is_multicast() || matches!(ip, IpAddr::V4(v) if v.is_broadcast() || v.is_link_local());
            if unusable {
                anyhow::bail!("webrtc_candidate {ip}: not an address a browser can send to; give the relay's public or LAN IP");
            }
        }
        let webrtc = Webrtc {
            bind: webrtc_bind.unwrap_or_else(|| Webrtc::default_bind(bind)),
            bind_explicit: webrtc_bind.is_some(),
            candidates: candidates.iter().map(|ip| ip.to_canonical()).collect(),
            max_peers: self.webrtc_max_peers.or(file.webrtc_max_peers).unwrap_or(256),
            ice_timeout: Duration::from_secs(self.webrtc_ice_timeout_secs.or(file.webrtc_ice_timeout_secs).unwrap_or(30).max(1)),
            ice_servers: ice_servers(
                if self.webrtc_ice_server.is_empty() { file.webrtc_ice_server.unwrap_or_default() } else { self.webrtc_ice_server },
                self.webrtc_turn_secret_file.or(file.webrtc_turn_secret_file),
            )?,
        };
        Ok(Config {
            bind,
            tls_cert,
            tls_key,
            webapp: self.webapp.or(file.webapp).or_else(default_webapp),
            drain: Duration::from_secs(self.drain_secs.or(file.drain_secs).unwrap_or(5)),
            limits,
            auth,
            access,
            login,
            webrtc,
        })
    }
}

/// The built web phone (`webapp/dist`), else the `webapp/` sources, of the
/// current directory or of the source tree the binary was built from.
/// `--webrtc-ice-server`s and the TURN secret read from its file (kept out of
/// the command line, which `ps` shows).
fn ice_servers(urls: Vec<String>, secret_file: Option<PathBuf>) -> anyhow::Result<IceServers> {
    let secret = match secret_file {
        Some(f) => {
            let s = std::fs::read_to_string(&f).map_err(|e| anyhow::anyhow!("webrtc_turn_secret_file {}: {e}", f.display()))?;
            let s = s.trim();
            if s.is_empty() {
                anyhow::bail!("webrtc_turn_secret_file {}: empty", f.display());
            }
            Some(s.as_bytes().to_vec())
        }
        None => None,
    };
    IceServers::new(&urls, secret)
}

fn default_webapp() -> Option<PathBuf> {
    let tree = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = [PathBuf::from("webapp/dist"), tree.join("webapp/dist"), PathBuf::from("webapp"), tree.join("webapp")];
    candidates.into_iter().find(|p| p.join("index.html").exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_overrides_file_and_defaults_fill_in() {
        let dir = std::env::temp_dir().join(format!("moq-relay-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("relay.toml");
        std::fs::write(&f, "bind = \"127.0.0.1:9000\"\ncache_groups = 4\ndrain_secs = 1\n").unwrap();
        let args = Args::parse_from(["moq-relay", "--config", f.to_str().unwrap(), "--cache-groups", "8"]);
        let c = args.resolve().unwrap();
        assert_eq!(c.bind, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(c.limits.cache_groups, 8);
        assert_eq!(c.drain, Duration::from_secs(1));
        assert_eq!(c.limits.max_object_size, Limits::default().max_object_size);
    }

    #[test]
    fn webrtc_defaults_to_the_next_port_and_takes_candidates() {
        let c = Args::parse_from(["moq-relay", "--bind", "127.0.0.1:5000"]).resolve().unwrap();
        assert_eq!(c.webrtc.bind, "127.0.0.1:5001".parse().unwrap());
        assert!(!c.webrtc.bind_explicit);
        assert_eq!((c.webrtc.max_peers, c.webrtc.ice_timeout), (256, Duration::from_secs(30)));
        assert_eq!(Webrtc::default_bind("[::]:0".parse().unwrap()).port(), 0);
        assert_eq!(Webrtc::default_bind("[::]:65535".parse().unwrap()).port(), 0);
        let c = Args::parse_from([
            "moq-relay",
            "--webrtc-bind",
            "0.0.0.0:7000",
            "--webrtc-candidate",
            "192.0.2.7",
            "--webrtc-candidate",
            "::ffff:198.51.100.1",
            "--webrtc-max-peers",
            "3",
            "--webrtc-ice-timeout-secs",
            "2",
        ])
        .resolve()
        .unwrap();
        assert_eq!(c.webrtc.bind, "0.0.0.0:7000".parse().unwrap());
        assert!(c.webrtc.bind_explicit);
        assert_eq!(c.webrtc.candidates, ["192.0.2.7".parse::<IpAddr>().unwrap(), "198.51.100.1".parse().unwrap()]);
        assert_eq!((c.webrtc.max_peers, c.webrtc.ice_timeout), (3, Duration::from_secs(2)));
        let err = Args::parse_from(["moq-relay", "--webrtc-candidate", "0.0.0.0"]).resolve().unwrap_err();
        assert!(err.to_string().contains("not an address"), "{err}");
    }

    #[test]
    fn unknown_keys_in_file_are_errors() {
        let dir = std::env::temp_dir().join(format!("moq-relay-cfg2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("relay.toml");
        std::fs::write(&f, "bnid = \"x\"\n").unwrap();
        let err = Args::parse_from(["moq-relay", "--config", f.to_str().unwrap()]).resolve().unwrap_err();
        assert!(err.to_string().contains("invalid config"), "{err}");
    }
}
