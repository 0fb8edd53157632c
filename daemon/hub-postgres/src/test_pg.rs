//! A real PostgreSQL server for tests (feature `test-support`): one
//! server per test process, started on first use, and a fresh database
//! per test.
//!
//! The server runs from Debian's packages (`/usr/lib/postgresql/*/bin`)
//! in a temporary directory, on a free loopback port, with its unix
//! socket in that directory and `fsync=off` (a test database need not
//! survive a power cut). As root (CI) it runs as the `postgres` user
//! through `runuser`, since PostgreSQL refuses to run as root. Without
//! PostgreSQL the test fails, naming the command that installs it
//! (`tests/run.sh` installs it); it never passes silently.
//!
//! Stopping: Rust runs no destructor for a static at exit, and a test
//! that panics must not leave a server behind either. So the server gets
//! a watchdog: a small shell in a session of its own (Ctrl-C on the test
//! run does not reach it) that waits for this test process to end,
//! however it ends, then runs `pg_ctl stop -m immediate` and removes the
//! directory. Each [`TestDb`] drops its database when the test ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// What to run to get PostgreSQL, in every failure message.
pub const INSTALL: &str =
    "install PostgreSQL: apt-get install postgresql (tests/run.sh does this when it is missing)";

struct Server {
    port: u16,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// A database of its own for one test, dropped when this is dropped.
#[derive(Debug)]
pub struct TestDb {
    /// `postgres://postgres@127.0.0.1:PORT/t_…`
    pub url: String,
    name: String,
    port: u16,
}

impl TestDb {
    /// A fresh, empty database on the test process's server (started now
    /// if this is the first). Panics, saying what to install or what
    /// failed, when there is no PostgreSQL to be had.
    pub fn new() -> TestDb {
        let server = match SERVER.get_or_init(start) {
            Ok(s) => s,
            Err(e) => panic!("no PostgreSQL server for the tests: {e}"),
        };
        let name = format!("t_{:016x}", rand::random::<u64>());
        let mut admin = admin_client(server.port)
            .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL server: {e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        TestDb {
            url: format!("postgres://postgres@127.0.0.1:{}/{name}", server.port),
            name,
            port: server.port,
        }
    }
}

impl Default for TestDb {
    fn default() -> Self {
        TestDb::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Best effort: the whole server goes when the process ends anyway.
        if let Ok(mut admin) = admin_client(self.port) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn admin_client(port: u16) -> Result<postgres::Client, postgres::Error> {
    postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname("postgres")
        .connect(postgres::NoTls)
}

/// The newest `/usr/lib/postgresql/VERSION/bin` that has `initdb`.
fn bin_dir() -> Result<PathBuf, String> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| format!("/usr/lib/postgresql is missing; {INSTALL}"))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| format!("no /usr/lib/postgresql/*/bin/initdb; {INSTALL}"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program` run as the `postgres` user when this process is root.
fn as_server_user(root: bool, program: &Path) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut cmd: Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}; {INSTALL}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn start() -> Result<Server, String> {
    let bin = bin_dir()?;
    let root = is_root();
    let dir = tempfile::Builder::new()
        .prefix("outpost-pg-")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary directory: {e}"))?
        .keep();
    let data = dir.join("data");
    if root {
        let mut chown = Command::new("chown");
        chown.arg("postgres:postgres").arg(&dir);
        run(chown, "chown of the test server's directory to postgres")?;
    }
    let mut initdb = as_server_user(root, &bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
        .args(["--no-sync", "--no-instructions"]);
    run(initdb, "initdb")?;
    // The watchdog first, so that even a server that fails half-way
    // through starting is stopped and its directory removed.
    watchdog(root, &bin, &dir)?;
    // A free port: bound by us, released, then taken by the server; a
    // clash with another process in between fails the start, so retry.
    let mut last = String::new();
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?
            .port();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={} \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=300 -c shared_buffers=64MB",
            dir.display()
        );
        let mut pg_ctl = as_server_user(root, &bin.join("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]);
        match run(pg_ctl, "pg_ctl start") {
            Ok(()) => return Ok(Server { port }),
            Err(e) => {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                last = format!("{e}\n{log}");
            }
        }
    }
    Err(last)
}

/// A shell, in a session of its own, that waits for this process to end
/// and then stops the server and removes `dir`.
fn watchdog(root: bool, bin: &Path, dir: &Path) -> Result<(), String> {
    let pid = std::process::id();
    let pg_ctl = bin.join("pg_ctl");
    let data = dir.join("data");
    let stop = if root {
        format!(
            "runuser -u postgres -- '{}' -D '{}' stop -m immediate",
            pg_ctl.display(),
            data.display()
        )
    } else {
        format!(
            "'{}' -D '{}' stop -m immediate",
            pg_ctl.display(),
            data.display()
        )
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; {stop} >/dev/null 2>&1; rm -rf '{}'",
        dir.display()
    );
    Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the watchdog that stops the test server: {e}"))?;
    Ok(())
}
