use clap::Parser;
use moq_relay::config::Args;
use std::io::Write as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        // A log that cannot be written (a full disk under stderr) is lost, not
        // fatal: tracing-subscriber would report it on stderr with eprintln!,
        // which panics when stderr fails, and a relay mid-call must not exit.
        .log_internal_errors(false)
        .init();
    let mut args = Args::parse();
    let result = match args.command.take() {
        Some(cmd) => moq_relay::tokens::run(cmd),
        None => match args.resolve() {
            Ok(config) => moq_relay::run(config).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: it panics if stderr cannot be written.
            let _ = writeln!(std::io::stderr(), "moq-relay: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
