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
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use outpost_tests::browser::*;
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
        Laptop::start_in(TestDir::initialised())
    }

    /// The app of an existing laptop (e.g. one enrolled with a hub first).
    fn start_in(dir: TestDir) -> Laptop {
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

async fn active_id(c: &Client) -> String {
    c.active_element()
        .await
        .unwrap()
        .attr("id")
        .await
        .unwrap()
        .unwrap_or_default()
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

// ---- courses, settings ----

fn sessions_of(app: &Laptop, course: &str) -> Vec<Value> {
    let listed = app.dir.list(&["--kind", "course"]);
    let c = listed
        .iter()
        .find(|c| c["id"] == json!(course))
        .expect("the course is listed");
    c["sessions"].as_array().cloned().unwrap_or_default()
}

#[test]
fn web_browser_course_session_edited_and_removed_and_settings_defaults() {
    let driver = start_driver();
    let app = Laptop::start();
    let course = app
        .dir
        .add_course("Nybörjarkurs internet", &["--partner", "ABF"]);
    let first = app.dir.add_session(&course, "2025-03-03", 60, 5);
    let second = app.dir.add_session(&course, "2025-03-10", 90, 6);
    run(async {
        let c = browser(&driver).await;
        let mut shots: Vec<PathBuf> = Vec::new();
        c.goto(&app.link()).await.unwrap();
        wait_url_contains(&c, "/visits/new").await;

        // The course list, then the course with its sessions by id.
        click(&c, "header nav a[href='/courses']").await;
        wait_url_contains(&c, "/courses").await;
        let list = text_of(&c, "#courses").await;
        assert!(list.contains("Nybörjarkurs internet"), "{list}");
        assert!(list.contains("2 tillfällen"), "{list}");
        shots.push(shot(&c, "13-courses").await);
        click(&c, &format!("#courses a[href='/courses/{course}']")).await;
        wait_url_contains(&c, &format!("/courses/{course}")).await;
        let table = text_of(&c, "#sessions").await;
        assert!(
            table.contains(&first[..8]) && table.contains(&second[..8]),
            "{table}"
        );
        shots.push(shot(&c, "14-course-detail").await);

        // Edit the second session, named by its id in the link.
        click(
            &c,
            &format!("a[href='/courses/{course}/sessions/{second}/edit']"),
        )
        .await;
        wait_url_contains(&c, &format!("/sessions/{second}/edit")).await;
        replace_value(&c, "#f-participants", "8").await;
        replace_value(&c, "#f-instructor", "EK").await;
        shots.push(shot(&c, "15-session-edit").await);

        // A refused note first: the error names the kind, nothing changes.
        replace_value(&c, "#f-note", "ring 070-123 45 67").await;
        click(&c, "#save-session").await;
        c.wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Id("errors"))
            .await
            .unwrap();
        let errors = text_of(&c, "#errors").await;
        assert!(errors.contains("telefonnummer"), "{errors}");
        assert!(!errors.contains("070"), "{errors}");
        let s = sessions_of(&app, &course);
        let edited = s.iter().find(|x| x["id"] == json!(second)).unwrap();
        assert_eq!(
            edited["participants"],
            json!(6),
            "nothing refused was saved"
        );

        replace_value(&c, "#f-note", "Flyttad till stora salen").await;
        click(&c, "#save-session").await;
        wait_url_contains(&c, "session=").await;
        let s = sessions_of(&app, &course);
        assert_eq!(s.len(), 2);
        let edited = s.iter().find(|x| x["id"] == json!(second)).unwrap();
        assert_eq!(edited["participants"], json!(8));
        assert_eq!(edited["instructor"], json!("EK"));
        assert_eq!(edited["note"], json!("Flyttad till stora salen"));
        assert_eq!(edited["minutes"], json!(90));
        let untouched = s.iter().find(|x| x["id"] == json!(first)).unwrap();
        assert_eq!(untouched["participants"], json!(5));

        // Remove the first: the confirmation says what goes, and where.
        click(
            &c,
            &format!("a[href='/courses/{course}/sessions/{first}/delete']"),
        )
        .await;
        wait_url_contains(&c, &format!("/sessions/{first}/delete")).await;
        let main = text_of(&c, "main").await;
        assert!(main.contains("tas bort överallt"), "{main}");
        assert!(main.contains(&first), "the session's id is shown: {main}");
        assert!(main.contains("2025-03-03"), "{main}");
        shots.push(shot(&c, "16-session-delete-confirm").await);
        click(&c, "#confirm-delete").await;
        wait_url_contains(&c, "removed=").await;
        shots.push(shot(&c, "17-course-after-remove").await);
        let s = sessions_of(&app, &course);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0]["id"], json!(second));
        assert_eq!(
            app.dir.show(&course)["sessions"][0]["participants"],
            json!(8)
        );

        // Add a session with the form on the course page.
        replace_value(&c, "#add-session #f-minutes", "45").await;
        replace_value(&c, "#add-session #f-participants", "3").await;
        click(&c, "#add-session button[type=submit]").await;
        wait_url_contains(&c, "session=").await;
        let s = sessions_of(&app, &course);
        assert_eq!(s.len(), 2);
        assert!(
            s.iter().any(|x| x["minutes"] == json!(45)
                && x["participants"] == json!(3)
                && x["date"] == json!(today())),
            "{s:?}"
        );

        // Settings: a fixed channel and language fill the visit form.
        click(&c, "header nav a[href='/settings']").await;
        wait_url_contains(&c, "/settings").await;
        shots.push(shot(&c, "18-settings").await);
        click(&c, "input[name=default_channel][value=booked]").await;
        c.find(Locator::Id("f-default_language"))
            .await
            .unwrap()
            .select_by_value("ar")
            .await
            .unwrap();
        click(&c, "#save-settings").await;
        wait_url_contains(&c, "saved=1").await;
        c.goto(&format!("{}visits/new", app.base)).await.unwrap();
        let checked = c
            .execute(
                "return document.querySelector('input[name=channel]:checked').value;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(checked, json!("booked"));
        let language = c
            .find(Locator::Id("f-lang"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap();
        assert_eq!(language.as_deref(), Some("ar"));

        // "Remember the last one": the form takes the last visit's channel.
        c.goto(&format!("{}settings", app.base)).await.unwrap();
        click(&c, "input[name=default_channel][value='']").await;
        click(&c, "#save-settings").await;
        wait_url_contains(&c, "saved=1").await;
        c.goto(&format!("{}visits/new", app.base)).await.unwrap();
        replace_value(&c, "#f-minutes", "10").await;
        replace_value(&c, "#f-service-0", "BankID").await;
        for css in [
            "#f-category input[value=e_service]",
            "#f-outcome input[value=solved]",
            "#f-age_band input[value='25_44']",
            "#f-channel input[value=phone]",
        ] {
            click(&c, css).await;
        }
        click(&c, "#save-new").await;
        wait_url_contains(&c, "saved=").await;
        let checked = c
            .execute(
                "return document.querySelector('input[name=channel]:checked').value;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(checked, json!("phone"), "the last channel is remembered");
        let v = &app.visits()[0];
        assert_eq!(v["channel"], json!("phone"));
        assert_eq!(v["language"], json!("ar"), "the fixed language stays");

        // The app's language, from the settings page.
        c.goto(&format!("{}settings", app.base)).await.unwrap();
        click(&c, "input[name=ui_lang][value=en]").await;
        click(&c, "#save-settings").await;
        c.wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css("html[lang=en]"))
            .await
            .unwrap();
        assert!(
            c.source()
                .await
                .unwrap()
                .contains("Settings for this laptop")
        );
        let file = std::fs::read_to_string(app.dir.path().join("config.toml")).unwrap();
        assert!(file.contains("ui_lang = \"en\""), "{file}");
        assert!(file.contains("default_language = \"ar\""), "{file}");
        assert!(!file.contains("default_channel"), "{file}");
        c.close().await.unwrap();
        for s in &shots {
            println!("screenshot: {}", s.display());
        }
    });
}

// ---- a real hub: the sync banner, and a conflict made by two laptops ----

/// `outpostd hub` on a loopback port, with the organisation `mjolby`.
#[test]
fn web_browser_sync_banner_after_a_real_sync_and_a_conflict_resolved() {
    let driver = start_driver();
    let mut hub = Hub::start();
    let app = Laptop::start_in(hub.laptop());
    let other = hub.laptop();
    app.dir.ok(&["sync"]);
    run(async {
        let c = browser(&driver).await;
        let mut shots: Vec<PathBuf> = Vec::new();
        c.goto(&app.link()).await.unwrap();
        wait_url_contains(&c, "/visits/new").await;

        // The hub is down while a visit is recorded in the browser.
        hub.stop();
        replace_value(&c, "#f-minutes", "30").await;
        replace_value(&c, "#f-service-0", "Skatteverket").await;
        for css in [
            "#f-category input[value=e_service]",
            "#f-outcome input[value=solved]",
            "#f-age_band input[value='45_64']",
        ] {
            click(&c, css).await;
        }
        c.find(Locator::Css("#visit button[value=list]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_url_contains(&c, "saved=").await;
        let only_here = text_of(&c, "#sync-only-here").await;
        assert!(
            only_here.contains("1 post finns bara på den här datorn"),
            "{only_here}"
        );
        shots.push(shot(&c, "19-banner-one-waiting").await);

        // The hub is back; a real sync; the page reloaded says so.
        hub.spawn();
        app.dir.ok(&["sync"]);
        c.refresh().await.unwrap();
        let only_here = text_of(&c, "#sync-only-here").await;
        assert!(
            only_here.contains("Alla poster finns också på hubben"),
            "{only_here}"
        );
        let last = text_of(&c, "#sync-last").await;
        assert!(last.contains("nyss") || last.contains("minut"), "{last}");
        assert!(
            c.find(Locator::Id("sync-error")).await.is_err(),
            "no error left"
        );
        shots.push(shot(&c, "20-banner-synced").await);
        let status = app.dir.json(&["--json", "status"]);
        assert_eq!(status["pending"], json!(0), "{status}");

        // A conflict: both laptops change the visit's outcome before
        // either has seen the other's change.
        let id = app.visits()[0]["id"].as_str().unwrap().to_string();
        other.ok(&["sync"]);
        app.dir.ok(&["edit", &id, "--outcome", "partly"]);
        app.dir.ok(&["sync"]);
        other.ok(&["edit", &id, "--outcome", "referred"]);
        other.ok(&["sync"]);
        app.dir.ok(&["sync"]);
        let shown = app.dir.show(&id);
        let losers = shown["conflicts"]["outcome"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(losers.len(), 1, "a real conflict: {shown}");
        let loser = losers[0].as_str().unwrap().to_string();
        let winner = shown["outcome"].as_str().unwrap().to_string();
        assert_ne!(loser, winner);

        // The banner points to it; the page shows both values side by side.
        c.refresh().await.unwrap();
        let banner = text_of(&c, "#sync-conflicts").await;
        assert!(
            banner.contains("1 post har ändrats på två datorer"),
            "{banner}"
        );
        click(&c, "#sync-conflicts a").await;
        wait_url_contains(&c, "/conflicts").await;
        let section = text_of(&c, &format!("section[data-id='{id}']")).await;
        let label = |v: &str| {
            match v {
                "partly" => "Delvis löst",
                "referred" => "Hänvisad",
                _ => v,
            }
            .to_string()
        };
        assert!(
            section.contains(&label(&winner)) && section.contains(&label(&loser)),
            "{section}"
        );
        shots.push(shot(&c, "21-conflicts").await);
        // Choose the value that is not shown now.
        click(
            &c,
            &format!("section[data-id='{id}'] input[value='\"{loser}\"']"),
        )
        .await;
        click(&c, &format!("section[data-id='{id}'] button[type=submit]")).await;
        wait_url_contains(&c, "resolved=1").await;
        c.find(Locator::Id("no-conflicts")).await.unwrap();
        shots.push(shot(&c, "22-conflict-resolved").await);
        let shown = app.dir.show(&id);
        assert_eq!(shown["outcome"], json!(loser));
        assert!(
            shown["conflicts"].as_object().is_none_or(|m| m.is_empty()),
            "{shown}"
        );

        // The choice is a change like any other: the other laptop gets it.
        app.dir.ok(&["sync"]);
        other.ok(&["sync"]);
        let there = other.show(&id);
        assert_eq!(there["outcome"], json!(loser), "{there}");
        assert!(
            there["conflicts"].as_object().is_none_or(|m| m.is_empty()),
            "{there}"
        );
        c.goto(&app.base).await.unwrap();
        assert!(c.find(Locator::Id("sync-conflicts")).await.is_err());
        c.close().await.unwrap();
        for s in &shots {
            println!("screenshot: {}", s.display());
        }
    });
}

// ---- accessibility: axe-core on every page ----

#[test]
fn web_browser_axe_finds_no_serious_or_critical_violations_on_any_page() {
    let axe = axe_source();
    let driver = start_driver();
    let app = Laptop::start();
    let visit = app
        .dir
        .add_visit(&["--note", "Ville ha hjälp med deklarationen"]);
    let course = app
        .dir
        .add_course("Nybörjarkurs internet", &["--partner", "ABF"]);
    let session = app.dir.add_session(&course, "2025-03-03", 60, 5);
    run(async {
        let c = browser(&driver).await;
        c.goto(&app.link()).await.unwrap();
        wait_url_contains(&c, "/visits/new").await;
        let pages = [
            "",
            "visits/new",
            &format!("visits/{visit}/edit"),
            &format!("records/{visit}/delete"),
            "courses",
            &format!("courses/{course}"),
            &format!("courses/{course}/sessions/{session}/edit"),
            &format!("courses/{course}/sessions/{session}/delete"),
            "conflicts",
            "settings",
            "no-such-page",
        ];
        let mut problems = Vec::new();
        let mut checked = 0;
        for lang in ["sv", "en"] {
            for p in &pages {
                c.goto(&format!("{}{p}", app.base)).await.unwrap();
                c.wait()
                    .at_most(Duration::from_secs(30))
                    .for_element(Locator::Css(&format!("html[lang={lang}]")))
                    .await
                    .unwrap();
                problems.extend(axe_serious(&c, &axe, &format!("/{p} ({lang})")).await);
                checked += 1;
            }
            if lang == "sv" {
                c.goto(&app.base).await.unwrap();
                click(&c, "form.lang button").await;
            }
        }
        // A refused form (errors shown), and a page without a session.
        c.goto(&format!("{}visits/new", app.base)).await.unwrap();
        replace_value(&c, "#f-minutes", "0").await;
        c.execute(
            "document.getElementById('visit').noValidate = true;",
            vec![],
        )
        .await
        .unwrap();
        click(&c, "#save-new").await;
        c.wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Id("errors"))
            .await
            .unwrap();
        problems.extend(axe_serious(&c, &axe, "/visits (refused)").await);
        c.delete_all_cookies().await.unwrap();
        c.goto(&app.base).await.unwrap();
        problems.extend(axe_serious(&c, &axe, "/ (no session)").await);
        checked += 2;
        c.close().await.unwrap();
        println!("axe: {checked} pages checked");
        assert!(
            problems.is_empty(),
            "serious or critical accessibility violations:\n{}",
            problems.join("\n")
        );
    });
}

/// The org's site list from the hub is offered in the visit form (a
/// datalist), the laptop's own site is the default, and a site typed in
/// another case and without accents is saved in the listed spelling.
#[test]
fn web_browser_site_field_offers_the_site_list_from_the_hub() {
    let driver = start_driver();
    let hub = Hub::start();
    hub.admin(&[
        "sites",
        "add",
        "--org",
        "mjolby",
        "Mjölby bibliotek",
        "Skänninge bibliotek",
    ]);
    let app = Laptop::start_in(hub.laptop());
    app.dir.ok(&["sync"]);
    run(async {
        let c = browser(&driver).await;
        c.goto(&app.link()).await.unwrap();
        wait_url_contains(&c, "/visits/new").await;
        let mut offered = Vec::new();
        for option in c
            .find_all(Locator::Css("#f-site-list option"))
            .await
            .unwrap()
        {
            offered.push(option.attr("value").await.unwrap().unwrap_or_default());
        }
        assert_eq!(offered, vec!["Mjölby bibliotek", "Skänninge bibliotek"]);
        let site = c
            .find(Locator::Id("f-site-input"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default();
        assert_eq!(site, SITE, "the laptop's own site is the default");

        replace_value(&c, "#f-minutes", "25").await;
        replace_value(&c, "#f-service-0", "Skatteverket").await;
        for css in [
            "#f-category input[value=e_service]",
            "#f-outcome input[value=solved]",
            "#f-age_band input[value='45_64']",
        ] {
            click(&c, css).await;
        }
        replace_value(&c, "#f-site-input", "skanninge BIBLIOTEK").await;
        shot(&c, "23-site-from-the-list").await;
        c.find(Locator::Css("#visit button[value=list]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_url_contains(&c, "saved=").await;
        c.close().await.unwrap();
    });
    let records = app.dir.list(&[]);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["site"], "Skänninge bibliotek");
}
