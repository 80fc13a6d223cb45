//! `certs`: mint a development CA and a server leaf for native clients.
//!
//! rustls (and thus quinn and moq-transport clients) will not accept a
//! self-signed server certificate as its own trust anchor, so native clients
//! and tests need a CA to trust. This tool writes `ca.pem` (trust it),
//! `leaf.pem` and `leaf.key` (give them to the relay as `--tls-cert` and
//! `--tls-key`). The CA's private key is never written: rerun the tool to get
//! a new pair.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Parser;
use moq_certs::{write_dev_files, MAX_BROWSER_VALIDITY};

/// Mint a development CA and a CA:FALSE server certificate signed by it.
///
/// The leaf is valid for localhost, 127.0.0.1 and ::1 plus any --san names.
/// Start the relay with `--tls-cert DIR/leaf.pem --tls-key DIR/leaf.key` and
/// have native clients trust DIR/ca.pem. With --days 14 or less, browsers can
/// also pin the leaf through WebTransport serverCertificateHashes.
#[derive(Parser, Debug)]
#[command(name = "certs", version)]
struct Args {
    /// Directory to write ca.pem, leaf.pem and leaf.key into (created if
    /// missing; existing files are replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// Extra subject alternative name for the leaf: a DNS name or an IP
    /// address. Repeat for several.
    #[arg(long = "san", value_name = "NAME")]
    sans: Vec<String>,

    /// Validity of the CA and the leaf, in days (browsers accept at most 14
    /// for serverCertificateHashes).
    #[arg(long, default_value_t = 13, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=3650))]
    days: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("certs: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let validity = Duration::from_secs(args.days * 24 * 60 * 60);
    let files = write_dev_files(&args.out, &args.sans, validity)?;

    println!("wrote {}  (dev CA: trust this in native clients)", files.ca_pem.display());
    println!("wrote {}  (leaf for {}: relay --tls-cert)", files.leaf_pem.display(), files.sans.join(", "));
    println!("wrote {}  (PKCS#8 private key: relay --tls-key)", files.leaf_key.display());
    println!("valid until {} ({} days)", utc(files.not_after), args.days);
    println!("leaf SHA-256: {}", files.fingerprint);
    if validity > MAX_BROWSER_VALIDITY {
        println!(
            "note: browsers only pin certificates valid for at most 14 days (serverCertificateHashes); this leaf is for native clients only"
        );
    }
    println!("run: moq-relay --tls-cert {} --tls-key {}", files.leaf_pem.display(), files.leaf_key.display());
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}
