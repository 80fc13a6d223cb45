//! `moq-relay user add|del|list`: the users file behind `POST /login`
//! (issue 13). The file holds argon2id hashes (moq-auth's `users`); it is
//! written whole to a temporary file and renamed over the old one, mode 0600,
//! so a relay reading it during a change sees the old or the new file.

use anyhow::Context;
use moq_auth::users::{hash_password, Users};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand, Debug, Clone)]
pub enum UserCommand {
    /// Add a user, or change their password (asked twice on a terminal, or one line on stdin).
    Add {
        name: String,
        #[arg(long, env = "MOQ_RELAY_USERS", default_value = "users.toml")]
        users: PathBuf,
        /// Read the password from the first line of stdin (scripts, tests).
        #[arg(long)]
        password_stdin: bool,
        /// `any`: tokens from /login allow every action everywhere (a PBX's trunk user,
        /// tools); default: the call model's scopes for this user.
        #[arg(long)]
        scope: Option<String>,
    },
    /// Remove a user.
    Del {
        name: String,
        #[arg(long, env = "MOQ_RELAY_USERS", default_value = "users.toml")]
        users: PathBuf,
    },
    /// List the users.
    List {
        #[arg(long, env = "MOQ_RELAY_USERS", default_value = "users.toml")]
        users: PathBuf,
    },
}

/// Reads a users file; a missing file is an empty one.
pub fn load(path: &Path) -> anyhow::Result<Users> {
    match std::fs::read_to_string(path) {
        Ok(text) => Users::parse(&text).with_context(|| format!("{}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Users::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub fn run(cmd: UserCommand, rng: &dyn ring::rand::SecureRandom) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add { name, users, password_stdin, scope } => {
            if let Some(s) = scope.as_deref().filter(|s| !matches!(*s, "any" | "calls")) {
                anyhow::bail!("unknown --scope {s:?}: use calls or any");
            }
            let mut all = load(&users)?;
            let password = read_password(password_stdin)?;
            let mut salt = [0u8; 16];
            rng.fill(&mut salt).map_err(|_| anyhow::anyhow!("no randomness"))?;
            let existed = all.users.contains_key(&name);
            all.set(&name, hash_password(&password, &salt)?)?;
            if let Some(s) = scope {
                all.users.get_mut(&name).expect("just set").scope = (s == "any").then_some(s);
            }
            save(&users, &all)?;
            println!("{} {name} in {}", if existed { "changed" } else { "added" }, users.display());
        }
        UserCommand::Del { name, users } => {
            let mut all = load(&users)?;
            if all.users.remove(&name).is_none() {
                anyhow::bail!("no user {name:?} in {}", users.display());
            }
            save(&users, &all)?;
            println!("removed {name} from {}", users.display());
        }
        UserCommand::List { users } => {
            for (name, u) in &load(&users)?.users {
                println!("{name}{}", u.scope.as_deref().map(|s| format!("  (scope {s})")).unwrap_or_default());
            }
        }
    }
    Ok(())
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        let first = rpassword::prompt_password("password: ")?;
        let again = rpassword::prompt_password("again:    ")?;
        if first != again {
            anyhow::bail!("the two passwords differ; nothing changed");
        }
        first
    };
    if password.chars().count() < 8 {
        anyhow::bail!("use a password of at least 8 characters");
    }
    Ok(password)
}

fn save(path: &Path, users: &Users) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("toml.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(users.to_toml().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}
