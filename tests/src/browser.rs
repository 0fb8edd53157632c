//! What the browser tests share (`tests/web.rs`, `tests/dashboard.rs`):
//! chromedriver and a headless Chromium (fantoccini), screenshots under
//! `<target dir>/screenshots/`, the axe accessibility scan, and a real
//! hub process with an admin token.
//!
//! The browser tests need Debian's `chromium` and `chromium-driver`; when
//! chromedriver is missing they fail and say how to install it (never a
//! silent skip).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::TestDir;

pub const INSTALL: &str = "install: apt-get install -y chromium chromium-driver";

pub fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([
        PathBuf::from("/usr/bin"),
        PathBuf::from("/usr/lib/chromium"),
    ]) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

pub struct Driver {
    pub child: Child,
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_driver() -> Driver {
    let driver = find_program(&["chromedriver"])
        .unwrap_or_else(|| panic!("chromedriver not found; {INSTALL}"));
    assert!(
        find_program(&["chromium", "chromium-browser"]).is_some(),
        "chromium not found; {INSTALL}"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start chromedriver ({e}); {INSTALL}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not start listening"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

pub async fn browser(driver: &Driver) -> Client {
    let chromium = find_program(&["chromium", "chromium-browser"]).unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            // As root (CI containers) chromium needs --no-sandbox.
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1100,1400", "--lang=sv-SE", "--no-first-run"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session through chromedriver")
}

pub fn screenshot_dir() -> PathBuf {
    // target/<profile>/deps/<test exe> → target/screenshots
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn shot(c: &Client, name: &str) -> PathBuf {
    let png = c.screenshot().await.unwrap();
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    path
}

/// Waits (a bounded wait, not a timing assertion) for the browser to
/// reach an address containing `part`.
pub async fn wait_url_contains(c: &Client, part: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = c.current_url().await.unwrap();
        if url.as_str().contains(part) {
            return;
        }
        if Instant::now() > deadline {
            shot(c, "failure").await;
            let main = match c.find(Locator::Css("main")).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => c.source().await.unwrap_or_default(),
            };
            panic!("the browser never reached …{part}…; at {url}:\n{main}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn run<F: std::future::Future<Output = ()>>(f: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}

/// The text of the first element matching `css`, waiting up to 30 s for
/// it to appear: after a click that submits a form, the next page may
/// not have loaded yet on a busy machine (a CI run once looked for the
/// sign-in page's `p.error` while the browser still showed the form), or
/// the element found may belong to the page being left (its text is
/// then refused as stale, and the next page's is read).
pub async fn text_of(c: &Client, css: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = match c.find(Locator::Css(css)).await {
            Ok(e) => e.text().await,
            Err(e) => Err(e),
        };
        match text {
            Ok(text) => return text,
            Err(e) if Instant::now() > deadline => {
                shot(c, "failure").await;
                panic!("no {css}: {e}");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

pub async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

pub async fn replace_value(c: &Client, css: &str, value: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"));
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

pub struct Hub {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub port: u16,
    pub token_file: PathBuf,
    pub child: Option<Child>,
}

impl Hub {
    pub fn start() -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let out = crate::clean_env(
            Command::new(crate::bin("outpostd"))
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
        let token_file = dir.path().join("admin-token.txt");
        std::fs::write(&token_file, String::from_utf8(out.stdout).unwrap().trim()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut hub = Hub {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            port,
            token_file,
            child: None,
        };
        hub.spawn();
        hub.admin(&["org", "add", "mjolby", "Mjölby kommun"]);
        hub
    }

    pub fn spawn(&mut self) {
        let child = crate::clean_env(
            Command::new(crate::bin("outpostd"))
                .args(["hub", "--data-dir"])
                .arg(self.dir.path())
                .args(["--listen", &format!("127.0.0.1:{}", self.port)]),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "the hub did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn admin(&self, args: &[&str]) -> String {
        let mut cmd = crate::outpost_command();
        cmd.args(["admin", "--hub", &self.url, "--token-file"])
            .arg(&self.token_file)
            .args(args);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "admin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A new laptop of `mjolby`, enrolled.
    pub fn laptop(&self) -> TestDir {
        let td = TestDir::initialised();
        let code = self.admin(&["invite", "--org", "mjolby"]);
        td.ok(&["enroll", &self.url, &code]);
        td
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn target_dir() -> PathBuf {
    screenshot_dir().parent().unwrap().to_path_buf()
}

/// axe-core's `axe.min.js`, installed from the npm registry under the
/// target dir when missing (never copied into the repository).
pub fn axe_source() -> String {
    let prefix = target_dir().join("axe");
    let file = prefix.join("node_modules/axe-core/axe.min.js");
    if !file.is_file() {
        let npm = find_program(&["npm"])
            .unwrap_or_else(|| panic!("npm not found; install: apt-get install -y npm"));
        std::fs::create_dir_all(&prefix).unwrap();
        let out = Command::new(npm)
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg("axe-core@4")
            .output()
            .expect("could not run npm; install: apt-get install -y npm");
        assert!(
            out.status.success() && file.is_file(),
            "`npm install --prefix {} axe-core@4` failed:\n{}",
            prefix.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::read_to_string(&file).unwrap()
}

/// Runs axe on the page the browser shows; returns its serious and
/// critical violations as lines (rule, help, where).
pub async fn axe_serious(c: &Client, axe: &str, page: &str) -> Vec<String> {
    // Injected through WebDriver, as a script of the test, not a
    // `<script src>`: the app's CSP allows only its own scripts.
    c.execute(&format!("{axe}\nreturn typeof window.axe;"), vec![])
        .await
        .unwrap();
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.axe.run(document, { resultTypes: ['violations'] })
               .then(r => done(JSON.stringify(r.violations)))
               .catch(e => done(JSON.stringify({ error: String(e) })));",
            vec![],
        )
        .await
        .unwrap();
    let found: Value = serde_json::from_str(found.as_str().unwrap()).unwrap();
    assert!(
        found.get("error").is_none(),
        "axe failed on {page}: {found}"
    );
    found
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .map(|v| {
            let targets: Vec<String> = v["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["target"].to_string())
                .collect();
            format!(
                "{page}: {} ({}): {} at {}",
                v["id"].as_str().unwrap_or(""),
                v["impact"].as_str().unwrap_or(""),
                v["help"].as_str().unwrap_or(""),
                targets.join(", ")
            )
        })
        .collect()
}
