//! A UDP impairment proxy: loss and jitter between QUIC endpoints, in user
//! space (this machine's kernel has no netem). Each client address gets its
//! own upstream socket, so the server sees one peer per client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Probability of dropping a packet, 0..1, each direction.
    pub loss: f64,
    /// Base one-way delay.
    pub delay: Duration,
    /// Extra uniform random delay 0..jitter (reorders packets).
    pub jitter: Duration,
}

/// xorshift: deterministic per seed, no dependency.
struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn schedule(sock: Arc<UdpSocket>, to: SocketAddr, data: Vec<u8>, imp: Impairment, rng: &mut Rng) {
    if rng.next_f64() < imp.loss {
        return;
    }
    let d = imp.delay + imp.jitter.mul_f64(rng.next_f64());
    tokio::spawn(async move {
        tokio::time::sleep(d).await;
        let _ = sock.send_to(&data, to).await;
    });
}

/// Runs the proxy on `listen`, forwarding to `server`. Returns the bound address.
pub async fn start(listen: SocketAddr, server: SocketAddr, imp: Impairment, seed: u64) -> anyhow::Result<SocketAddr> {
    let front = Arc::new(UdpSocket::bind(listen).await?);
    let addr = front.local_addr()?;
    tokio::spawn(async move {
        let mut rng = Rng(seed | 1);
        let mut up: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, client)) = front.recv_from(&mut buf).await else { return };
            let sock = match up.get(&client) {
                Some(s) => s.clone(),
                None => {
                    let Ok(s) = UdpSocket::bind("127.0.0.1:0").await else { continue };
                    let s = Arc::new(s);
                    up.insert(client, s.clone());
                    // Return path for this client.
                    let (s2, front2) = (s.clone(), front.clone());
                    tokio::spawn(async move {
                        let mut rng = Rng(seed.wrapping_mul(31) | 1);
                        let mut b = vec![0u8; 65536];
                        while let Ok((n, _)) = s2.recv_from(&mut b).await {
                            schedule(front2.clone(), client, b[..n].to_vec(), imp, &mut rng);
                        }
                    });
                    s
                }
            };
            schedule(sock, server, buf[..n].to_vec(), imp, &mut rng);
        }
    });
    Ok(addr)
}
