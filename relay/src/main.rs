use clap::Parser;
use moq_relay::config::Args;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
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
            eprintln!("moq-relay: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
