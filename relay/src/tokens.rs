//! `moq-relay keygen`, `token` and `user`: the issuer's side of access
//! tokens (issue 13), for operators and tests. A relay started with
//! `--auth-key issuer.pub.pem` accepts what `token --key issuer.key.pem` mints.

use anyhow::Context;
use moq_auth::{Claims, SigningKey};
use std::path::PathBuf;
use std::time::Duration;

/// Namespace root of the call model (docs/CALLS.md: every namespace starts `moq-phone`, `v1`).
pub const CALL_ROOT: [&str; 2] = ["moq-phone", "v1"];

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Make an ES256 key pair: KEY (private, PKCS#8 PEM, mode 0600) and KEY.pub (for --auth-key).
    Keygen {
        /// Where to write the private key; the public key goes to the same path + ".pub".
        #[arg(long, default_value = "issuer.key.pem")]
        out: PathBuf,
    },
    /// Mint a token for a user (printed base64url, for `?token=` or `moq-phone --token`).
    Token {
        /// Private key from `moq-relay keygen`.
        #[arg(long)]
        key: PathBuf,
        /// The user (docs/CALLS.md §1): what the token lets them do is derived from it.
        #[arg(long)]
        user: String,
        /// Lifetime, e.g. 30m, 12h, 7d (relays refuse more than 7 days). [default: 12h]
        #[arg(long, default_value = "12h", value_parser = parse_ttl)]
        ttl: Duration,
        /// `calls`: the call model's scopes for the user; `any`: every action everywhere (tests, tools).
        #[arg(long, default_value = "calls")]
        scope: String,
        #[arg(long, default_value = "moq-phone")]
        issuer: String,
        #[arg(long, default_value = "moq-phone")]
        audience: String,
    },
    /// Add, change, remove or list the users who may sign in at `POST /login`.
    #[command(subcommand)]
    User(crate::users::UserCommand),
}

pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse().map_err(|_| format!("bad duration {s:?}: use e.g. 30m, 12h, 7d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" | "" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("bad duration unit in {s:?}: use s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

/// Runs a subcommand; its output goes to stdout.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    let rng = ring::rand::SystemRandom::new();
    match cmd {
        Command::Keygen { out } => {
            let key = SigningKey::generate(&rng)?;
            let public = out.with_extension("pub.pem");
            write_private(&out, key.to_pem().as_bytes())?;
            std::fs::write(&public, key.public().to_pem()).with_context(|| format!("writing {}", public.display()))?;
            println!("private key: {} (keep it secret; mint tokens with `moq-relay token --key {}`)", out.display(), out.display());
            println!("public key:  {} (start relays with `--auth-key {}`)", public.display(), public.display());
            println!("key id:      {}", key.public().kid_hex());
        }
        Command::Token { key, user, ttl, scope, issuer, audience } => {
            if ttl > Duration::from_secs(7 * 86400) {
                anyhow::bail!("--ttl {}s is longer than 7 days, which relays refuse (moq-relay and moq-relay-ietf alike); mint shorter tokens and renew them", ttl.as_secs());
            }
            let text = std::fs::read_to_string(&key).with_context(|| format!("reading {}", key.display()))?;
            let key = SigningKey::from_pem(&text, &rng).with_context(|| format!("{}", key.display()))?;
            let minted =
                mint(&key, &Mint { user: &user, scope: &scope, ttl, issuer: &issuer, audience: &audience }, crate::auth::unix_now(), &rng)?;
            println!("{}", minted.token);
        }
        Command::User(cmd) => crate::users::run(cmd, &rng)?,
    }
    Ok(())
}

/// What to put in a token.
pub struct Mint<'a> {
    pub user: &'a str,
    /// `calls` (the call model's scopes for the user) or `any`.
    pub scope: &'a str,
    pub ttl: Duration,
    pub issuer: &'a str,
    pub audience: &'a str,
}

/// A minted token, base64url, and when it expires (Unix seconds).
pub struct Minted {
    pub token: String,
    pub expires: u64,
}

/// Mints a token valid from `now` (Unix seconds) for `m.ttl`.
pub fn mint(key: &SigningKey, m: &Mint<'_>, now: u64, rng: &dyn ring::rand::SecureRandom) -> anyhow::Result<Minted> {
    let scopes = match m.scope {
        "calls" => moq_auth::scope::call_scopes(&CALL_ROOT, m.user),
        "any" => vec![moq_auth::Scope::everywhere(&ALL_ACTIONS)],
        other => anyhow::bail!("unknown scope {other:?}: use calls or any"),
    };
    let mut id = [0u8; 16];
    rng.fill(&mut id).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let claims = Claims {
        issuer: m.issuer.to_string(),
        audience: m.audience.to_string(),
        ..Claims::new(m.user, now, m.ttl.as_secs(), id.to_vec(), scopes)
    };
    Ok(Minted { token: moq_auth::token::to_url(&claims.mint(key, rng)?), expires: now + m.ttl.as_secs() })
}

const ALL_ACTIONS: [moq_auth::Action; 9] = {
    use moq_auth::Action::*;
    [ClientSetup, ServerSetup, PublishNamespace, SubscribeNamespace, Subscribe, RequestUpdate, Publish, Fetch, TrackStatus]
};

fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_parse_with_units() {
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("12h"), Ok(Duration::from_secs(43200)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(604800)));
        assert!(parse_ttl("soon").is_err() && parse_ttl("3w").is_err());
    }
}
