//! The command line made for the moment between two visitors (issue:
//! "the CLI gets the same care", DESIGN.md section 3): defaults, day words,
//! "did you mean", questions on a terminal only, time order, JSON errors.
//!
//! Questions are asked only when stdin and stderr are a terminal; the
//! tests that answer them run `outpost` under util-linux `script`, which
//! gives it a real pseudo-terminal and passes the answer typed on stdin.

use std::io::Write;
use std::process::{Command, Stdio};

use chrono::{Days, Local, NaiveDate};
use outpost_tests::{TestDir, clean_env, outpost_bin};
use serde_json::Value;

fn today() -> NaiveDate {
    Local::now().date_naive()
}

/// `visit add` with every required flag but the date.
const NO_DATE: &[&str] = &[
    "visit",
    "add",
    "--minutes",
    "20",
    "--channel",
    "drop_in",
    "--service",
    "BankID",
    "--category",
    "e_service",
    "--outcome",
    "solved",
    "--age-band",
    "65_79",
    "--language",
    "sv",
];

fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&'a str> = NO_DATE.to_vec();
    v.extend_from_slice(extra);
    v
}

/// Runs `outpost --data-dir DIR ARGS…` on a pseudo-terminal, typing
/// `answer` (a line) when it asks. Returns (success, everything it wrote to
/// the terminal).
fn on_terminal(td: &TestDir, args: &[&str], answer: &str) -> (bool, String) {
    let script = which("script").unwrap_or_else(|| {
        panic!("these tests need util-linux `script`; install it: apt-get install util-linux")
    });
    let mut line = vec![shell_quote(&outpost_bin().display().to_string())];
    line.push("--data-dir".into());
    line.push(shell_quote(&td.path().display().to_string()));
    line.extend(args.iter().map(|a| shell_quote(a)));
    let mut cmd = Command::new(script);
    clean_env(&mut cmd);
    let mut child = cmd
        .args(["-q", "-e", "-c", &line.join(" "), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("could not start script");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{answer}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn date_of(td: &TestDir, id: &str) -> String {
    td.show(id)["date"].as_str().unwrap().to_string()
}

#[test]
fn the_date_defaults_to_today_and_takes_day_words() {
    let td = TestDir::initialised();
    let id = td.ok(NO_DATE).trim().to_string();
    assert_eq!(date_of(&td, &id), today().to_string());
    for word in ["idag", "today", "IDAG"] {
        let id = td.ok(&with(&["--date", word])).trim().to_string();
        assert_eq!(date_of(&td, &id), today().to_string(), "--date {word}");
    }
    let id = td.ok(&with(&["--date", "igår"])).trim().to_string();
    assert_eq!(date_of(&td, &id), (today() - Days::new(1)).to_string());

    // A session too, and an edit.
    let course = td.add_course("Nybörjarkurs", &[]);
    let s = td.ok(&[
        "course",
        "session",
        &course,
        "--minutes",
        "60",
        "--participants",
        "5",
    ]);
    assert!(!s.trim().is_empty());
    assert_eq!(
        td.show(&course)["sessions"][0]["date"],
        Value::String(today().to_string())
    );
    td.ok(&["edit", &id, "--date", "today"]);
    assert_eq!(date_of(&td, &id), today().to_string());
}

#[test]
fn channel_and_language_default_from_the_settings() {
    let td = TestDir::initialised();
    std::fs::write(
        td.path().join("config.toml"),
        "default_channel = \"phone\"\ndefault_language = \"ar\"\n",
    )
    .unwrap();
    let id = td
        .ok(&[
            "visit",
            "add",
            "--minutes",
            "20",
            "--service",
            "BankID",
            "--category",
            "e_service",
            "--outcome",
            "solved",
            "--age-band",
            "65_79",
        ])
        .trim()
        .to_string();
    let v = td.show(&id);
    assert_eq!(v["channel"], "phone");
    assert_eq!(v["language"], "ar");
    assert_eq!(v["site"], outpost_tests::SITE);
    // A flag still wins over the default.
    let args: Vec<&str> = with(&[])
        .into_iter()
        .map(|a| if a == "drop_in" { "booked" } else { a })
        .collect();
    let id = td.ok(&args).trim().to_string();
    assert_eq!(td.show(&id)["channel"], "booked");
}

#[test]
fn help_marks_required_flags_and_lists_every_value() {
    let td = TestDir::new();
    let help = td.ok(&["visit", "add", "--help"]);
    for needle in [
        "[required]",
        "drop_in",
        "course_followup",
        "not_solved",
        "80_plus",
        "screen_reader",
        "Default: today",
        "default_channel",
    ] {
        assert!(
            help.contains(needle),
            "visit add --help lacks {needle}:\n{help}"
        );
    }
    let minutes = help
        .lines()
        .skip_while(|l| !l.contains("--minutes"))
        .take(3)
        .collect::<String>();
    assert!(minutes.contains("[required]"), "--minutes: {minutes}");
}

#[test]
fn services_lists_the_catalogue() {
    let td = TestDir::initialised();
    let text = td.ok(&["services"]);
    let line = text
        .lines()
        .find(|l| l.starts_with("Skatteverket"))
        .unwrap_or_else(|| panic!("no Skatteverket in:\n{text}"));
    assert!(line.contains("other"), "{line}");
    let list = td.json(&["--json", "services"]);
    let list = list.as_array().unwrap();
    assert!(list.len() > 20, "only {} services", list.len());
    let fk = list
        .iter()
        .find(|e| e["name"] == "Försäkringskassan")
        .expect("Försäkringskassan listed");
    assert_eq!(fk["scope"], "other");
}

#[test]
fn typos_get_a_did_you_mean() {
    let td = TestDir::initialised();
    let err = td.fails(&[
        "visit",
        "add",
        "--minutes",
        "20",
        "--channel",
        "dropin",
        "--service",
        "BankID",
        "--category",
        "e_service",
        "--outcome",
        "solvd",
        "--age-band",
        "65_79",
        "--language",
        "sv",
    ]);
    assert!(err.contains("did you mean drop_in"), "{err}");
    assert!(err.contains("did you mean solved"), "{err}");

    // A service typo is saved as typed by a script (never blocked), with
    // the suggestion on stderr.
    let (status, stdout, stderr) = td.run(&with(&["--service", "Skateverket"]));
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("did you mean 'Skatteverket'"),
        "stderr: {stderr}"
    );
    assert_eq!(
        td.show(stdout.trim())["services"],
        serde_json::json!(["BankID", "Skateverket"])
    );

    // On a terminal the user is asked, and Enter takes the suggestion.
    let (ok, screen) = on_terminal(&td, &with(&["--service", "Skateverket"]), "");
    assert!(ok, "{screen}");
    assert!(screen.contains("Did you mean 'Skatteverket'?"), "{screen}");
    // The id is printed after the answer, maybe on the question's line.
    let id = screen
        .split_whitespace()
        .find(|w| outpost_tests::is_uuid(w))
        .unwrap_or_else(|| panic!("no id in {screen}"));
    assert_eq!(
        td.show(id)["services"],
        serde_json::json!(["BankID", "Skatteverket"])
    );
}

#[test]
fn values_may_start_with_a_dash() {
    let td = TestDir::initialised();
    let id = td
        .ok(&with(&[
            "--note",
            "-5 kr avgift",
            "--barrier",
            "BankID:login:-",
        ]))
        .trim()
        .to_string();
    let v = td.show(&id);
    assert_eq!(v["note"], "-5 kr avgift");
}

#[test]
fn delete_asks_on_a_terminal_and_not_in_a_script() {
    let td = TestDir::initialised();
    let a = td.ok(&with(&[])).trim().to_string();
    let (ok, screen) = on_terminal(&td, &["delete", &a], "n");
    assert!(!ok, "answering no must fail the command: {screen}");
    assert!(screen.contains("every other laptop"), "{screen}");
    assert!(
        screen.contains(&a[..8]),
        "the question shows the record: {screen}"
    );
    assert_eq!(
        td.list_ids(&[]),
        vec![a.clone()],
        "a 'no' erased the record"
    );

    let (ok, screen) = on_terminal(&td, &["delete", &a], "ja");
    assert!(ok, "{screen}");
    assert!(td.list_ids(&[]).is_empty());

    // --yes skips the question on a terminal; a script is never asked.
    let b = td.ok(&with(&[])).trim().to_string();
    let (ok, screen) = on_terminal(&td, &["delete", "--yes", &b], "n");
    assert!(ok, "{screen}");
    assert!(!screen.contains("every other laptop"), "{screen}");
    let c = td.ok(&with(&[])).trim().to_string();
    td.ok(&["delete", &c]);
    assert!(td.list_ids(&[]).is_empty());
}

#[test]
fn list_shows_time_in_date_and_time_order() {
    let td = TestDir::initialised();
    let day = today().to_string();
    let late = td
        .ok(&with(&["--date", &day, "--time", "14:30"]))
        .trim()
        .to_string();
    let early = td
        .ok(&with(&["--date", &day, "--time", "09:05"]))
        .trim()
        .to_string();
    let untimed = td.ok(&with(&["--date", &day])).trim().to_string();
    let yesterday = (today() - Days::new(1)).to_string();
    let before = td
        .ok(&with(&["--date", &yesterday, "--time", "23:00"]))
        .trim()
        .to_string();
    let order: Vec<String> = td
        .list(&[])
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(order, vec![before, untimed, early, late]);
    let text = td.ok(&["list"]);
    assert!(text.lines().next().unwrap().contains("TIME"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[3].contains("09:05") && lines[4].contains("14:30"),
        "{text}"
    );
}

#[test]
fn a_date_ahead_or_long_ago_warns_and_asks_on_a_terminal() {
    let td = TestDir::initialised();
    // A script is warned, never blocked.
    let (status, stdout, stderr) = td.run(&with(&["--date", "2062-03-04"]));
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("days ahead"), "{stderr}");
    assert_eq!(date_of(&td, stdout.trim()), "2062-03-04");
    let long_ago = (today() - Days::new(400)).to_string();
    let (_, _, stderr) = td.run(&with(&["--date", &long_ago]));
    assert!(stderr.contains("more than a year ago"), "{stderr}");
    // An ordinary date says nothing.
    let (_, _, stderr) = td.run(&with(&["--date", "today"]));
    assert!(!stderr.contains("warning"), "{stderr}");

    // On a terminal, "no" saves nothing.
    let before = td.list_ids(&[]).len();
    let (ok, screen) = on_terminal(&td, &with(&["--date", "2062-03-04"]), "n");
    assert!(!ok, "{screen}");
    assert!(screen.contains("nothing was saved"), "{screen}");
    assert_eq!(td.list_ids(&[]).len(), before);
    let (ok, _) = on_terminal(&td, &with(&["--date", "2062-03-04"]), "y");
    assert!(ok);
    assert_eq!(td.list_ids(&[]).len(), before + 1);
}

#[test]
fn errors_are_json_under_json() {
    let td = TestDir::initialised();
    let (status, stdout, stderr) = td.run(&["--json", "visit", "add", "--minutes", "20"]);
    assert!(!status.success());
    assert!(stdout.is_empty(), "stdout: {stdout}");
    let err: Value = serde_json::from_str(stderr.trim())
        .unwrap_or_else(|e| panic!("stderr is not one JSON object ({e}): {stderr}"));
    let message = err["error"].as_str().unwrap();
    assert!(!message.is_empty());
    assert!(err["causes"].is_array());
    let (status, _, stderr) = td.run(&["--json", "show", "zzzz"]);
    assert!(!status.success());
    let err: Value = serde_json::from_str(stderr.trim()).expect("JSON error");
    assert!(
        err["error"].as_str().unwrap().contains("zzzz")
            || !err["error"].as_str().unwrap().is_empty()
    );
    // Without --json, people get words.
    let (_, _, stderr) = td.run(&["show", "zzzz"]);
    assert!(stderr.starts_with("error: "), "{stderr}");
}
