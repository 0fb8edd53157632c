//! Shared harness for the integration tests that drive the real binaries.
//!
//! # Layout
//!
//! - `src/lib.rs` (this file): find (or build) the `outpost` binary, run it
//!   against a throw-away data directory ([`TestDir`]) with a clean
//!   environment, and small helpers the tests share (UUID and CSV checks,
//!   raw byte search).
//! - `tests/cli.rs`: the command line contract (DESIGN.md sections 2, 3, 4
//!   and 6), one real `outpost` process per command.
//! - `tests/crash.rs`: `visit add` in a loop, killed with SIGKILL, then the
//!   store is checked for lost records and damage.
//! - `tests/erasure.rs`: `delete` really removes a record's text (history
//!   included) from the SQLite files.
//! - [`hub`]: a hub as a real process and laptops enrolled with it.
//! - `tests/sync_processes.rs`: hub and laptops as real processes.
//! - `tests/devices.rs`: device names and what laptops report at sync, as
//!   `admin devices` shows them; revoking by id prefix or name.
//! - `tests/web.rs`: the staff web app that `outpost ui` opens, through raw
//!   HTTP (plain HTML forms, refusals) and a real Chromium (keyboard-only
//!   entry, screenshots under `<target>/screenshots/`).
//! - `tests/dashboard.rs`: the hub's coordinator dashboard in a real
//!   Chromium against a real hub process (sign-in code, charts, records,
//!   devices, downloads, another org's 404, axe).
//! - [`browser`]: what the browser tests share (chromedriver, Chromium,
//!   screenshots, axe, a hub process).
//!
//! # Why the binary is found by hand
//!
//! `env!("CARGO_BIN_EXE_outpost")` only exists in tests of the package that
//! owns the binary (`outpost-cli`), and this crate is not that package. So
//! [`outpost_bin`] looks next to the test executable: cargo puts tests in
//! `target/<profile>/deps/` and binaries in `target/<profile>/`.
//!
//! `cargo test -p outpost-tests` does not build `outpost` (a package's tests
//! never trigger another package's binaries), so the file there may be
//! missing, or stale (built from older sources, which would make these
//! tests check yesterday's code). [`outpost_bin`] therefore runs
//! `cargo build -p outpost-cli -p outpost-daemon` once per test process
//! (guarded by a [`OnceLock`]). It is a no-op taking well under a second
//! when everything is up to date, e.g. under `cargo test --workspace`.
//! Set `OUTPOST_TEST_NO_BUILD=1` to skip it and use whatever binary is there.

pub mod hub;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::sync::{LazyLock, OnceLock};

use serde_json::Value;

pub mod browser;

/// Environment variables the binaries read; removed from every child so a
/// developer's shell settings cannot leak into a test.
pub const OUTPOST_ENV_PREFIX: &str = "OUTPOST_";

/// `target/<profile>`: the directory holding this test executable's `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe
        .parent()
        .expect("test executable in target/<profile>/deps");
    let dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("target/<profile>")
    } else {
        deps
    };
    dir.to_path_buf()
}

/// Builds the binaries once per test process; see the module docs for why.
fn build_once() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if std::env::var_os("OUTPOST_TEST_NO_BUILD").is_some() {
            return;
        }
        let dir = profile_dir();
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_string(),
            Some(other) => other.to_string(),
        };
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--quiet", "-p", "outpost-cli", "-p", "outpost-daemon"])
            .args(["--bins", "--profile", &profile])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if let Some(target) = dir.parent() {
            cmd.arg("--target-dir").arg(target);
        }
        let out = cmd.output().expect("could not run cargo to build outpost");
        assert!(
            out.status.success(),
            "`cargo build -p outpost-cli -p outpost-daemon` failed, so the tests cannot run the binaries:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// Path of a workspace binary (`outpost`, `outpostd`), built if needed.
pub fn bin(name: &str) -> PathBuf {
    build_once();
    let path = profile_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing even after building; run `cargo build -p outpost-cli -p outpost-daemon`",
        path.display()
    );
    path
}

/// Path of the `outpost` CLI binary, built if needed.
pub fn outpost_bin() -> PathBuf {
    bin("outpost")
}

/// Removes every `OUTPOST_*` variable from `cmd`'s environment.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with(OUTPOST_ENV_PREFIX) {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// An `outpost` command with a clean environment and no `--data-dir`.
pub fn outpost_command() -> Command {
    let mut cmd = Command::new(outpost_bin());
    clean_env(&mut cmd);
    cmd
}

/// Exit status, stdout and stderr of one run.
pub type RunResult = (ExitStatus, String, String);

fn result(out: Output) -> RunResult {
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Visit flags that make a valid visit; [`TestDir::add_visit`] uses each one
/// unless the caller gives that flag itself. They are the shared fixture
/// visit ([`outpost_proto::fixtures::visit_body`]) spelled as the flags the
/// field table gives its fields, so they follow both.
pub static VISIT_DEFAULTS: LazyLock<Vec<(String, String)>> = LazyLock::new(|| {
    use outpost_proto::schema::{Scope, fields_of};
    let body = outpost_proto::fixtures::visit_body();
    fields_of(Scope::Visit)
        .filter_map(|def| {
            let flag = def.flag?;
            let value = match body.get(def.name)? {
                Value::String(s) => s.clone(),
                Value::Array(items) => items.first()?.as_str()?.to_string(),
                other => other.to_string(),
            };
            Some((format!("--{}", flag.long), value))
        })
        .collect()
});

/// Default site and staff of [`TestDir::init`].
pub const ORG: &str = "mjolby";
pub const SITE: &str = "Mjölby bibliotek";
pub const STAFF: &str = "AB";

/// A temporary data directory and the `outpost` commands run against it.
#[derive(Debug)]
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl Default for TestDir {
    fn default() -> Self {
        Self::new()
    }
}

impl TestDir {
    /// An empty directory (no store yet).
    pub fn new() -> TestDir {
        TestDir {
            dir: tempfile::Builder::new()
                .prefix("outpost-test-")
                .tempdir()
                .expect("a temporary directory"),
        }
    }

    /// A directory with a store made by [`TestDir::init`].
    pub fn initialised() -> TestDir {
        let td = TestDir::new();
        td.init();
        td
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The SQLite store file (`DIR/outpost.db`).
    pub fn db(&self) -> PathBuf {
        self.path().join("outpost.db")
    }

    /// `outpost --data-dir DIR ARGS…`, ready to run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = outpost_command();
        cmd.arg("--data-dir").arg(self.path()).args(args);
        cmd
    }

    /// Runs `outpost --data-dir DIR ARGS…`.
    pub fn run(&self, args: &[&str]) -> RunResult {
        result(
            self.command(args)
                .output()
                .expect("could not start the outpost binary"),
        )
    }

    /// Runs and asserts success; returns stdout (untrimmed).
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let (status, stdout, stderr) = self.run(args);
        assert!(
            status.success(),
            "`outpost {}` failed ({status}):\n{stderr}",
            args.join(" ")
        );
        stdout
    }

    /// Runs and asserts a clean failure: a non-zero exit that is not a panic,
    /// with a message on stderr. Returns stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> String {
        let (status, stdout, stderr) = self.run(args);
        assert!(
            !status.success(),
            "`outpost {}` should have failed but succeeded; stdout:\n{stdout}\nstderr:\n{stderr}",
            args.join(" ")
        );
        assert_not_a_crash(args, status, &stderr);
        assert!(
            !stderr.trim().is_empty(),
            "`outpost {}` failed without saying why",
            args.join(" ")
        );
        stderr
    }

    /// `outpost init --org mjolby --site "Mjölby bibliotek" --staff AB`;
    /// returns the device id.
    #[track_caller]
    pub fn init(&self) -> String {
        self.ok(&["init", "--org", ORG, "--site", SITE, "--staff", STAFF])
            .trim()
            .to_string()
    }

    /// The `visit add` arguments: `extra` plus every default flag `extra`
    /// does not give itself.
    pub fn visit_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["visit", "add"];
        for (flag, value) in VISIT_DEFAULTS.iter() {
            if !extra.contains(&flag.as_str()) {
                args.extend([flag.as_str(), value.as_str()]);
            }
        }
        args.extend_from_slice(extra);
        args
    }

    /// `outpost visit add` with sane defaults (see [`VISIT_DEFAULTS`]),
    /// overridden or extended by `extra`; returns the new id.
    #[track_caller]
    pub fn add_visit(&self, extra: &[&str]) -> String {
        let id = self.ok(&Self::visit_args(extra)).trim().to_string();
        assert!(is_uuid(&id), "visit add printed {id:?}, not an id");
        id
    }

    /// `outpost course add --title TITLE EXTRA…`; returns the new id.
    #[track_caller]
    pub fn add_course(&self, title: &str, extra: &[&str]) -> String {
        let mut args = vec!["course", "add", "--title", title];
        args.extend_from_slice(extra);
        let id = self.ok(&args).trim().to_string();
        assert!(is_uuid(&id), "course add printed {id:?}, not an id");
        id
    }

    /// `outpost course session ID --date D --minutes M --participants N`;
    /// returns the session id.
    #[track_caller]
    pub fn add_session(&self, course: &str, date: &str, minutes: u32, participants: u32) -> String {
        let (m, p) = (minutes.to_string(), participants.to_string());
        self.ok(&[
            "course",
            "session",
            course,
            "--date",
            date,
            "--minutes",
            &m,
            "--participants",
            &p,
        ])
        .trim()
        .to_string()
    }

    /// Runs and parses stdout as JSON (asserting success).
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| {
            panic!("`outpost {}` printed no JSON ({e}):\n{out}", args.join(" "))
        })
    }

    /// `outpost --json list`: the whole store, for "store unchanged" checks.
    #[track_caller]
    pub fn snapshot(&self) -> Value {
        self.json(&["--json", "list"])
    }

    /// `outpost --json show ID`.
    #[track_caller]
    pub fn show(&self, id: &str) -> Value {
        self.json(&["--json", "show", id])
    }

    /// The records of `outpost --json list ARGS…`.
    #[track_caller]
    pub fn list(&self, args: &[&str]) -> Vec<Value> {
        let mut full = vec!["--json", "list"];
        full.extend_from_slice(args);
        match self.json(&full) {
            Value::Array(items) => items,
            other => panic!("list --json printed {other}, not an array"),
        }
    }

    /// The ids `outpost --json list ARGS…` returns, sorted.
    #[track_caller]
    pub fn list_ids(&self, args: &[&str]) -> Vec<String> {
        let mut ids: Vec<String> = self
            .list(args)
            .iter()
            .map(|r| r["id"].as_str().expect("a record id").to_string())
            .collect();
        ids.sort();
        ids
    }

    /// The raw bytes of the store's files that exist: `outpost.db`,
    /// `outpost.db-wal`, `outpost.db-shm`, with their names.
    pub fn store_files(&self) -> Vec<(String, Vec<u8>)> {
        ["outpost.db", "outpost.db-wal", "outpost.db-shm"]
            .iter()
            .filter_map(|name| {
                std::fs::read(self.path().join(name))
                    .ok()
                    .map(|b| (name.to_string(), b))
            })
            .collect()
    }
}

/// Panics if a run ended in a panic or a signal rather than an error exit.
#[track_caller]
pub fn assert_not_a_crash(args: &[&str], status: ExitStatus, stderr: &str) {
    assert!(
        status.code().is_some() && status.code() != Some(101) && !stderr.contains("panicked"),
        "`outpost {}` crashed ({status}):\n{stderr}",
        args.join(" ")
    );
}

/// `8-4-4-4-12` lowercase or uppercase hex digits.
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether `needle` occurs in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Parses CSV text (RFC 4180: quoted fields may hold the separator, quotes
/// doubled, line breaks) into rows of cells. Enough for checking exports
/// without another dependency.
pub fn parse_csv(text: &str, sep: char) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    cell.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                _ => cell.push(c),
            }
        } else if c == '"' {
            quoted = true;
        } else if c == sep {
            row.push(std::mem::take(&mut cell));
        } else if c == '\r' && chars.peek() == Some(&'\n') {
            // CRLF: the '\n' ends the row.
        } else if c == '\n' {
            row.push(std::mem::take(&mut cell));
            rows.push(std::mem::take(&mut row));
        } else {
            cell.push(c);
        }
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_parser_handles_quotes_and_crlf() {
        let rows = parse_csv("a,b\r\n\"x,y\",\"say \"\"hi\"\"\"\n", ',');
        assert_eq!(rows, vec![vec!["a", "b"], vec!["x,y", "say \"hi\""]]);
        assert_eq!(parse_csv("a;b", ';'), vec![vec!["a", "b"]]);
    }

    #[test]
    fn uuid_shape() {
        assert!(is_uuid("67e55044-10b1-426f-9247-bb680e5fe0c8"));
        assert!(!is_uuid("67e55044-10b1-426f-9247-bb680e5fe0c"));
        assert!(!is_uuid("error: no store"));
    }

    #[test]
    fn visit_args_let_extra_flags_replace_defaults() {
        let args = TestDir::visit_args(&["--minutes", "45", "--note", "x"]);
        assert_eq!(args.iter().filter(|a| **a == "--minutes").count(), 1);
        assert!(args.ends_with(&["--minutes", "45", "--note", "x"]));
        assert!(args.contains(&"--date"));
    }

    #[test]
    fn byte_search() {
        assert!(contains_bytes(b"abcdef", b"cde"));
        assert!(!contains_bytes(b"abcdef", b"xyz"));
        assert!(!contains_bytes(b"abc", b""));
    }
}
