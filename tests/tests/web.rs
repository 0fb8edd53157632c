//! The staff web app (DESIGN.md §8) through real processes: `outpost ui`
//! starts a real `outpostd`, whose app is driven by raw HTTP (the plain
//! HTML path, the refusals) and by a real Chromium through chromedriver
//! (keyboard-only entry, the privacy screen's answer, screenshots).
//!
//! The browser tests need Debian's `chromium` and `chromium-driver`; when
//! chromedriver is missing they fail and say how to install it (never a
//! silent skip). Screenshots of every page go to
//! `<target dir>/screenshots/*.png` for review.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use outpost_tests::{SITE, STAFF, TestDir};
use serde_json::{Value, json};

// ---- the app, started the way staff start it ----

/// A laptop whose daemon `outpost ui` started; the daemon is stopped (by
/// its pid, from its lock file) when this is dropped.
struct Laptop {
    dir: TestDir,
    /// `http://127.0.0.1:PORT/`
    base: String,
    port: u16,
}

impl Laptop {
    fn start() -> Laptop {
        let dir = TestDir::initialised();
        let link = dir.ok(&["ui", "--no-open"]).trim().to_string();
        let base = link
            .split("launch?")
            .next()
            .expect("a launch link")
            .to_string();
        assert!(
            base.starts_with("http://127.0.0.1:"),
            "the app is on loopback: {link}"
        );
        let port = base
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        Laptop { dir, base, port }
    }

    /// A fresh one-time launch link, as `outpost ui --no-open` prints it.
    fn link(&self) -> String {
        self.dir.ok(&["ui", "--no-open"]).trim().to_string()
    }

    fn visits(&self) -> Vec<Value> {
        self.dir.list(&["--kind", "visit"])
    }
}

impl Drop for Laptop {
    fn drop(&mut self) {
        let pid =
            std::fs::read_to_string(self.dir.path().join("outpostd.lock")).unwrap_or_default();
        if let Ok(pid) = pid.trim().parse::<u32>() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            // Wait for it to let go of the data dir before it is removed.
            let deadline = Instant::now() + Duration::from_secs(10);
            while outpost_store::instance::is_running(self.dir.path()) && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

// ---- a tiny HTTP/1.1 client: exactly the bytes a browser would send ----

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("the app accepts connections");
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn path_of(link: &str) -> &str {
    let rest = link.trim_start_matches("http://");
    &rest[rest.find('/').unwrap()..]
}

/// Redeems a launch link; returns the `Cookie` header value.
fn sign_in(app: &Laptop) -> String {
    let link = app.link();
    let a = http(app.port, "GET", path_of(&link), &[], "");
    assert_eq!(a.status, 303, "a fresh launch link lets the browser in");
    let cookie = a.header("set-cookie").expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    cookie.split(';').next().unwrap().to_string()
}

fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("every form carries a CSRF token");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// The page's error summary (the form below it keeps what was typed, so
/// the person can take the number out).
fn error_summary(page: &str) -> String {
    let start = page.find("id=\"errors\"").expect("an error summary");
    let end = page[start..].find("</div>").unwrap();
    page[start..start + end].to_string()
}

fn today() -> String {
    chrono::Local::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

#[test]
fn web_refuses_without_session_with_foreign_host_and_a_used_launch_token() {
    let app = Laptop::start();
    // The status gives the app's address while the daemon runs.
    let status = app.dir.json(&["status", "--json"]);
    assert_eq!(status["ui_url"], json!(app.base));
    assert_eq!(status["daemon_running"], json!(true));

    // No session: refused, and nothing of the records shows.
    let a = http(app.port, "GET", "/visits/new", &[], "");
    assert_eq!(a.status, 401, "{}", a.body);
    assert!(!a.body.contains("name=\"minutes\""));
    let a = http(app.port, "GET", "/", &[], "");
    assert_eq!(a.status, 401);

    // A used launch link is refused the second time.
    let link = app.link();
    let first = http(app.port, "GET", path_of(&link), &[], "");
    assert_eq!(first.status, 303);
    let again = http(app.port, "GET", path_of(&link), &[], "");
    assert_eq!(again.status, 403, "a launch link works once");
    assert!(again.header("set-cookie").is_none());
    let forged = http(
        app.port,
        "GET",
        "/launch?t=00112233445566778899aabbccddeeff",
        &[],
        "",
    );
    assert_eq!(forged.status, 403);

    // A good session from a page under a foreign name (DNS rebinding):
    // refused on the Host header alone.
    let cookie = sign_in(&app);
    let host = format!("evil.example:{}", app.port);
    let a = http(
        app.port,
        "GET",
        "/visits/new",
        &[("Host", &host), ("Cookie", &cookie)],
        "",
    );
    assert_eq!(a.status, 421, "{}", a.body);
    assert!(!a.body.contains("csrf"));
    let a = http(
        app.port,
        "GET",
        "/visits/new",
        &[("Host", "localhost"), ("Cookie", &cookie)],
        "",
    );
    assert_eq!(a.status, 421);

    // The same session on the right host works.
    let a = http(app.port, "GET", "/visits/new", &[("Cookie", &cookie)], "");
    assert_eq!(a.status, 200);
    // A POST without the CSRF token changes nothing.
    let a = http(
        app.port,
        "POST",
        "/visits",
        &[("Cookie", &cookie)],
        "date=2025-03-04&minutes=20&channel=drop_in&services=BankID&category=e_service&outcome=solved&age_band=65_79&language=sv",
    );
    assert_eq!(a.status, 403);
    // … nor one with a token but from another site's page.
    let csrf = csrf_of(&http(app.port, "GET", "/visits/new", &[("Cookie", &cookie)], "").body);
    let a = http(
        app.port,
        "POST",
        "/visits",
        &[("Cookie", &cookie), ("Origin", "http://evil.example")],
        &format!(
            "csrf={csrf}&date=2025-03-04&minutes=20&channel=drop_in&services=BankID&category=e_service&outcome=solved&age_band=65_79&language=sv"
        ),
    );
    assert_eq!(a.status, 403);
    assert!(app.visits().is_empty(), "nothing refused was saved");
}

#[test]
fn web_plain_html_form_without_javascript_saves_edits_and_erases() {
    let app = Laptop::start();
    let cookie = sign_in(&app);
    let form = http(app.port, "GET", "/visits/new", &[("Cookie", &cookie)], "");
    assert_eq!(form.status, 200);
    // Defaults: today, and the laptop's site and staff on the page.
    assert!(
        form.body
            .contains(&format!("name=\"date\" value=\"{}\"", today()))
    );
    assert!(form.body.contains(SITE));
    let csrf = csrf_of(&form.body);

    // The contract's field names only, as a browser without script sends them.
    let body = format!(
        "csrf={csrf}&date=2025-03-04&time=13%3A30&minutes=25&channel=booked\
&services=Mobilt+BankID&services=F%C3%B6rs%C3%A4kringskassan&category=e_service&outcome=referred\
&referred_to=Kontaktcenter&age_band=80_plus&language=ar&assistive=interpreter&assistive=large_text\
&barriers=Mobilt+BankID%3Alogin%3Ahade+gl%C3%B6mt+koden&sensitive=on&note=Beh%C3%B6ver+hj%C3%A4lp+igen+2025-04-01"
    );
    let a = http(app.port, "POST", "/visits", &[("Cookie", &cookie)], &body);
    assert_eq!(a.status, 303, "{}", a.body);
    let location = a.header("location").unwrap();
    assert!(location.starts_with("/visits/new?saved="), "{location}");
    let visits = app.visits();
    assert_eq!(visits.len(), 1);
    let v = &visits[0];
    let expect = json!({
        "kind": "visit", "org": "mjolby", "site": SITE, "staff": STAFF,
        "date": "2025-03-04", "time": "13:30", "minutes": 25, "channel": "booked",
        "services": ["Mobilt BankID", "Försäkringskassan"], "category": "e_service",
        "outcome": "referred", "referred_to": "Kontaktcenter", "age_band": "80_plus",
        "language": "ar", "assistive": ["interpreter", "large_text"],
        "barriers": [{"service": "Mobilt BankID", "kind": "login", "note": "hade glömt koden"}],
        "sensitive": true, "note": "Behöver hjälp igen 2025-04-01",
    });
    for (k, want) in expect.as_object().unwrap() {
        assert_eq!(&v[k], want, "field {k} of {v}");
    }
    let id = v["id"].as_str().unwrap().to_string();

    // The saved visit is shown as one line with a link to edit it.
    let page = http(app.port, "GET", &location, &[("Cookie", &cookie)], "");
    assert!(page.body.contains("Sparat:"), "{}", page.body);
    assert!(page.body.contains(&format!("/visits/{id}/edit")));

    // A refused note answers the form again, names the kind, never the
    // text, and saves nothing.
    let refused = body.replace(
        "note=Beh%C3%B6ver+hj%C3%A4lp+igen+2025-04-01",
        "note=ring+070-123+45+67",
    );
    let a = http(
        app.port,
        "POST",
        "/visits",
        &[("Cookie", &cookie)],
        &refused,
    );
    assert_eq!(a.status, 422);
    let summary = error_summary(&a.body);
    assert!(summary.contains("telefonnummer"), "{summary}");
    assert!(
        !summary.contains("070-123"),
        "the error does not echo the text: {summary}"
    );
    assert!(
        a.body.contains("Kontaktcenter"),
        "the other values come back"
    );
    assert_eq!(app.visits().len(), 1, "nothing refused was saved");

    // Edit: the form comes back filled; an emptied optional field clears.
    let edit = http(
        app.port,
        "GET",
        &format!("/visits/{id}/edit"),
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(edit.status, 200);
    assert!(edit.body.contains("value=\"Kontaktcenter\""));
    let changed = body
        .replace(
            "outcome=referred&referred_to=Kontaktcenter",
            "outcome=solved&referred_to=",
        )
        .replace("&sensitive=on", "");
    let a = http(
        app.port,
        "POST",
        &format!("/visits/{id}"),
        &[("Cookie", &cookie)],
        &changed,
    );
    assert_eq!(a.status, 303, "{}", a.body);
    let shown = app.dir.show(&id);
    assert_eq!(shown["outcome"], json!("solved"));
    assert_eq!(shown["referred_to"], Value::Null);
    assert_eq!(shown["sensitive"], json!(false));

    // Delete: the confirmation says it goes everywhere, then it is gone.
    let confirm = http(
        app.port,
        "GET",
        &format!("/records/{id}/delete"),
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(confirm.status, 200);
    assert!(
        confirm.body.contains("raderas överallt"),
        "{}",
        confirm.body
    );
    assert!(confirm.body.contains("Mobilt BankID"));
    let a = http(
        app.port,
        "POST",
        &format!("/records/{id}/delete"),
        &[("Cookie", &cookie)],
        &format!("csrf={csrf}"),
    );
    assert_eq!(a.status, 303);
    assert!(app.visits().is_empty());
    let home = http(app.port, "GET", "/", &[("Cookie", &cookie)], "");
    assert!(home.body.contains("id=\"sync-banner\""));
    assert!(
        home.body.contains("inte ansluten"),
        "not enrolled: {}",
        home.body
    );
}

// ---- the browser ----

const INSTALL: &str = "install: apt-get install -y chromium chromium-driver";

fn find_program(names: &[&str]) -> Option<PathBuf> {
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

struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver() -> Driver {
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

async fn browser(driver: &Driver) -> Client {
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

fn screenshot_dir() -> PathBuf {
    // target/<profile>/deps/<test exe> → target/screenshots
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) -> PathBuf {
    let png = c.screenshot().await.unwrap();
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    path
}

/// Types on the keyboard, counting every key press.
struct Keyboard<'c> {
    c: &'c Client,
    presses: usize,
}

impl Keyboard<'_> {
    async fn keys(&mut self, keys: &[char]) {
        let mut seq = KeyActions::new("keyboard".into());
        for k in keys {
            seq = seq
                .then(KeyAction::Down { value: *k })
                .then(KeyAction::Up { value: *k });
        }
        self.c.perform_actions(seq).await.unwrap();
        self.presses += keys.len();
    }

    async fn text(&mut self, s: &str) {
        let chars: Vec<char> = s.chars().collect();
        self.keys(&chars).await;
    }

    async fn key(&mut self, k: Key, times: usize) {
        let chars: Vec<char> = std::iter::repeat_n(char::from(k), times).collect();
        self.keys(&chars).await;
    }
}

/// Marks the current document so a later check can tell whether the
/// browser loaded a new page.
async fn mark(c: &Client) {
    c.execute("window.__outpostPage = true;", vec![])
        .await
        .unwrap();
}

async fn is_new_page(c: &Client) -> bool {
    c.execute("return window.__outpostPage !== true;", vec![])
        .await
        .unwrap()
        .as_bool()
        .unwrap()
}

/// Waits (a bounded wait, not a timing assertion) for the browser to
/// reach an address containing `part`.
async fn wait_url_contains(c: &Client, part: &str) {
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

async fn active_id(c: &Client) -> String {
    c.active_element()
        .await
        .unwrap()
        .attr("id")
        .await
        .unwrap()
        .unwrap_or_default()
}

fn run<F: std::future::Future<Output = ()>>(f: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f);
}

#[test]
fn web_browser_keyboard_only_visit_then_refused_note_with_screenshots() {
    let driver = start_driver();
    let app = Laptop::start();
    run(async {
        let c = browser(&driver).await;
        let mut loads = 0;
        let mut shots: Vec<PathBuf> = Vec::new();

        // Page load 1: the launch link lands on the form, focus in minutes.
        c.goto(&app.link()).await.unwrap();
        loads += 1;
        c.wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Id("visit"))
            .await
            .unwrap();
        assert!(
            c.current_url()
                .await
                .unwrap()
                .path()
                .ends_with("/visits/new")
        );
        mark(&c).await;
        shots.push(shot(&c, "01-visit-form").await);
        assert_eq!(
            active_id(&c).await,
            "f-minutes",
            "the form opens in the minutes field"
        );
        let time = c
            .find(Locator::Id("f-time"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap();

        // One ordinary visit, keyboard only: 20 minutes, BankID, e-service,
        // solved, 65–79; date, time, channel and language are defaults.
        let mut kb = Keyboard { c: &c, presses: 0 };
        kb.text("20").await;
        kb.key(Key::Tab, 1).await;
        assert_eq!(active_id(&c).await, "f-service-0");
        kb.text("BankID").await;
        kb.key(Key::Tab, 1).await; // category: first choice, e-service
        kb.text(" ").await;
        kb.key(Key::Tab, 1).await; // outcome: first choice, solved
        kb.text(" ").await;
        kb.key(Key::Tab, 1).await; // age band: under 25 … down to 65–79
        kb.key(Key::Down, 3).await;
        kb.key(Key::Enter, 1).await; // "Spara och ny", the form's default button
        wait_url_contains(&c, "saved=").await;
        assert!(is_new_page(&c).await);
        loads += 1;
        mark(&c).await;
        let keystrokes = kb.presses;
        println!("ordinary visit: {keystrokes} keystrokes, {loads} page loads (launch included)");
        assert!(
            keystrokes <= 25,
            "DESIGN §7: at most 25 keystrokes, took {keystrokes}"
        );
        assert!(loads <= 2, "DESIGN §7: at most 2 page loads, took {loads}");
        let summary = c
            .find(Locator::Id("saved"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            summary.contains("BankID") && summary.contains("20 min"),
            "{summary}"
        );
        shots.push(shot(&c, "02-visit-saved-and-new").await);

        let visits = app.visits();
        assert_eq!(visits.len(), 1);
        let v = &visits[0];
        let expect = json!({
            "kind": "visit", "org": "mjolby", "site": SITE, "staff": STAFF,
            "date": today(), "time": time, "minutes": 20, "channel": "drop_in",
            "services": ["BankID"], "category": "e_service", "outcome": "solved",
            "referred_to": null, "age_band": "65_79", "language": "sv",
            "assistive": [], "barriers": [], "sensitive": false, "note": null,
        });
        for (k, want) in expect.as_object().unwrap() {
            assert_eq!(&v[k], want, "field {k} of {v}");
        }

        // A refused note: the script answers before saving (naming the
        // kind of data), the server refuses on save, nothing is saved.
        c.find(Locator::Id("f-minutes"))
            .await
            .unwrap()
            .send_keys("15")
            .await
            .unwrap();
        c.find(Locator::Id("f-service-0"))
            .await
            .unwrap()
            .send_keys("Skateverket")
            .await
            .unwrap();
        for id in ["category", "outcome", "age_band"] {
            c.find(Locator::Css(&format!("#f-{id} input[type=radio]")))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
        }
        let note = c.find(Locator::Id("f-note-text")).await.unwrap();
        note.send_keys("ring 070-123 45 67 imorgon").await.unwrap();
        c.wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css("#note-check.bad"))
            .await
            .unwrap();
        let answer = c
            .find(Locator::Id("note-check"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(answer.contains("telefonnummer"), "{answer}");
        assert!(!answer.contains("070"), "{answer}");
        let unknown = c
            .find(Locator::Id("svc-hint-0"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            unknown.contains("tjänstekatalogen"),
            "an unknown service is flagged: {unknown}"
        );
        shots.push(shot(&c, "03-note-flagged-before-saving").await);
        c.find(Locator::Id("save-new"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Id("errors"))
            .await
            .unwrap();
        let errors = c
            .find(Locator::Id("errors"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(errors.contains("telefonnummer"), "{errors}");
        assert!(
            !errors.contains("070"),
            "the error does not echo the text: {errors}"
        );
        shots.push(shot(&c, "04-note-refused").await);
        assert_eq!(app.visits().len(), 1, "the refused visit was not saved");

        // Same as last visit: the last visit's answers, today's date.
        c.goto(&format!("{}visits/new?same=1", app.base))
            .await
            .unwrap();
        let svc = c
            .find(Locator::Id("f-service-0"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap();
        assert_eq!(svc.as_deref(), Some("BankID"));
        shots.push(shot(&c, "05-same-as-last").await);

        // Today's list, edit and delete pages.
        c.goto(&app.base).await.unwrap();
        let today_list = c
            .find(Locator::Id("today"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(today_list.contains("BankID"), "{today_list}");
        let banner = c
            .find(Locator::Id("sync-banner"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(banner.contains("bara på den här datorn"), "{banner}");
        shots.push(shot(&c, "06-today-and-banner").await);
        let id = v["id"].as_str().unwrap();
        c.goto(&format!("{}visits/{id}/edit", app.base))
            .await
            .unwrap();
        shots.push(shot(&c, "07-edit-visit").await);
        c.goto(&format!("{}records/{id}/delete", app.base))
            .await
            .unwrap();
        let text = c
            .find(Locator::Css("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains("raderas överallt"), "{text}");
        shots.push(shot(&c, "08-delete-confirm").await);
        c.find(Locator::Id("confirm-delete"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_url_contains(&c, "deleted=").await;
        shots.push(shot(&c, "09-after-delete").await);
        assert!(app.visits().is_empty());

        // English by the switch on the page.
        c.goto(&format!("{}visits/new", app.base)).await.unwrap();
        c.find(Locator::Css("form.lang button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css("html[lang=en]"))
            .await
            .unwrap();
        assert!(c.source().await.unwrap().contains("Save and new"));
        shots.push(shot(&c, "10-visit-form-english").await);

        // Refused pages: a used link, and no session (a new browser).
        let used = app.link();
        c.goto(&used).await.unwrap();
        c.goto(&used).await.unwrap();
        assert!(
            c.source().await.unwrap().contains("no longer works")
                || c.source().await.unwrap().contains("fungerar inte")
        );
        shots.push(shot(&c, "11-used-link-refused").await);
        c.close().await.unwrap();
        let c = browser(&driver).await;
        c.goto(&format!("{}visits/new", app.base)).await.unwrap();
        assert!(!c.source().await.unwrap().contains("id=\"visit\""));
        shots.push(shot(&c, "12-no-session-refused").await);
        c.close().await.unwrap();

        for s in &shots {
            println!("screenshot: {}", s.display());
        }
    });
}
