//! The gateway's one UDP socket (docs/design/webrtc.md §2.4): every browser's
//! ICE, DTLS, SCTP and RTP arrive on it, and each datagram goes to the peer
//! task it belongs to.
//!
//! The gateway is ICE-lite (RFC 8445 §2.5, RFC 8838 for the candidates the
//! browser trickles — here none): it never sends checks, so a browser's first
//! packet is always its STUN Binding request, whose USERNAME is
//! `<our ufrag>:<its ufrag>` (RFC 8445 §7.2.2). Demultiplexing:
//! 1. a Binding request whose first half is a registered ufrag goes to that
//!    peer, and its source address is remembered for the peer;
//! 2. anything else goes by source address (DTLS, SCTP, RTP, RTCP carry no
//!    ufrag; RFC 7983 tells them apart, str0m does that);
//! 3. the rest — unknown sources, unknown ufrags — is dropped.
//!
//! Integrity (MESSAGE-INTEGRITY with the peer's password) is the peer's
//! business: str0m checks it before it answers or nominates. A forged request
//! with a known ufrag only makes its own source address route to that peer,
//! where str0m drops it; it cannot take another peer's address away unless it
//! comes from that address. Addresses per peer are capped (a browser uses one
//! or two), so no one grows the table.
//!
//! A dual-stack socket (`[::]`) sees IPv4 browsers as `::ffff:a.b.c.d`; they
//! are canonicalised to IPv4 on the way in (they must match the IPv4 host
//! candidates str0m knows) and mapped back on the way out.
//!
//! Each peer's inbox is bounded, like a socket buffer: when its task falls
//! behind, datagrams are dropped (WebRTC recovers from loss) instead of
//! growing memory.

use anyhow::Context as _;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Datagrams waiting per peer (~ 50 packets/s of audio plus bursts of SCTP).
pub const INBOX: usize = 512;
/// Source addresses remembered per peer (a browser uses one per family).
const MAX_ADDRS: usize = 4;
/// Socket buffers, as the QUIC socket's (server.rs): one socket for all.
const SOCKET_BUFFER: usize = 4 << 20;

/// One datagram for a peer.
#[derive(Debug)]
pub struct Packet {
    pub data: Bytes,
    /// Canonical (IPv4 as IPv4) source.
    pub source: SocketAddr,
    pub at: Instant,
}

#[derive(Debug)]
struct Peer {
    inbox: mpsc::Sender<Packet>,
    addrs: VecDeque<SocketAddr>,
}

/// Who gets what: the routing table, without the socket (unit-tested).
#[derive(Debug, Default)]
pub struct Table {
    peers: HashMap<String, Peer>,
    by_addr: HashMap<SocketAddr, String>,
}

impl Table {
    /// A new peer under our ICE ufrag; `false` if the ufrag is taken.
    pub fn register(&mut self, ufrag: &str, inbox: mpsc::Sender<Packet>) -> bool {
        if self.peers.contains_key(ufrag) {
            return false;
        }
        self.peers.insert(ufrag.to_owned(), Peer { inbox, addrs: VecDeque::new() });
        true
    }

    pub fn unregister(&mut self, ufrag: &str) {
        if let Some(p) = self.peers.remove(ufrag) {
            for a in p.addrs {
                self.by_addr.remove(&a);
            }
        }
    }

    /// The peer (its ufrag and inbox) a datagram from `source` (canonical)
    /// is for, if any.
    pub fn route(&mut self, data: &[u8], source: SocketAddr) -> Option<(&str, &mpsc::Sender<Packet>)> {
        let ufrag = match binding_ufrag(data) {
            Some(u) if self.peers.contains_key(u) => {
                let u = u.to_owned();
                self.learn(&u, source);
                u
            }
            _ => self.by_addr.get(&source)?.clone(),
        };
        self.peers.get_key_value(&ufrag).map(|(u, p)| (u.as_str(), &p.inbox))
    }

    /// Remembers that `source` is `ufrag`'s browser (most recent first out last).
    fn learn(&mut self, ufrag: &str, source: SocketAddr) {
        match self.by_addr.get(&source) {
            Some(owner) if owner == ufrag => return,
            Some(owner) => {
                let owner = owner.clone();
                if let Some(p) = self.peers.get_mut(&owner) {
                    p.addrs.retain(|a| *a != source);
                }
            }
            None => {}
        }
        self.by_addr.insert(source, ufrag.to_owned());
        let Some(p) = self.peers.get_mut(ufrag) else { return };
        p.addrs.push_back(source);
        if p.addrs.len() > MAX_ADDRS {
            if let Some(old) = p.addrs.pop_front() {
                self.by_addr.remove(&old);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

/// Our ufrag, if `data` is a STUN Binding request (RFC 8489 §5) with a
/// USERNAME (str0m's parser demands one, with MESSAGE-INTEGRITY and PRIORITY).
fn binding_ufrag(data: &[u8]) -> Option<&str> {
    // RFC 7983 §7: STUN starts with 0 or 1. A cheap test before parsing,
    // since almost every datagram is SRTP or DTLS.
    if data.first().is_none_or(|b| *b > 1) {
        return None;
    }
    let msg = str0m::ice::StunMessage::parse(data).ok()?;
    if !msg.is_binding_request() {
        return None;
    }
    let username = msg.username()?;
    username.split_once(':').map(|(ours, _)| ours)
}

/// The socket and its table; peers send through it.
#[derive(Debug)]
pub struct Mux {
    socket: UdpSocket,
    table: Mutex<Table>,
    v6: bool,
}

/// Unregisters a peer's ufrag (and forgets its addresses) when its task ends.
pub struct Registration {
    mux: Arc<Mux>,
    ufrag: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.mux.table().unregister(&self.ufrag);
    }
}

impl Mux {
    /// Binds the gateway's socket (dual-stack for `[::]`) and starts reading it.
    pub fn bind(addr: SocketAddr) -> anyhow::Result<Arc<Mux>> {
        let domain = socket2::Domain::for_address(addr);
        let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
        if addr.is_ipv6() {
            socket.set_only_v6(false).context("enabling dual-stack (IPV6_V6ONLY=0)")?;
        }
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into()).with_context(|| format!("cannot bind UDP {addr} for the WebRTC gateway"))?;
        let socket = UdpSocket::from_std(socket.into())?;
        let mux = Arc::new(Mux { socket, table: Mutex::new(Table::default()), v6: addr.is_ipv6() });
        // The gateway lives as long as the process: so does its reader.
        tokio::spawn(demux(mux.clone()));
        Ok(mux)
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Routes datagrams for `ufrag` to a new inbox; `None` if the ufrag is taken.
    pub fn register(self: &Arc<Self>, ufrag: &str) -> Option<(mpsc::Receiver<Packet>, Registration)> {
        let (tx, rx) = mpsc::channel(INBOX);
        if !self.table().register(ufrag, tx) {
            return None;
        }
        Some((rx, Registration { mux: self.clone(), ufrag: ufrag.to_owned() }))
    }

    /// Sends one datagram; errors (an unreachable browser) are the caller's to log.
    pub async fn send(&self, to: SocketAddr, data: &[u8]) -> std::io::Result<()> {
        self.socket.send_to(data, self.outward(to)).await.map(|_| ())
    }

    /// A canonical address as this socket must name it.
    fn outward(&self, to: SocketAddr) -> SocketAddr {
        match to.ip() {
            IpAddr::V4(v4) if self.v6 => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), to.port()),
            _ => to,
        }
    }
}

/// Reads the socket, forever.
async fn demux(m: Arc<Mux>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = match m.socket.recv_from(&mut buf).await {
            Ok(x) => x,
            // ICMP errors surface here (ECONNREFUSED): not fatal for a UDP server.
            Err(e) => {
                tracing::trace!(error = %e, "WebRTC socket read failed");
                continue;
            }
        };
        let source = SocketAddr::new(from.ip().to_canonical(), from.port());
        let data = &buf[..n];
        let Some(inbox) = m.table().route(data, source).map(|(_, inbox)| inbox.clone()) else {
            tracing::trace!(%source, len = n, "WebRTC datagram for no peer dropped");
            continue;
        };
        let packet = Packet { data: Bytes::copy_from_slice(data), source, at: Instant::now() };
        if inbox.try_send(packet).is_err() {
            // Full (the peer fell behind) or closed (it just ended): dropped like UDP.
            tracing::trace!(%source, "WebRTC peer inbox full; datagram dropped");
        }
    }
}

#[cfg(test)]
#[path = "mux_tests.rs"]
mod tests;
