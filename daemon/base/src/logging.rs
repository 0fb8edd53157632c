//! Tracing setup for the binaries. Libraries only emit events; the
//! binaries decide where they go.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Builds the filter from the user's setting. Automerge instruments its
/// load and apply functions as INFO spans; recording those costs more than
/// the merge itself on a busy hub, so they are off unless the setting names
/// `automerge` itself.
fn env_filter(filter: &str, fallback: &str) -> EnvFilter {
    let directives = if filter.contains("automerge") {
        filter.to_string()
    } else {
        format!("{filter},automerge=warn")
    };
    EnvFilter::try_new(directives)
        .unwrap_or_else(|_| EnvFilter::new(format!("{fallback},automerge=warn")))
}

/// The daemon logs to daily files in `log_dir` and to stderr. `filter` is a
/// `tracing` filter such as `info`; `OUTPOST_LOG` (already folded into the
/// settings) sets it. Keep the guard alive until exit so the file is flushed.
pub fn init_daemon(
    log_dir: &Path,
    file_prefix: &str,
    filter: &str,
) -> std::io::Result<WorkerGuard> {
    std::fs::create_dir_all(log_dir)?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix(file_prefix)
        .filename_suffix("log")
        .max_log_files(14)
        .build(log_dir)
        .map_err(std::io::Error::other)?;
    let (file_writer, guard) = tracing_appender::non_blocking(appender);
    let env_filter = env_filter(filter, "info");
    tracing_subscriber::registry()
        .with(env_filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(file_writer)
                .with_ansi(false),
        )
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .try_init()
        .map_err(std::io::Error::other)?;
    Ok(guard)
}

/// The CLI logs warnings and errors to stderr only (its stdout is for
/// results a script may capture).
pub fn init_cli(filter: Option<&str>) {
    let env_filter = env_filter(filter.unwrap_or("warn"), "warn");
    let _ = tracing_subscriber::registry()
        .with(env_filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .without_time(),
        )
        .try_init();
}
