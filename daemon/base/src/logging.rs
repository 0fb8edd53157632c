//! Tracing setup for the binaries. Libraries only emit events; the
//! binaries decide where they go.

use std::fmt;
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

/// An error and its causes on one line, "a: b: c": for a log event
/// (`error = %Chain(&e)`) and for messages kept where no `caused by:`
/// lines are printed (the laptop's sync status). `%e` alone shows only
/// the outermost message, and PostgreSQL's driver puts the server's words
/// in a cause (its own text is "db error"), so a failed query was logged
/// without them. A cause whose text is already shown (an error that
/// prints its source with `{0}`) is not repeated.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.0.to_string();
        let mut next = self.0.source();
        while let Some(cause) = next {
            let part = cause.to_string();
            if !text.contains(&part) {
                text.push_str(": ");
                text.push_str(&part);
            }
            next = cause.source();
        }
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::Chain;

    #[derive(Debug, thiserror::Error)]
    enum Inner {
        #[error("db error")]
        Db(#[source] std::io::Error),
    }

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("hub database error: {0}")]
        Backend(#[from] Inner),
    }

    #[test]
    fn a_chain_shows_every_cause_once() {
        let e = Outer::from(Inner::Db(std::io::Error::other(
            "ERROR: relation \"docs\" does not exist",
        )));
        assert_eq!(e.to_string(), "hub database error: db error");
        assert_eq!(
            Chain(&e).to_string(),
            "hub database error: db error: ERROR: relation \"docs\" does not exist"
        );
    }

    #[test]
    fn an_error_without_causes_is_its_message() {
        let e = std::io::Error::other("disk full");
        assert_eq!(Chain(&e).to_string(), "disk full");
    }
}
