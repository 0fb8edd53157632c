//! A hub as a real process (`outpostd hub` on a free loopback port) and
//! laptops enrolled with it through the real `outpost` CLI, shared by the
//! tests that need both (`tests/sync_processes.rs`, `tests/devices.rs`).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{bin, clean_env as clean};

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `port` (up to 30 s).
pub fn listening(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

pub fn run_at(dir: &Path, args: &[&str]) -> Output {
    clean(
        Command::new(bin("outpost"))
            .arg("--data-dir")
            .arg(dir)
            .args(args),
    )
    .output()
    .unwrap()
}

pub fn ok_at(dir: &Path, args: &[&str]) -> String {
    let out = run_at(dir, args);
    assert!(
        out.status.success(),
        "outpost {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub struct HubProc {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub token: String,
    pub child: Option<Child>,
    /// Open-file soft limit the hub process is started with (`prlimit`).
    pub nofile: Option<u64>,
}

impl HubProc {
    pub fn start() -> HubProc {
        let dir = tempfile::tempdir().unwrap();
        let out = clean(
            Command::new(bin("outpostd"))
                .args(["hub", "init", "--data-dir"])
                .arg(dir.path()),
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let port = free_port();
        let mut hub = HubProc {
            dir,
            url: format!("http://127.0.0.1:{port}"),
            token,
            child: None,
            nofile: None,
        };
        hub.spawn();
        hub
    }

    /// A hub with the organisation `mjolby`, as most tests want it.
    pub fn with_mjolby() -> HubProc {
        let hub = HubProc::start();
        let scratch = tempfile::tempdir().unwrap();
        hub.admin(scratch.path(), &["org", "add", "mjolby", "Mjölby kommun"]);
        hub
    }

    pub fn spawn(&mut self) {
        let port = self.url.rsplit(':').next().unwrap().to_string();
        // Under `prlimit --nofile=SOFT:` when asked: the soft limit a
        // packaged hub used to keep (the hard limit stays).
        let mut cmd = match self.nofile {
            Some(soft) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={soft}:"))
                    .arg("--")
                    .arg(bin("outpostd"));
                c
            }
            None => Command::new(bin("outpostd")),
        };
        let child = clean(
            cmd.args(["hub", "--data-dir"])
                .arg(self.dir.path())
                .args(["--listen", &format!("127.0.0.1:{port}")]),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("could not start the hub (prlimit comes with util-linux: apt-get install -y util-linux)");
        self.child = Some(child);
        assert!(
            listening(port.parse().unwrap()),
            "the hub did not start listening within 30 s"
        );
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap(); // SIGKILL on unix
            c.wait().unwrap();
        }
    }

    pub fn admin(&self, scratch: &Path, args: &[&str]) -> String {
        // The token goes in a file, never in argv (DESIGN §3).
        let file = scratch.join("admin-token");
        std::fs::write(&file, &self.token).unwrap();
        let file = file.to_string_lossy().into_owned();
        let mut full = vec!["admin", "--hub", &self.url, "--token-file", &file];
        full.extend_from_slice(args);
        ok_at(scratch, &full)
    }
}

impl Drop for HubProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A laptop of `org` at `site` (staff "AB") enrolled with `hub`.
pub fn laptop(hub: &HubProc, org: &str, site: &str) -> tempfile::TempDir {
    laptop_named(hub, org, site, "AB", None)
}

/// A laptop enrolled with `hub`, with `--name` when `name` is given.
pub fn laptop_named(
    hub: &HubProc,
    org: &str,
    site: &str,
    staff: &str,
    name: Option<&str>,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    ok_at(
        dir.path(),
        &["init", "--org", org, "--site", site, "--staff", staff],
    );
    let code = hub.admin(dir.path(), &["invite", "--org", org]);
    let mut args = vec!["enroll", &hub.url, &code];
    if let Some(name) = name {
        args.extend(["--name", name]);
    }
    ok_at(dir.path(), &args);
    dir
}

/// `outpost visit add` of a valid visit with `note`; its id.
pub fn add_visit(dir: &Path, note: &str) -> String {
    ok_at(dir, &crate::TestDir::visit_args(&["--note", note]))
}

/// `outpost admin --hub NODE --token-file … ARGS` run from `scratch`
/// (where the token file is written); its output.
pub fn admin(node: &HubNode, token: &str, scratch: &Path, args: &[&str]) -> String {
    let file = scratch.join("admin-token");
    std::fs::write(&file, token).unwrap();
    let file = file.to_string_lossy().into_owned();
    let mut full = vec!["admin", "--hub", &node.url, "--token-file", &file];
    full.extend_from_slice(args);
    ok_at(scratch, &full)
}

/// The ids of every record a laptop holds, sorted.
pub fn record_ids(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = ok_at(dir, &["export", "--format", "jsonl"])
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    ids
}

/// One `outpostd hub` process on the PostgreSQL `database`, one node of
/// several that share it (`tests/hub_nodes.rs`, `tests/hub_limits.rs`),
/// with `env` settings on top of a clean environment; killed when dropped.
pub struct HubNode {
    dir: tempfile::TempDir,
    pub url: String,
    child: Child,
}

impl HubNode {
    pub fn start(database: &str, env: &[(&str, &str)]) -> HubNode {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = clean(
            Command::new(bin("outpostd"))
                .args(["hub", "--database", database, "--data-dir"])
                .arg(dir.path())
                .args(["--listen", &format!("127.0.0.1:{port}")]),
        )
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let node = HubNode {
            dir,
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        assert!(listening(port), "hub node did not listen in 30 s");
        node
    }

    /// Everything the node has logged so far (its data dir's `logs`).
    pub fn log_text(&self) -> String {
        let Ok(files) = std::fs::read_dir(self.dir.path().join("logs")) else {
            return String::new();
        };
        files
            .flatten()
            .map(|f| std::fs::read_to_string(f.path()).unwrap_or_default())
            .collect()
    }
}

impl Drop for HubNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
