//! A UDP impairment proxy between QUIC (or WebRTC) endpoints, in user space
//! (this machine's kernel has no netem): the shell around [`crate::link`],
//! one [`Link`] per direction. Each client address gets its own upstream
//! socket, so the server sees one peer per client. Packets wait in a
//! per-direction heap and leave from one task each, in arrival-time order
//! (spawning a sleep per packet would let equal deadlines overtake).

use crate::link::{Fate, Link, Loss, Profile};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Random loss and jitter, the same both ways (`moq-bench call-loss`).
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Probability of dropping a packet, 0..1, each direction.
    pub loss: f64,
    /// Base one-way delay.
    pub delay: Duration,
    /// Extra uniform random delay 0..jitter (reorders packets).
    pub jitter: Duration,
}

impl Impairment {
    fn profile(self) -> Profile {
        let loss = if self.loss > 0.0 { Loss::Random(self.loss) } else { Loss::None };
        Profile { loss, delay: self.delay, jitter: self.jitter, reorder: true, ..Profile::default() }
    }
}

/// Runs the proxy on `listen`, forwarding to `server`, with the same
/// impairment both ways. Returns the bound address.
pub async fn start(listen: SocketAddr, server: SocketAddr, imp: Impairment, seed: u64) -> anyhow::Result<SocketAddr> {
    Ok(start_links(listen, server, imp.profile(), imp.profile(), seed).await?.addr)
}

/// A running proxy.
#[derive(Debug, Clone, Copy)]
pub struct Proxy {
    /// Where clients send to.
    pub addr: SocketAddr,
    /// The links' time zero (outages are counted from it) as wall-clock
    /// microseconds since the Unix epoch: `bench/quality` converts a
    /// profile's outage window to positions in its recordings with it.
    pub epoch_unix_us: u64,
}

/// Runs the proxy on `listen`, forwarding to `server`: `up` impairs what
/// clients send, `down` what they receive.
pub async fn start_links(listen: SocketAddr, server: SocketAddr, up: Profile, down: Profile, seed: u64) -> anyhow::Result<Proxy> {
    let front = Arc::new(UdpSocket::bind(listen).await?);
    let addr = front.local_addr()?;
    let epoch = Instant::now();
    let epoch_unix_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let mut upstream: HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>> = HashMap::new();
        let mut n_client = 0u64;
        loop {
            let Ok((n, client)) = front.recv_from(&mut buf).await else { return };
            let tx = match upstream.get(&client) {
                Some(tx) => tx.clone(),
                None => {
                    let Ok(s) = UdpSocket::bind(if server.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" }).await else { continue };
                    let s = Arc::new(s);
                    n_client += 1;
                    let seed = seed.wrapping_add(n_client.wrapping_mul(1_000_003));
                    let tx = direction(Link::new(up.clone(), seed), s.clone(), server, epoch);
                    // The return path for this client.
                    let back = direction(Link::new(down.clone(), seed ^ 0x5555), front.clone(), client, epoch);
                    tokio::spawn(async move {
                        let mut b = vec![0u8; 65536];
                        while let Ok((n, _)) = s.recv_from(&mut b).await {
                            if back.send(b[..n].to_vec()).is_err() {
                                return;
                            }
                        }
                    });
                    upstream.insert(client, tx.clone());
                    tx
                }
            };
            let _ = tx.send(buf[..n].to_vec());
        }
    });
    Ok(Proxy { addr, epoch_unix_us })
}

/// One direction: packets in, through `link`, out of `sock` to `to`.
fn direction(mut link: Link, sock: Arc<UdpSocket>, to: SocketAddr, epoch: Instant) -> mpsc::UnboundedSender<Vec<u8>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        // (arrival, sequence) → packet; the sequence keeps equal arrivals in order.
        let mut heap: BinaryHeap<Reverse<(Duration, u64)>> = BinaryHeap::new();
        let mut packets: HashMap<u64, Vec<u8>> = HashMap::new();
        let mut seq = 0u64;
        loop {
            let next = heap.peek().map(|Reverse((at, _))| epoch + *at);
            tokio::select! {
                p = rx.recv() => {
                    let Some(p) = p else { return };
                    if let Fate::Arrives(at) = link.send(epoch.elapsed(), p.len()) {
                        seq += 1;
                        heap.push(Reverse((at, seq)));
                        packets.insert(seq, p);
                    }
                }
                _ = tokio::time::sleep_until(next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))), if next.is_some() => {
                    let now = epoch.elapsed();
                    while let Some(Reverse((at, s))) = heap.peek().copied() {
                        if at > now {
                            break;
                        }
                        heap.pop();
                        if let Some(p) = packets.remove(&s) {
                            let _ = sock.send_to(&p, to).await;
                        }
                    }
                }
            }
        }
    });
    tx
}
