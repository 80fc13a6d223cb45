//! The relays under test, as processes: ours (open, and with access tokens
//! checked), Cloudflare's moq-relay-ietf and moq-dev's moq-relay, each
//! started on a free loopback port with a fresh certificate, optionally
//! pinned to one CPU (taskset), and read from /proc (CPU seconds, RSS).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ours,
    /// Ours with `--auth-key`: every session presents a token, every
    /// request is checked against its scopes.
    OursAuth,
    Ietf,
    Dev,
}

#[derive(Debug, Clone)]
pub struct RelayBin {
    pub kind: Kind,
    pub name: String,
    pub bin: PathBuf,
    /// For [`Kind::OursAuth`]: the issuer's public key and the token every
    /// client presents.
    pub auth: Option<crate::tokens::Issued>,
}

impl RelayBin {
    pub fn new(kind: Kind, bin: PathBuf) -> Self {
        let name = match kind {
            Kind::Ours => "moq-phone moq-relay",
            Kind::OursAuth => "moq-phone moq-relay (tokens)",
            Kind::Ietf => "moq-relay-ietf 0.8.0",
            Kind::Dev => "moq-dev moq-relay 0.17.10",
        };
        Self { kind, name: name.into(), bin, auth: None }
    }

    /// Our relay with tokens on: a key pair and a `--scope any` token made
    /// by the relay binary itself (`keygen`, `token`) in `dir`.
    pub fn with_tokens(bin: PathBuf, dir: &Path) -> anyhow::Result<Self> {
        let auth = crate::tokens::issue(&bin, dir)?;
        Ok(Self { auth: Some(auth), ..Self::new(Kind::OursAuth, bin) })
    }

    /// Short label for tables and plots.
    pub fn short(&self) -> &'static str {
        match self.kind {
            Kind::Ours => "ours",
            Kind::OursAuth => "ours+auth",
            Kind::Ietf => "ietf",
            Kind::Dev => "moq-dev",
        }
    }
}

/// A running relay; killed on drop.
pub struct Relay {
    child: Child,
    pub url: url::Url,
    /// The token its clients present in SETUP (tokens on), else none.
    pub token: Option<Vec<u8>>,
    pub pid: u32,
    /// RSS right after start, before any session.
    pub rss0: u64,
}

fn free_port() -> u16 {
    // A port free for both UDP (MoQT) and TCP (ours and moq-dev also bind TCP).
    loop {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = s.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

pub fn has_taskset() -> bool {
    Command::new("taskset").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

impl Relay {
    /// Starts `r` on a free port; `cpu` pins it with taskset. Returns once a
    /// MoQT session can be set up.
    pub async fn start(r: &RelayBin, dir: &Path, cpu: Option<usize>) -> anyhow::Result<Relay> {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut args: Vec<String> = Vec::new();
        let certs = || moq_certs::write_dev_files(dir.join(format!("cert{port}")), &[] as &[&str], Duration::from_secs(86_400));
        match r.kind {
            // Every load session comes from loopback: lift the per-address
            // session cap (the peers have none) so the relay's limit is measured.
            Kind::Ours | Kind::OursAuth => {
                args.extend(["--bind".into(), addr.clone(), "--max-sessions-per-address".into(), "1000000".into()]);
                if let Some(a) = &r.auth {
                    args.extend(["--auth-key".into(), a.public_key.display().to_string()]);
                }
            }
            Kind::Ietf => {
                let f = certs()?;
                args.extend(["--bind".into(), addr.clone()]);
                args.extend(["--tls-cert".into(), f.leaf_pem.display().to_string(), "--tls-key".into(), f.leaf_key.display().to_string()]);
                args.extend(["--coordinator-file".into(), dir.join(format!("coord{port}.json")).display().to_string()]);
            }
            Kind::Dev => {
                let f = certs()?;
                args.extend(["--listen".into(), addr.clone()]);
                args.extend(["--listen-tls-cert".into(), f.leaf_pem.display().to_string()]);
                args.extend(["--listen-tls-key".into(), f.leaf_key.display().to_string()]);
                args.extend(["--auth-public".into(), "**".into()]);
            }
        }
        let mut cmd = match cpu {
            Some(c) if has_taskset() => {
                let mut c2 = Command::new("taskset");
                c2.arg("-c").arg(c.to_string()).arg(&r.bin);
                c2
            }
            _ => Command::new(&r.bin),
        };
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.join(format!("{}-{port}.log", r.short())))?));
        // moq-dev logs every session at info; keep it (and ours) quiet.
        cmd.env("RUST_LOG", "warn");
        let child = cmd.spawn().map_err(|e| anyhow::anyhow!("starting {}: {e}", r.bin.display()))?;
        let pid = child.id();
        let url: url::Url = format!("moqt://{addr}").parse()?;
        let token = r.auth.as_ref().map(|a| a.token.clone());
        let mut relay = Relay { child, url, token, pid, rss0: 0 };
        let mut last = None;
        for _ in 0..100 {
            if let Ok(Some(st)) = relay.child.try_wait() {
                anyhow::bail!("{} exited at start ({st}); see {}", r.name, dir.display());
            }
            // Default (short) timeouts: the first tries may precede the bind.
            let opts = moq_client::Options { token: relay.token.clone(), ..moq_client::Options::default() };
            match moq_client::Client::connect_with(&relay.url, &moq_client::Tls::DisableVerify, &opts).await {
                Ok(s) => {
                    drop(s);
                    relay.rss0 = crate::procstat::rss_bytes(pid);
                    return Ok(relay);
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("{} did not accept a session: {:?}", r.name, last)
    }

    /// How load clients reach it: its URL and token.
    pub fn dial(&self) -> Dial {
        Dial { url: self.url.clone(), token: self.token.clone() }
    }

    pub fn cpu_secs(&self) -> f64 {
        crate::procstat::cpu_secs(self.pid)
    }

    pub fn rss(&self) -> u64 {
        crate::procstat::rss_bytes(self.pid)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relay's address and the token to present: what a load client needs.
#[derive(Debug, Clone)]
pub struct Dial {
    pub url: url::Url,
    pub token: Option<Vec<u8>>,
}

impl Dial {
    /// A draft-18 session over raw QUIC, the token (if any) in SETUP's
    /// AUTHORIZATION TOKEN option; generous timeouts for a loaded relay.
    pub async fn connect(&self) -> anyhow::Result<moq_client::Session> {
        let opts = moq_client::Options {
            handshake_timeout: Duration::from_secs(10),
            setup_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(10),
            token: self.token.clone(),
            ..moq_client::Options::default()
        };
        Ok(moq_client::Client::connect_with(&self.url, &moq_client::Tls::DisableVerify, &opts).await?)
    }
}
