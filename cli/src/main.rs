//! `outpost`: record, inspect, export (and later sync) Outpost records.
//!
//! Every record/inspect/export command opens the SQLite store directly, so
//! it works with no network and with the daemon stopped. Commands that make
//! an id print only that id on stdout (a script can capture it); messages
//! for people go to stderr.

mod args;
mod commands;
mod import;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    outpost_base::logging::init_cli(std::env::var("OUTPOST_LOG").ok().as_deref());
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
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
