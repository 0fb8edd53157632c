//! A real PostgreSQL server for tests (feature `test-support`): one
//! server per test process, started on first use, and a fresh database
//! per test ([`TestDb`]); and [`Cluster`], a server of a test's own for
//! what needs server settings or files (WAL archiving, backups, restores,
//! `ssl=on` with a server certificate signed by a [`TestCa`] made at test
//! time, `pg_hba.conf` lines of its own).
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
    watchdog_for(root, bin, dir, &dir.join("data"))
}

/// [`watchdog`] for the server of `data`, removing `dir` after.
fn watchdog_for(root: bool, bin: &Path, dir: &Path, data: &Path) -> Result<(), String> {
    let pid = std::process::id();
    let pg_ctl = bin.join("pg_ctl");
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

/// A PostgreSQL server of its own (not the shared one of [`TestDb`]), for
/// tests that need server settings or files of their own: WAL archiving,
/// base backups, a restore into a new data directory. Stopped, and its
/// directory removed, by the same kind of watchdog when the test process
/// ends; [`Cluster::stop`] stops it earlier.
#[derive(Debug)]
pub struct Cluster {
    /// The directory holding `data/` and whatever the test puts beside it
    /// (owned by the server's user).
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    root: bool,
    data: PathBuf,
}

impl Cluster {
    /// A new, empty server directory (`initdb`), not started.
    pub fn init() -> Result<Cluster, String> {
        let bin = bin_dir()?;
        let root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("outpost-pgc-")
            .tempdir()
            .map_err(|e| format!("cannot make a temporary directory: {e}"))?
            .keep();
        if root {
            let mut chown = Command::new("chown");
            chown.arg("postgres:postgres").arg(&dir);
            run(chown, "chown of the test server's directory to postgres")?;
        }
        watchdog(root, &bin, &dir)?;
        let data = dir.join("data");
        let mut initdb = as_server_user(root, &bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .args(["--no-sync", "--no-instructions"]);
        run(initdb, "initdb")?;
        Ok(Cluster {
            dir,
            port: 0,
            bin,
            root,
            data,
        })
    }

    /// The same server programs on another data directory (a restored
    /// backup) under this cluster's directory; not started.
    pub fn with_data(&self, data: PathBuf) -> Result<Cluster, String> {
        watchdog_for(self.root, &self.bin, &self.dir, &data)?;
        Ok(Cluster {
            dir: self.dir.clone(),
            port: 0,
            bin: self.bin.clone(),
            root: self.root,
            data,
        })
    }

    pub fn data(&self) -> &Path {
        &self.data
    }

    /// `program` (a PostgreSQL binary such as `pg_basebackup`) as the
    /// server's user.
    pub fn command(&self, program: &str) -> Command {
        as_server_user(self.root, &self.bin.join(program))
    }

    /// Runs `cmd`, failing with its output when it fails.
    pub fn run(&self, cmd: Command, what: &str) -> Result<(), String> {
        run(cmd, what)
    }

    /// Makes the directory `path`, owned by the server's user.
    pub fn make_dir(&self, path: &Path) -> Result<(), String> {
        std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if self.root {
            let mut chown = Command::new("chown");
            chown.arg("postgres:postgres").arg(path);
            run(chown, "chown")?;
        }
        Ok(())
    }

    /// Writes `text` to `path` as the server's user would own it.
    pub fn write_file(&self, path: &Path, text: &str) -> Result<(), String> {
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        if self.root {
            let mut chown = Command::new("chown");
            chown.arg("postgres:postgres").arg(path);
            run(chown, "chown")?;
        }
        Ok(())
    }

    /// Starts the server on a free loopback port with `settings`
    /// (`name=value`, as `-c` options), waiting until it accepts
    /// connections (a restore may take a while to replay).
    pub fn start(&mut self, settings: &[&str]) -> Result<(), String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?
            .port();
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={}",
            self.dir.display()
        );
        for s in settings {
            options.push_str(" -c ");
            options.push_str(s);
        }
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.dir.join(format!("server-{port}.log")))
            .args(["-w", "-t", "120", "-o", &options, "start"]);
        run(pg_ctl, "pg_ctl start").map_err(|e| {
            let log = std::fs::read_to_string(self.dir.join(format!("server-{port}.log")))
                .unwrap_or_default();
            format!("{e}\n{log}")
        })?;
        self.port = port;
        Ok(())
    }

    /// Stops the server (fast: open sessions are ended).
    pub fn stop(&self) -> Result<(), String> {
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"]);
        run(pg_ctl, "pg_ctl stop")
    }

    /// `postgres://postgres@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

/// A certificate authority made for one test (`rcgen`), to sign the
/// server certificate of a [`Cluster`] with `ssl=on`: the TLS tests trust
/// it through a CA file, or find that nothing else does.
pub struct TestCa {
    /// The CA's certificate (PEM), what a CA file holds.
    pub cert_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestCa")
    }
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let key = KeyPair::generate().expect("a key pair for the test CA");
        let mut params =
            CertificateParams::new(Vec::<String>::new()).expect("the test CA's parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("the test CA's certificate");
        TestCa {
            cert_pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` (host names or IP addresses)
    /// signed by this CA: (certificate PEM, private key PEM).
    pub fn server_cert(&self, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("a key pair for the server");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).expect("the server's parameters");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("the server's certificate");
        (cert.pem(), key.serialize_pem())
    }
}

impl Cluster {
    /// Gives the server a certificate for `names` signed by `ca` (files in
    /// the cluster's directory, the key readable by the server's user
    /// only, as PostgreSQL insists) and returns the settings that turn TLS
    /// on, for [`Cluster::start`].
    pub fn tls_settings(&self, ca: &TestCa, names: &[&str]) -> Result<Vec<String>, String> {
        use std::os::unix::fs::PermissionsExt;
        let (cert, key) = ca.server_cert(names);
        let cert_file = self.dir.join("server.crt");
        let key_file = self.dir.join("server.key");
        self.write_file(&cert_file, &cert)?;
        self.write_file(&key_file, &key)?;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", key_file.display()))?;
        Ok(vec![
            "ssl=on".into(),
            format!("ssl_cert_file={}", cert_file.display()),
            format!("ssl_key_file={}", key_file.display()),
        ])
    }

    /// Replaces the server's `pg_hba.conf` with `lines` (read at start),
    /// e.g. `hostssl` lines only, so that the server itself refuses
    /// connections without TLS.
    pub fn write_hba(&self, lines: &str) -> Result<(), String> {
        self.write_file(&self.data.join("pg_hba.conf"), lines)
    }

    /// Starts the server with TLS on (a certificate from `ca` for `names`)
    /// and TCP connections without TLS refused by `pg_hba.conf`.
    pub fn start_tls_only(&mut self, ca: &TestCa, names: &[&str]) -> Result<(), String> {
        let settings = self.tls_settings(ca, names)?;
        self.write_hba(
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostssl all all ::1/128 trust\n",
        )?;
        let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
        self.start(&settings)
    }
}
