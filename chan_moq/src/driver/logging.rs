//! Routes the `tracing` events of the MoQ and call libraries into
//! Asterisk's logger, so a malformed object or a refused subscription shows
//! up in `messages.log` next to the channel it concerns.

use crate::ast::{self, Level};
use std::io::Write;
use tracing_subscriber::fmt::MakeWriter;

/// One formatted event, logged when dropped.
pub struct Line {
    level: Level,
    buf: Vec<u8>,
}

impl Write for Line {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let text = text.trim_end();
        if !text.is_empty() {
            ast::log(self.level, text);
        }
    }
}

pub struct AstLogger;

impl<'a> MakeWriter<'a> for AstLogger {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line { level: Level::Notice, buf: Vec::new() }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Line {
        let level = match *meta.level() {
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warning,
            tracing::Level::INFO => Level::Notice,
            _ => Level::Debug,
        };
        Line { level, buf: Vec::new() }
    }
}

/// Installs the bridge once per process (a reloaded module finds it set).
/// Warnings and errors by default; `MOQ_LOG` (an EnvFilter directive in
/// Asterisk's environment) selects more.
pub fn install() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MOQ_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(AstLogger)
        .with_ansi(false)
        .without_time()
        .with_level(false)
        .with_target(true)
        // Never eprintln! from inside Asterisk: it panics if stderr fails.
        .log_internal_errors(false)
        .try_init();
}
