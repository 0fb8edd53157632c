//! `outpost`: record, inspect, export (and later sync) Outpost records.
//!
//! Every record/inspect/export command opens the SQLite store directly, so
//! it works with no network and with the daemon stopped. Commands that make
//! an id print only that id on stdout (a script can capture it); messages
//! for people go to stderr.

mod args;
mod commands;
mod output;
mod ui;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    outpost_base::logging::init_cli(std::env::var("OUTPOST_LOG").ok().as_deref());
    let data_dir = outpost_store::config::Paths::resolve(cli.data_dir.as_deref())
        .ok()
        .map(|p| p.data_dir);
    let json = cli.json;
    let result = commands::run(cli);
    if json
        && let Err(err) = &result
        && !is_broken_pipe(err)
    {
        // A script asked for JSON: the error is one JSON object on stderr
        // (stdout stays for results), with the same words as for people.
        let full = data_dir
            .as_deref()
            .is_some_and(outpost_base::files::is_full)
            && is_io(err);
        let message = if full {
            "the disk holding the data directory is full: nothing was saved. Free some space and run the command again".to_string()
        } else {
            err.to_string()
        };
        let causes: Vec<String> = err.chain().skip(1).map(ToString::to_string).collect();
        eprintln!(
            "{}",
            serde_json::json!({ "error": message, "causes": causes })
        );
        return ExitCode::FAILURE;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `outpost list | head -1`: the reader has all it wanted. End
        // quietly and successfully, as ripgrep and coreutils do.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err)
            if is_io(&err)
                && data_dir
                    .as_deref()
                    .is_some_and(outpost_base::files::is_full) =>
        {
            // SQLite may call a full disk "disk I/O error"; say what it is.
            // Every write is one transaction, so a failed one kept nothing.
            let dir = data_dir.as_deref().unwrap_or(std::path::Path::new("."));
            eprintln!(
                "error: the disk holding {} is full: nothing was saved. Free some space and run the command again",
                dir.display()
            );
            for cause in err.chain() {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
        Err(err) => {
            // The chain carries the cause (e.g. which file, which field).
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Whether `err` is a failed read or write of a file (SQLite's or ours).
fn is_io(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some()
            || cause
                .downcast_ref::<outpost_store::store::StoreError>()
                .is_some_and(outpost_store::store::StoreError::is_io)
    })
}

/// Whether `err` comes from writing to a stdout whose reader has gone.
/// The write error may sit anywhere in the chain, and some writers (csv,
/// XLSX) wrap the `io::Error` in their own type.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    let pipe = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
    err.chain().any(|cause| {
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            return pipe(e);
        }
        if let Some(e) = cause.downcast_ref::<csv::Error>() {
            return matches!(e.kind(), csv::ErrorKind::Io(e) if pipe(e));
        }
        if let Some(rust_xlsxwriter::XlsxError::IoError(e)) =
            cause.downcast_ref::<rust_xlsxwriter::XlsxError>()
        {
            return pipe(e);
        }
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_recognised_through_wrappers() {
        let pipe = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&anyhow::Error::new(pipe())));
        assert!(is_broken_pipe(
            &anyhow::Error::new(pipe()).context("writing the list")
        ));
        assert!(is_broken_pipe(&anyhow::Error::new(
            csv::Error::from(pipe())
        )));
        let export = outpost_files::export::ExportError::Io(pipe());
        assert!(is_broken_pipe(&anyhow::Error::new(export)));
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert!(!is_broken_pipe(&anyhow::Error::new(full)));
        assert!(!is_broken_pipe(&anyhow::anyhow!("Broken pipe")));
    }
}
