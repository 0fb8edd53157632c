//! `outpostd`: the laptop daemon (and, later, `outpostd hub`). Parses
//! arguments, loads settings and hands off to the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use outpost_daemon::config::{Paths, Settings};

/// Outpost's background daemon: keeps the local record store and syncs it
/// with the hub whenever the network allows.
#[derive(Debug, Parser)]
#[command(name = "outpostd", version)]
struct Args {
    /// Data directory (holds the store, config.toml and logs).
    #[arg(long, env = "OUTPOST_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let paths = Paths::resolve(args.data_dir.as_deref())?;
    let settings = Settings::load(&paths)?;
    let _guard = outpost_daemon::logging::init_daemon(&paths.log_dir(), "outpostd", &settings.log)
        .with_context(|| format!("could not open the log directory {}", paths.log_dir().display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async {
        outpost_daemon::daemon::run(paths, settings, shutdown_signal())
            .await
            .context("outpostd stopped with an error")
    })
}

/// Resolves on Ctrl-C or SIGTERM (what systemd and `kill` send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
