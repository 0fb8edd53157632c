//! The hub's coordinator dashboard (DESIGN.md §9) through real processes:
//! a real hub (`outpostd hub`) with two organisations and records synced
//! from a real laptop, `outpost admin signin` for the code, and a real
//! headless Chromium (chromedriver) that signs in, reads the charts,
//! filters and pages the records, sees the devices, downloads the files,
//! is refused another organisation's pages, and signs out. Screenshots go
//! to `<target dir>/screenshots/dashboard-*.png`; axe checks every page.
//!
//! Code expiry is tested in the storage conformance suite with a clock
//! passed in (`a_signin_code_makes_one_session_…`), not by waiting here.

use std::io::{Read, Write};
use std::net::TcpStream;

use fantoccini::{Client, Locator};
use outpost_tests::browser::*;
use serde_json::{Value, json};

/// Records of the test: 53 visits (so the table has a second page), 3 of
/// them at another site, and one course.
const VISITS: usize = 53;
const OTHER_SITE: &str = "Mjölby stadshus";

struct Setup {
    hub: Hub,
    /// A token that may see `mjolby` only (a coordinator's).
    coordinator: std::path::PathBuf,
    _laptop: outpost_tests::TestDir,
}

fn setup() -> Setup {
    let hub = Hub::start();
    hub.admin(&["org", "add", "boxholm", "Boxholms kommun"]);
    let laptop = hub.laptop();
    laptop.ok(&["rename", "Bokbussen"]);
    for i in 0..VISITS {
        let date = format!("2025-03-{:02}", 1 + i % 28);
        let mut args = vec!["--date", date.as_str()];
        if i < 3 {
            args.extend(["--site", OTHER_SITE]);
        }
        laptop.add_visit(&args);
    }
    let course = laptop.add_course("Nybörjarkurs internet", &["--partner", "ABF"]);
    laptop.add_session(&course, "2025-04-02", 90, 7);
    laptop.ok(&["sync"]);
    // A read-only coordinator account of mjolby, made as an admin would.
    let token = hub.admin(&[
        "token",
        "create",
        "--name",
        "Samordnare Mjölby",
        "--coordinator",
        "--org",
        "mjolby",
    ]);
    let coordinator = hub.dir.path().join("coordinator-token.txt");
    std::fs::write(&coordinator, token).unwrap();
    Setup {
        hub,
        coordinator,
        _laptop: laptop,
    }
}

/// `outpost admin signin --json` with the coordinator's token.
fn signin_code(s: &Setup) -> (String, String) {
    let out = outpost_tests::outpost_command()
        .args(["--json", "admin", "--hub", &s.hub.url, "--token-file"])
        .arg(&s.coordinator)
        .arg("signin")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "admin signin: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let code = v["code"].as_str().unwrap().to_string();
    let link = v["link"].as_str().unwrap().to_string();
    assert_eq!(link, format!("{}/dashboard/signin?code={code}", s.hub.url));
    assert_eq!(v["expires_in_minutes"], json!(15));
    (code, link)
}

/// A GET from inside the page (same origin, with the session cookie),
/// answering the status and the body (base64 for binary files).
async fn fetch(c: &Client, path: &str, binary: bool) -> (u16, String) {
    let v = c
        .execute_async(
            "const [path, binary, done] = arguments;
             fetch(path).then(async r => {
               if (binary) {
                 const bytes = new Uint8Array(await r.arrayBuffer());
                 let s = ''; for (const b of bytes) s += String.fromCharCode(b);
                 done([r.status, btoa(s)]);
               } else { done([r.status, await r.text()]); }
             }).catch(e => done([0, String(e)]));",
            vec![json!(path), json!(binary)],
        )
        .await
        .unwrap();
    (
        v[0].as_u64().unwrap() as u16,
        v[1].as_str().unwrap().to_string(),
    )
}

fn base64_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

async fn rows(c: &Client) -> usize {
    c.find_all(Locator::Css("table.rec tbody tr"))
        .await
        .unwrap()
        .len()
}

async fn axe_clean(c: &Client, axe: &str, page: &str) {
    let found = axe_serious(c, axe, page).await;
    assert!(found.is_empty(), "axe:\n{}", found.join("\n"));
}

#[test]
fn dashboard_in_a_browser_sign_in_charts_records_devices_downloads_and_sign_out() {
    let axe = axe_source();
    let driver = start_driver();
    let s = setup();
    let (code, link) = signin_code(&s);
    let base = s.hub.url.clone();
    run(async {
        let c = browser(&driver).await;

        // Not signed in: the dashboard sends the browser to sign in.
        c.goto(&format!("{base}/dashboard")).await.unwrap();
        wait_url_contains(&c, "/dashboard/signin").await;

        // The link only fills in the form (a mail scanner's GET signs
        // nobody in and uses up nothing); the button signs in.
        c.goto(&link).await.unwrap();
        let value = c
            .find(Locator::Css("#code"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap();
        assert_eq!(value.as_deref(), Some(code.as_str()));
        shot(&c, "dashboard-signin").await;
        axe_clean(&c, &axe, "sign-in").await;
        click(&c, "main button[type=submit]").await;
        wait_url_contains(&c, "/dashboard").await;
        let main = text_of(&c, "main").await;
        assert!(main.contains("Mjölby kommun"), "{main}");
        assert!(
            !main.contains("Boxholm"),
            "a coordinator of mjolby sees only mjolby: {main}"
        );
        shot(&c, "dashboard-orgs").await;
        axe_clean(&c, &axe, "orgs").await;

        // The year's charts and key figures: the annual report's own.
        c.goto(&format!("{base}/dashboard/orgs/mjolby?year=2025"))
            .await
            .unwrap();
        let figures = text_of(&c, "ul.figures").await;
        assert!(figures.contains(&VISITS.to_string()), "{figures}");
        let charts = c
            .find_all(Locator::Css("section.report svg[role=img]"))
            .await
            .unwrap();
        assert!(charts.len() >= 3, "{} charts", charts.len());
        let report = text_of(&c, "section.report").await;
        assert!(report.contains(OTHER_SITE), "{report}");
        shot(&c, "dashboard-overview").await;
        axe_clean(&c, &axe, "overview").await;

        // Records: 50 a page, then the rest; filters by kind and site.
        c.goto(&format!("{base}/dashboard/orgs/mjolby/records"))
            .await
            .unwrap();
        assert_eq!(rows(&c).await, 50);
        shot(&c, "dashboard-records").await;
        axe_clean(&c, &axe, "records").await;
        click(&c, "a[rel=next]").await;
        wait_url_contains(&c, "page=2").await;
        assert_eq!(rows(&c).await, VISITS + 1 - 50);
        c.goto(&format!("{base}/dashboard/orgs/mjolby/records"))
            .await
            .unwrap();
        c.find(Locator::Css("#kind"))
            .await
            .unwrap()
            .select_by_value("course")
            .await
            .unwrap();
        click(&c, "form.filters button").await;
        wait_url_contains(&c, "kind=course").await;
        assert_eq!(rows(&c).await, 1);
        assert!(
            text_of(&c, "table.rec")
                .await
                .contains("Nybörjarkurs internet")
        );
        c.goto(&format!("{base}/dashboard/orgs/mjolby/records"))
            .await
            .unwrap();
        replace_value(&c, "#site", "mjölby STADSHUS").await;
        click(&c, "form.filters button").await;
        wait_url_contains(&c, "site=").await;
        assert_eq!(rows(&c).await, 3);
        shot(&c, "dashboard-records-filtered").await;
        // Dates (the form's date fields send YYYY-MM-DD): 1 and 2 March.
        c.goto(&format!(
            "{base}/dashboard/orgs/mjolby/records?from=2025-03-01&to=2025-03-02"
        ))
        .await
        .unwrap();
        assert_eq!(rows(&c).await, 4);

        // Devices: the laptop, seen at its sync, active.
        c.goto(&format!("{base}/dashboard/orgs/mjolby/devices"))
            .await
            .unwrap();
        assert_eq!(rows(&c).await, 1);
        let devices = text_of(&c, "table.rec tbody").await;
        assert!(devices.contains("Aktiv"), "{devices}");
        // The name the laptop gave itself, and nothing waiting after its
        // sync (the laptop reports both at each sync).
        assert!(devices.contains("Bokbussen"), "{devices}");
        let waiting = text_of(&c, "table.rec tbody td.num").await;
        assert_eq!(waiting.trim(), "0", "{devices}");
        assert!(!devices.contains("aldrig"), "{devices}");
        shot(&c, "dashboard-devices").await;
        axe_clean(&c, &axe, "devices").await;

        // Downloads, streamed: CSV, XLSX and the report for the year.
        let (status, csv) = fetch(
            &c,
            "/dashboard/orgs/mjolby/download/visits.csv?year=2025",
            false,
        )
        .await;
        assert_eq!(status, 200);
        let table = outpost_tests::parse_csv(&csv, ',');
        assert_eq!(table.len(), VISITS + 1, "a header and one row a visit");
        let site_col = table[0].iter().position(|h| h == "site").unwrap();
        assert_eq!(
            table[1..]
                .iter()
                .filter(|r| r[site_col] == OTHER_SITE)
                .count(),
            3
        );
        let (status, csv) = fetch(
            &c,
            "/dashboard/orgs/mjolby/download/courses.csv?year=2025",
            false,
        )
        .await;
        assert_eq!(status, 200);
        assert!(csv.contains("Nybörjarkurs internet"), "{csv}");
        let (status, html) = fetch(
            &c,
            "/dashboard/orgs/mjolby/download/report.html?year=2025",
            false,
        )
        .await;
        assert_eq!(status, 200);
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("Årsrapport 2025"), "{html}");
        assert!(html.contains(OTHER_SITE));
        for file in ["records.xlsx", "report.xlsx"] {
            let (status, b64) = fetch(
                &c,
                &format!("/dashboard/orgs/mjolby/download/{file}?year=2025"),
                true,
            )
            .await;
            assert_eq!(status, 200, "{file}");
            let bytes = base64_decode(&b64);
            let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
            // Every XML part's text (the strings may be shared or inline).
            let mut strings = String::new();
            for i in 0..zip.len() {
                let mut part = zip.by_index(i).unwrap();
                if part.name().ends_with(".xml") {
                    part.read_to_string(&mut strings).unwrap();
                }
            }
            assert!(strings.contains(OTHER_SITE), "{file}");
            if file == "report.xlsx" {
                let charts = (0..zip.len())
                    .filter(|&i| {
                        zip.by_index(i)
                            .unwrap()
                            .name()
                            .starts_with("xl/charts/chart")
                    })
                    .count();
                assert!(charts > 0, "the report workbook has charts");
            }
        }

        // Another org's pages answer as a missing org's do: 404, alike.
        for path in [
            "/dashboard/orgs/boxholm",
            "/dashboard/orgs/boxholm/records",
            "/dashboard/orgs/boxholm/devices",
            "/dashboard/orgs/boxholm/download/visits.csv?year=2025",
        ] {
            let (status, body) = fetch(&c, path, false).await;
            let missing = path.replace("boxholm", "no-such-org");
            let (missing_status, missing_body) = fetch(&c, &missing, false).await;
            assert_eq!((status, missing_status), (404, 404), "{path}");
            assert_eq!(
                body, missing_body,
                "{path} tells nothing more than {missing}"
            );
        }
        c.goto(&format!("{base}/dashboard/orgs/boxholm"))
            .await
            .unwrap();
        shot(&c, "dashboard-other-org").await;

        assert_eq!(text_of(&c, "h1").await, "Sidan finns inte");

        // English by the switch (a cookie, so other pages follow), then back.
        c.goto(&format!("{base}/dashboard")).await.unwrap();
        click(&c, "form.lang button").await;
        assert_eq!(text_of(&c, "h1").await, "Organisations");
        c.goto(&format!("{base}/dashboard/orgs/mjolby/devices"))
            .await
            .unwrap();
        assert!(text_of(&c, "table.rec").await.contains("Last seen"));
        shot(&c, "dashboard-devices-en").await;
        click(&c, "form.lang button").await;
        assert!(text_of(&c, "table.rec").await.contains("Senast sedd"));

        // Sign out: the session ends at once.
        c.goto(&format!("{base}/dashboard")).await.unwrap();
        click(&c, "header form[action='/dashboard/signout'] button").await;
        wait_url_contains(&c, "/dashboard/signin").await;
        c.goto(&format!("{base}/dashboard/orgs/mjolby"))
            .await
            .unwrap();
        wait_url_contains(&c, "/dashboard/signin").await;

        // The code worked once: the link again is refused.
        c.goto(&link).await.unwrap();
        click(&c, "main button[type=submit]").await;
        let error = text_of(&c, "p.error").await;
        assert!(error.contains("redan använd"), "{error}");
        shot(&c, "dashboard-code-used").await;
        axe_clean(&c, &axe, "sign-in refused").await;

        // A new code, typed in lower case without dashes, signs in again.
        let (code, _) = signin_code(&s);
        c.goto(&format!("{base}/dashboard/signin")).await.unwrap();
        replace_value(&c, "#code", &code.to_lowercase().replace('-', "")).await;
        click(&c, "main button[type=submit]").await;
        // The sign-in page's own URL holds "/dashboard" too: wait for the
        // org list itself, not a node of the page being left.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let main = match c.find(fantoccini::Locator::Css("main")).await {
                Ok(el) => el.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if main.contains("Mjölby kommun") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no org list after sign-in: {main}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        c.close().await.unwrap();
    });

    // The sign-ins and downloads are in the audit log, by the coordinator.
    let audit: Value = serde_json::from_str(&s.hub.admin(&["--json", "audit"])).unwrap();
    let by_coordinator = |action: &str| {
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action && e["actor_name"] == "Samordnare Mjölby")
            .count()
    };
    assert_eq!(by_coordinator("dashboard.signin"), 2, "{audit}");
    assert!(by_coordinator("dashboard.download") >= 4, "{audit}");
    assert_eq!(audit["verdict"]["intact"], json!(true));
}

// ---- without a browser: what the guard refuses ----

/// One raw HTTP/1.1 request; the status line and the headers and body.
fn raw(port: u16, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, out)
}

#[test]
fn dashboard_refuses_a_foreign_host_a_missing_session_and_a_forged_sign_in() {
    let hub = Hub::start();
    let port = hub.port;
    let host = format!("127.0.0.1:{port}");

    // DNS rebinding: another name for this address is refused.
    let (status, answer) = raw(
        port,
        "GET /dashboard/signin HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 421, "{answer}");

    // No session: to the sign-in page (a GET), refused (a POST).
    let (status, answer) = raw(
        port,
        &format!(
            "GET /dashboard/orgs/mjolby HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 303, "{answer}");
    assert!(answer.contains("location: /dashboard/signin"), "{answer}");
    let (status, answer) = raw(
        port,
        &format!(
            "POST /dashboard/signout HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 401, "{answer}");

    // The sign-in page sets its form cookie and every security header.
    let (status, answer) = raw(
        port,
        &format!("GET /dashboard/signin HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(status, 200);
    let lower = answer.to_lowercase();
    for h in [
        "content-security-policy: default-src 'none'",
        "x-frame-options: deny",
        "cache-control: no-store",
        "set-cookie: outpost_dash_pre=",
        "httponly; samesite=strict",
    ] {
        assert!(lower.contains(h), "{h} in {answer}");
    }
    assert!(
        !answer.contains("<script"),
        "the dashboard works without scripts"
    );

    // A sign-in POST without the form's cookie (another site's form) is
    // refused before the code is looked at; so is one from another origin.
    let code = hub.admin(&["signin"]);
    let code = code.lines().next().unwrap();
    let body = format!("csrf=x&code={code}");
    let (status, answer) = raw(
        port,
        &format!(
            "POST /dashboard/signin HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = raw(
        port,
        &format!(
            "POST /dashboard/signin HTTP/1.1\r\nHost: {host}\r\nOrigin: http://evil.example\r\nCookie: outpost_dash_pre=x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(status, 403, "{answer}");
    // With the form's cookie and from the page itself, the same code works:
    // the refusals above used nothing up.
    let (status, answer) = raw(
        port,
        &format!(
            "POST /dashboard/signin HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nCookie: outpost_dash_pre=x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(status, 303, "{answer}");
    assert!(answer.contains("set-cookie: outpost_dash=ops_"), "{answer}");

    // Wrong codes are limited per address like enrolment codes.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let body = "csrf=x&code=AAAA-BBBB-CCCC-DDDD";
        statuses.push(
            raw(
                port,
                &format!(
                    "POST /dashboard/signin HTTP/1.1\r\nHost: {host}\r\nCookie: outpost_dash_pre=x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                ),
            )
            .0,
        );
    }
    assert_eq!(&statuses[..10], &[403; 10]);
    assert_eq!(&statuses[10..], &[429; 2]);
}
