//! `POST /webrtc` and `DELETE /webrtc/<id>` (docs/design/webrtc.md §2.4):
//! WHIP-shaped signalling (RFC 9725 §4.2): the page POSTs its SDP offer and
//! gets the answer in a `201 Created` with `Location: /webrtc/<id>`; a
//! `DELETE` of that resource ends the peer (RFC 9725 §4.2.2). Trickle ICE
//! (`PATCH`, RFC 9725 §4.3) is not needed: the gateway is ICE-lite (RFC 8445
//! §2.5) and lists its host candidates in the answer, and the browser's
//! address is learnt from its checks, so the page does not wait for
//! gathering (RFC 8838 without trickling).
//!
//! Every refusal is one line of text with a status the page acts on
//! (`webapp/src/session/rtc.ts`): 400 an offer we cannot answer, 401 no or a
//! bad token (`WWW-Authenticate: Bearer`, RFC 6750 §3), 403 a loopback-only
//! relay asked from elsewhere, 413 an offer over 16 KiB, 415 not
//! `application/sdp`, 429 too many sessions from one address, 503 the
//! gateway is full. Each POST costs a DTLS handshake and a task, so the token
//! is checked first; SETUP still decides about the session as for any other
//! (`session::admit`), the token is only passed on in its URL query.

use super::mux::Mux;
use super::peer;
use crate::config::Webrtc as Settings;
use crate::login::Access;
use crate::routing::quota::SessionCap;
use crate::state::Relay;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use str0m::change::SdpOffer;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::{Candidate, IceCreds, Rtc};
use tokio::sync::oneshot;

/// Largest offer taken (a browser's is 3-6 KiB).
pub const MAX_OFFER: usize = 16 * 1024;
/// str0m's association-wide send buffer (default 128 KiB): writes above it
/// are refused and retried (`peer.rs`).
const SCTP_BUFFER: usize = 1 << 20;

/// The gateway: the socket, the peers, what every peer shares.
pub struct Gateway {
    relay: Arc<Relay>,
    mux: Arc<Mux>,
    settings: Settings,
    crypto: Arc<CryptoProvider>,
    /// One DTLS certificate for all peers (RFC 8827 §6.5 allows reuse): a
    /// key per POST would cost an EC key generation each.
    cert: DtlsCert,
    /// Live peers by resource id, with their `DELETE` trigger.
    peers: Mutex<HashMap<String, oneshot::Sender<()>>>,
}

/// A refused offer: status, a metrics label and the line for the page.
struct Refused {
    status: StatusCode,
    label: &'static str,
    reason: String,
}

fn refuse(status: StatusCode, label: &'static str, reason: impl Into<String>) -> Refused {
    Refused { status, label, reason: reason.into() }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut r = (self.status, format!("{}\n", self.reason)).into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

impl Gateway {
    /// Binds the gateway's socket. `Ok(None)`: no gateway — turned off
    /// (`--webrtc-max-peers 0`), or its default port is taken.
    pub fn start(relay: Arc<Relay>, settings: Settings) -> anyhow::Result<Option<Arc<Gateway>>> {
        if settings.max_peers == 0 {
            return Ok(None);
        }
        let mux = match Mux::bind(settings.bind) {
            Ok(m) => m,
            Err(e) if !settings.bind_explicit => {
                tracing::warn!(error = %format!("{e:#}"), "no WebRTC gateway: its default port is taken; give --webrtc-bind");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert =
            crypto.dtls_provider.generate_certificate().ok_or_else(|| anyhow::anyhow!("no DTLS certificate for the WebRTC gateway"))?;
        Ok(Some(Arc::new(Gateway { relay, mux, settings, crypto, cert, peers: Mutex::new(HashMap::new()) })))
    }

    /// The gateway's UDP address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.mux.local_addr()
    }

    /// `POST /webrtc`. `tcp_local` is where the POST arrived: an address the
    /// browser demonstrably reaches, the candidate when none is configured.
    pub fn offer(
        self: &Arc<Self>,
        peer: SocketAddr,
        tcp_local: SocketAddr,
        headers: &HeaderMap,
        query: Option<&str>,
        body: &[u8],
    ) -> Response {
        match self.answer(peer, tcp_local, headers, query, body) {
            Ok((id, sdp)) => {
                self.relay.metrics.webrtc_offer("answered");
                let mut r = (StatusCode::CREATED, sdp).into_response();
                let h = r.headers_mut();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
                if let Ok(v) = HeaderValue::from_str(&format!("/webrtc/{id}")) {
                    h.insert(header::LOCATION, v);
                }
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
                h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Location"));
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            Err(refused) => {
                tracing::debug!(%peer, status = refused.status.as_u16(), reason = refused.reason, "WebRTC offer refused");
                self.relay.metrics.webrtc_offer(refused.label);
                refused.into_response()
            }
        }
    }

    /// `DELETE /webrtc/<id>`: whether there was such a peer.
    pub fn delete(&self, id: &str) -> bool {
        match self.peers().remove(id) {
            Some(stop) => {
                let _ = stop.send(());
                true
            }
            None => false,
        }
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<()>>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn answer(
        self: &Arc<Self>,
        peer: SocketAddr,
        tcp_local: SocketAddr,
        headers: &HeaderMap,
        query: Option<&str>,
        body: &[u8],
    ) -> Result<(String, String), Refused> {
        let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !ctype.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/sdp") {
            return Err(refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "bad_type", "Content-Type must be application/sdp (an SDP offer)"));
        }
        if body.len() > MAX_OFFER {
            return Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("the offer is over {MAX_OFFER} bytes")));
        }
        let remote = client_address(peer, headers);
        let (token, _) = self.check_token(remote, headers, query)?;
        let ip = remote.ip();
        let admitted = self.relay.per_address.lock().unwrap_or_else(|e| e.into_inner()).admit(
            ip,
            self.relay.limits.sessions_per_address,
            self.relay.limits.sessions,
        );
        match admitted {
            Ok(()) => {}
            Err(cap @ SessionCap::PerAddress) => {
                self.relay.metrics.limit(cap.label());
                return Err(refuse(StatusCode::TOO_MANY_REQUESTS, "per_address", "too many sessions from this address"));
            }
            Err(cap @ SessionCap::Total) => {
                self.relay.metrics.limit(cap.label());
                return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "full", "the relay is full; try again later"));
            }
        }
        // From here on the slot is the guard's to give back.
        let id = random_id();
        let mut guard = PeerGuard { gateway: self.clone(), id: id.clone(), ip, counted: false };
        if self.peers().len() >= self.settings.max_peers {
            return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "full", "the relay's WebRTC gateway is full; try again later"));
        }
        let offer = parse_offer(body).map_err(|why| refuse(StatusCode::BAD_REQUEST, "bad_sdp", why))?;

        let creds = IceCreds::new();
        let Some((inbox, registration)) = self.mux.register(&creds.ufrag) else {
            return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "full", "try again"));
        };
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_local_ice_credentials(creds)
            .set_crypto_provider(self.crypto.clone())
            .set_dtls_cert(self.cert.clone())
            .clear_codecs()
            .enable_opus(true, false)
            .set_sctp_max_buffered_amount(SCTP_BUFFER)
            .build(Instant::now());
        let locals = self.candidates(tcp_local);
        for addr in &locals {
            if let Ok(c) = Candidate::host(*addr, "udp") {
                rtc.add_local_candidate(c);
            }
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| refuse(StatusCode::BAD_REQUEST, "bad_sdp", format!("cannot answer the offer: {}", first_line(&e.to_string()))))?;
        let (delete, deleted) = oneshot::channel();
        self.peers().insert(id.clone(), delete);
        tracing::info!(peer = %id, %remote, candidates = ?locals, "WebRTC peer offered");
        let setup = peer::Setup {
            id: id.clone(),
            rtc,
            mux: self.mux.clone(),
            inbox,
            registration,
            locals,
            relay: self.relay.clone(),
            url_query: token.map(|t| format!("token={t}")),
            remote,
            ice_timeout: self.settings.ice_timeout,
            delete: deleted,
            guard: Box::new({
                // Counted before the task runs, so /metrics shows it at once;
                // uncounted by the guard, even if the task panics.
                self.relay.metrics.webrtc_peers.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                guard.counted = true;
                guard
            }),
        };
        tokio::spawn(peer::run(setup));
        Ok((id, with_ptime(&answer.to_sdp_string())))
    }

    /// `GET /webrtc`: the STUN/TURN servers for the page's `RTCPeerConnection`
    /// ([`super::ice_servers`]), asked before its offer. TURN credentials
    /// only with the same token an offer needs: they let their holder relay
    /// traffic through the TURN server.
    pub fn ice_servers(&self, peer: SocketAddr, headers: &HeaderMap, query: Option<&str>) -> Response {
        let remote = client_address(peer, headers);
        match self.check_token(remote, headers, query) {
            Ok((_, subject)) => {
                let body = self.settings.ice_servers.answer(subject.as_deref().unwrap_or(""), crate::auth::unix_now());
                let mut r = body.to_string().into_response();
                let h = r.headers_mut();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            Err(refused) => refused.into_response(),
        }
    }

    /// The token (base64url) if one was given and is good, with its
    /// subject; the refusal if the relay needs one and it is missing or bad.
    fn check_token(
        &self,
        remote: SocketAddr,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<(Option<String>, Option<String>), Refused> {
        let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
            let (scheme, t) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| t.trim().to_owned())
        });
        let token = bearer.or_else(|| query.and_then(crate::auth::query_token).map(str::to_owned)).filter(|t| !t.is_empty());
        let Some(auth) = &self.relay.auth else {
            if self.relay.access == Access::Loopback && !remote.ip().is_loopback() {
                return Err(refuse(
                    StatusCode::FORBIDDEN,
                    "not_loopback",
                    "this relay has no --auth-key and takes sessions from its own machine only (README, \"Access tokens\")",
                ));
            }
            return Ok((token, None));
        };
        let Some(t) = token else {
            return Err(refuse(StatusCode::UNAUTHORIZED, "no_token", "this relay needs an access token (Authorization: Bearer <token>)"));
        };
        let verdict = moq_auth::token::from_url(&t).and_then(|raw| auth.admit(&[raw], crate::auth::unix_now()));
        match verdict {
            Ok(grant) => Ok((Some(t), grant.subject)),
            Err(refusal) => Err(refuse(StatusCode::UNAUTHORIZED, "bad_token", format!("access token refused: {refusal}"))),
        }
    }

    /// Host candidates: `--webrtc-candidate`, else the bound IP if specific,
    /// else the IP the POST arrived on; all with the gateway's port.
    fn candidates(&self, tcp_local: SocketAddr) -> Vec<SocketAddr> {
        let port = self.mux.local_addr().map_or(self.settings.bind.port(), |a| a.port());
        let bound = self.settings.bind.ip();
        let ips = if !self.settings.candidates.is_empty() {
            self.settings.candidates.clone()
        } else if !bound.is_unspecified() {
            vec![bound.to_canonical()]
        } else {
            vec![tcp_local.ip().to_canonical()]
        };
        ips.into_iter().map(|ip| SocketAddr::new(ip, port)).collect()
    }
}

/// Frees a peer's places when its task ends (or its offer is refused): its
/// `DELETE` entry, its per-address slot and its place in `webrtc_peers`.
struct PeerGuard {
    gateway: Arc<Gateway>,
    id: String,
    ip: IpAddr,
    counted: bool,
}

impl Drop for PeerGuard {
    fn drop(&mut self) {
        self.gateway.peers().remove(&self.id);
        self.gateway.relay.per_address.lock().unwrap_or_else(|e| e.into_inner()).release(self.ip);
        if self.counted {
            self.gateway.relay.metrics.webrtc_peers.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Who the browser is: the TCP peer, unless a proxy forwarded the POST — then
/// the address it names (X-Forwarded-For), or an unspecified one, never the
/// proxy's loopback address (which would pass the loopback-only rule).
fn client_address(peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    if !headers.contains_key("x-forwarded-for") && !headers.contains_key(header::FORWARDED) {
        return peer;
    }
    let named = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
        .filter(|ip| !ip.is_loopback());
    SocketAddr::new(named.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)).to_canonical(), 0)
}

/// What the gateway needs of an offer, said in one line when missing: an
/// `m=application` (data channels, RFC 8841) and an `m=audio` with Opus
/// (RFC 7587 §7: `opus/48000/2`). str0m checks the rest (fingerprint, ICE
/// credentials, a lite offerer).
/// The body of `POST /webrtc`, as untrusted as any network input: UTF-8,
/// our own checks, then str0m's SDP parser (fuzz/fuzz_targets/webrtc_offer.rs).
/// The error is the text of the 400 answer.
pub fn parse_offer(body: &[u8]) -> Result<SdpOffer, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the offer is not UTF-8 text".to_string())?;
    check_offer(text)?;
    SdpOffer::from_sdp_string(text).map_err(|e| format!("the offer is not valid SDP: {}", first_line(&e.to_string())))
}

fn check_offer(sdp: &str) -> Result<(), &'static str> {
    if !sdp.starts_with("v=0") {
        return Err("the offer is not SDP (no v=0 line)");
    }
    let (mut app, mut audio, mut opus) = (false, false, false);
    let mut section = "";
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            section = m.split(' ').next().unwrap_or("");
            app |= section == "application";
            audio |= section == "audio";
        } else if section == "audio" && line.starts_with("a=rtpmap:") {
            opus |= line.to_ascii_lowercase().contains(" opus/48000");
        }
    }
    if !app {
        return Err("the offer has no data channels (m=application)");
    }
    if !audio || !opus {
        return Err("the offer has no Opus audio (m=audio with opus/48000)");
    }
    Ok(())
}

/// `a=ptime:20` after the answer's Opus rtpmap (RFC 4566 §6; str0m writes
/// none): the browser then sends one 20 ms frame per packet, one LOC object.
fn with_ptime(answer: &str) -> String {
    let mut out = String::with_capacity(answer.len() + 16);
    let mut section = "";
    let mut done = false;
    for line in answer.split_inclusive('\n') {
        out.push_str(line);
        let l = line.trim_end();
        if let Some(m) = l.strip_prefix("m=") {
            section = if m.starts_with("audio") { "audio" } else { "other" };
        } else if !done && section == "audio" && l.starts_with("a=rtpmap:") && l.to_ascii_lowercase().contains(" opus/48000") {
            out.push_str("a=ptime:20\r\n");
            done = true;
        }
    }
    out
}

fn first_line(s: &str) -> &str {
    super::signals::clip(s.lines().next().unwrap_or(""))
}

/// The resource name: 128 random bits, hex.
fn random_id() -> String {
    let mut b = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";

    #[test]
    fn offers_need_data_channels_and_opus() {
        assert_eq!(check_offer(OFFER), Ok(()));
        assert!(check_offer("hello").unwrap_err().contains("not SDP"));
        assert!(check_offer(&OFFER.replace("m=application", "m=video")).unwrap_err().contains("m=application"));
        assert!(check_offer(&OFFER.replace("opus/48000/2", "PCMU/8000")).unwrap_err().contains("Opus"));
    }

    #[test]
    fn the_answer_pins_20_ms_frames_once() {
        let a = "v=0\r\nm=audio 9 X 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10\r\nm=application 9 Y\r\na=rtpmap:1 opus/48000/2\r\n";
        let b = with_ptime(a);
        assert_eq!(b.matches("a=ptime:20\r\n").count(), 1);
        assert!(b.contains("opus/48000/2\r\na=ptime:20\r\na=fmtp:111"));
    }

    #[test]
    fn a_proxied_post_is_never_loopback() {
        let lo: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        assert_eq!(client_address(lo, &HeaderMap::new()), "127.0.0.1:5000".parse().unwrap());
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 10.0.0.1"));
        assert_eq!(client_address(lo, &h).ip(), "203.0.113.9".parse::<IpAddr>().unwrap());
        h.insert("x-forwarded-for", HeaderValue::from_static("127.0.0.1"));
        assert!(!client_address(lo, &h).ip().is_loopback());
        assert_eq!(random_id().len(), 32);
    }
}
