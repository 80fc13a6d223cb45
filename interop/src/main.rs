//! moq-interop-client: moq-phone's MoQT conformance client with the
//! moq-interop-runner test-client interface (CLI, environment variables,
//! TAP 14 on stdout, exit codes 0 / 1 / 127).
//!
//! ```text
//! moq-interop-client -r moqt://127.0.0.1:4443 --tls-disable-verify
//! moq-interop-client -r https://localhost:4443 --ca certs/ca.pem -t announce-subscribe
//! moq-interop-client --list
//! ```

mod cases;
mod tap;

use cases::{Ctx, Diag, Failure};
use clap::builder::FalseyValueParser;
use clap::Parser;
use moq_client::Tls;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use url::Url;

/// MoQT (draft-ietf-moq-transport-18 or -22) interop test client.
#[derive(Parser, Debug)]
#[command(name = "moq-interop-client", version, about)]
struct Args {
    /// Relay URL: moqt:// for native QUIC (ALPN moqt-18), https:// for WebTransport.
    #[arg(short, long, env = "RELAY_URL", default_value = "https://localhost:4443")]
    relay: Url,

    /// Run only this test (omit to run all).
    #[arg(short, long, env = "TESTCASE")]
    test: Option<String>,

    /// List the available tests, one per line, and exit.
    #[arg(short, long)]
    list: bool,

    /// Verbose output: test steps as TAP comments, debug logs on stderr.
    #[arg(short, long, env = "VERBOSE", value_parser = FalseyValueParser::new())]
    verbose: bool,

    /// Accept any server certificate.
    #[arg(long, env = "TLS_DISABLE_VERIFY", value_parser = FalseyValueParser::new())]
    tls_disable_verify: bool,

    /// Publish right after SUBSCRIBE_OK instead of pausing 100 ms first. A
    /// relay must forward objects from the moment it sent SUBSCRIBE_OK; the
    /// pause hides relays that start forwarding only a little later.
    #[arg(long, env = "STRICT_TIMING", value_parser = FalseyValueParser::new())]
    strict_timing: bool,

    /// Trust the CA certificates in this PEM file (e.g. from moq-phone's `certs` tool).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,

    /// The draft to speak: 18 (ALPN / WT-Protocol moqt-18) or 22 (moqt-22).
    #[arg(long, env = "DRAFT", default_value_t = 18, value_parser = clap::value_parser!(u32).range(18..=22))]
    draft: u32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = if args.verbose { "warn,moq_client=debug,moq_interop_client=debug" } else { "error" };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()))
        .init();

    let all = cases::all();
    if args.list {
        for c in &all {
            println!("{}", c.name);
        }
        return ExitCode::SUCCESS;
    }
    let selected: Vec<_> = match args.test.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => all,
        Some(name) => match all.into_iter().find(|c| c.name == name) {
            Some(c) => vec![c],
            None => {
                println!("TAP version 14\n1..0 # SKIP test {name} is not supported by this client");
                eprintln!("unknown test {name:?}; --list shows the supported ones");
                return ExitCode::from(127);
            }
        },
    };

    let tls = if args.tls_disable_verify {
        Tls::DisableVerify
    } else if let Some(ca) = &args.ca {
        Tls::Ca(ca.clone())
    } else {
        Tls::System
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            println!("TAP version 14\nBail out! cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ok = runtime.block_on(run(&args, tls, selected));
    // Don't wait for stray tasks of closed sessions.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs the tests, printing TAP as it goes; true if all passed.
async fn run(args: &Args, tls: Tls, selected: Vec<cases::Case>) -> bool {
    let run_id = hex::encode(moq_client::tls::random_bytes::<4>());
    let version = match args.draft {
        22 => moq_wire::Version::Draft22,
        18 => moq_wire::Version::Draft18,
        d => {
            eprintln!("draft {d} is not spoken here: use --draft 18 or --draft 22");
            return false;
        }
    };
    let transport = match args.relay.scheme() {
        "moqt" => format!("native QUIC (ALPN {})", version.protocol()),
        "https" => format!("WebTransport (h3, subprotocol {})", version.protocol()),
        _ => "unsupported scheme".into(),
    };
    let comments = [
        format!("moq-interop-client v{} (moq-phone)", env!("CARGO_PKG_VERSION")),
        format!("Relay: {}", args.relay),
        format!("Draft: {version}"),
        format!("Transport: {transport}"),
        format!("Run: {run_id}"),
        format!("Timing: {}", if args.strict_timing { "strict" } else { "100 ms pause after SUBSCRIBE_OK before publishing" }),
    ];
    emit(&tap::header(&comments, selected.len()));

    let mut all_ok = true;
    for (i, case) in selected.iter().enumerate() {
        let diag = Arc::new(Mutex::new(Diag::default()));
        let ctx = Ctx {
            url: args.relay.clone(),
            tls: tls.clone(),
            run: run_id.clone(),
            test: case.name,
            diag: diag.clone(),
            settle: if args.strict_timing { std::time::Duration::ZERO } else { cases::SETTLE },
            version,
        };
        let start = Instant::now();
        let result = match tokio::time::timeout(case.timeout, (case.run)(ctx)).await {
            Ok(r) => r,
            Err(_) => {
                let last = diag.lock().unwrap_or_else(|e| e.into_inner()).steps.last().cloned();
                Err(Failure::new(
                    format!("test to complete within {} ms", case.timeout.as_millis()),
                    "timeout",
                    match last {
                        Some(s) => format!("timed out after {} ms; last step: {s}", case.timeout.as_millis()),
                        None => format!("timed out after {} ms", case.timeout.as_millis()),
                    },
                ))
            }
        };
        let elapsed = start.elapsed();
        let d = diag.lock().unwrap_or_else(|e| e.into_inner());
        emit(&tap::point(i + 1, case.name, &result, elapsed, &d, args.verbose));
        if let Err(f) = &result {
            all_ok = false;
            if f.unreachable && d.connections.is_empty() {
                emit(&format!("Bail out! relay {} unreachable: {}\n", args.relay, f.message));
                return false;
            }
        }
    }
    all_ok
}

fn emit(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}
