//! Plain-text rendering for people at a terminal. Scripts use `--json`.

use std::fmt::Write;

use outpost_proto::record::{Body, Record};
use serde_json::{Map, Value};

pub const LIST_HEADER: &str =
    "ID        KIND    DATE        TIME   SITE                      STAFF  SUMMARY";

fn clip(s: &str, width: usize) -> String {
    let count = s.chars().count();
    if count <= width {
        format!("{s:<width$}")
    } else {
        let cut: String = s.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// One line of `outpost list`: short id, kind, date, time (a course: its
/// first session's), site, staff, summary.
pub fn list_line(r: &Record) -> String {
    let short: String = r.id.to_string().chars().take(8).collect();
    let hhmm =
        |t: Option<chrono::NaiveTime>| t.map_or("-".into(), |t| t.format("%H:%M").to_string());
    let (date, time, summary) = match &r.body {
        Body::Visit(v) => (
            v.date.to_string(),
            hhmm(v.time),
            format!(
                "{} min, {}, {}",
                v.minutes,
                if v.services.is_empty() {
                    v.category.as_str().to_string()
                } else {
                    v.services.join("+")
                },
                v.outcome
            ),
        ),
        Body::Course(c) => (
            r.date_range()
                .map(|d| d.0.to_string())
                .unwrap_or_else(|| "-".into()),
            hhmm(
                c.sessions
                    .iter()
                    .min_by_key(|s| (s.date, s.time))
                    .and_then(|s| s.time),
            ),
            format!(
                "{} ({} session{}, {} participants)",
                c.title,
                c.sessions.len(),
                if c.sessions.len() == 1 { "" } else { "s" },
                c.sessions
                    .iter()
                    .map(|s| u64::from(s.participants))
                    .sum::<u64>()
            ),
        ),
    };
    format!(
        "{short}  {:<6}  {:<10}  {:<5}  {}  {}  {}",
        r.kind().as_str(),
        date,
        time,
        clip(&r.site, 24),
        clip(&r.staff, 5),
        summary
    )
}

/// `outpost show`: one field per line, then any conflicts.
pub fn show_text(r: &Record, conflicts: &Map<String, Value>) -> String {
    let mut out = String::new();
    let fields = r.to_fields();
    let order = outpost_proto::schema::Scope::of_kind(r.kind())
        .into_iter()
        .flat_map(outpost_proto::schema::fields_of)
        .map(|d| d.name);
    for name in order {
        let Some(v) = fields.get(name) else { continue };
        if name == "sessions" {
            continue;
        }
        let _ = writeln!(out, "{:<13} {}", format!("{name}:"), plain(v));
    }
    if let Body::Course(c) = &r.body {
        let _ = writeln!(out, "sessions:     {}", c.sessions.len());
        for s in &c.sessions {
            let _ = writeln!(
                out,
                "  {} {} {} min, {} participants{}{}  [{}]",
                s.date,
                s.time
                    .map(|t| t.format("%H:%M").to_string())
                    .unwrap_or_else(|| "--:--".into()),
                s.minutes,
                s.participants,
                s.instructor
                    .as_deref()
                    .map(|i| format!(", {i}"))
                    .unwrap_or_default(),
                s.note
                    .as_deref()
                    .map(|n| format!(" — {n}"))
                    .unwrap_or_default(),
                s.id
            );
        }
    }
    if conflicts.is_empty() {
        let _ = writeln!(out, "conflicts:    none");
    } else {
        let _ = writeln!(
            out,
            "conflicts:    (concurrent edits; the value above won everywhere)"
        );
        for (field, values) in conflicts {
            let _ = writeln!(out, "  {field}: also {}", plain(values));
        }
    }
    out
}

/// A JSON value as a person would write it (no quotes on plain strings).
fn plain(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        Value::Object(map) => {
            // A barrier: SERVICE:KIND[:NOTE], as typed.
            let get = |k: &str| map.get(k).map(plain).unwrap_or_default();
            match map.get("note") {
                Some(Value::String(n)) => format!("{}:{}:{n}", get("service"), get("kind")),
                _ if map.contains_key("service") => format!("{}:{}", get("service"), get("kind")),
                _ => v.to_string(),
            }
        }
        other => other.to_string(),
    }
}

/// `outpost status` for people.
pub fn status_text(v: &Value) -> String {
    let s = |k: &str| plain(v.get(k).unwrap_or(&Value::Null));
    let mut out = String::new();
    let _ = writeln!(out, "device:        {}", s("device"));
    let _ = writeln!(out, "name:          {}", s("name"));
    let _ = writeln!(out, "org:           {}", s("org"));
    let _ = writeln!(out, "site / staff:  {} / {}", s("site"), s("staff"));
    let _ = writeln!(out, "data dir:      {}", s("data_dir"));
    let hub = match v.get("hub_url") {
        Some(Value::String(u)) => u.clone(),
        _ => "not enrolled (run `outpost enroll HUB_URL CODE`)".into(),
    };
    let _ = writeln!(out, "hub:           {hub}");
    let running = v
        .get("daemon_running")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let _ = writeln!(
        out,
        "daemon:        {}",
        if running { "running" } else { "not running" }
    );
    let _ = writeln!(
        out,
        "records:       {} ({} visits, {} courses), {} erased",
        s("records"),
        s("visits"),
        s("courses"),
        s("erased")
    );
    let _ = writeln!(out, "waiting sync:  {}", s("pending"));
    let _ = writeln!(out, "last attempt:  {}", s("last_sync_attempt"));
    let _ = writeln!(out, "last success:  {}", s("last_sync_success"));
    let _ = writeln!(out, "last error:    {}", s("last_error"));
    if let Some(Value::String(url)) = v.get("ui_url") {
        let _ = writeln!(out, "web app:       {url} (open it with `outpost ui`)");
    }
    if let Some(Value::String(step)) = v.get("next_step") {
        let _ = writeln!(out, "to do:         {step}");
    }
    if let Some(Value::Array(q)) = v.get("quarantined").filter(|q| q != &&Value::Array(vec![])) {
        let _ = writeln!(
            out,
            "quarantined:   {} record(s), kept aside while the rest syncs (`outpost quarantine list`):",
            q.len()
        );
        for item in q {
            let _ = writeln!(
                out,
                "  {}  {}",
                plain(item.get("id").unwrap_or(&Value::Null)),
                plain(item.get("reason").unwrap_or(&Value::Null))
            );
        }
    }
    out
}

/// "12 visits, 1 course (13 rows)" for export messages.
pub fn summary_text(s: &outpost_files::export::ExportSummary) -> String {
    format!(
        "{}, {} ({})",
        counted(s.visits, "visit", "visits"),
        counted(s.courses, "course", "courses"),
        counted(s.rows, "row", "rows")
    )
}

/// `1 visit`, `2 visits`, `0 visits`.
pub fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A progress bar on stderr when it is a terminal and `wanted`; hidden
/// otherwise (piped output stays clean).
pub fn progress(len: u64, wanted: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !wanted || !std::io::stderr().is_terminal() || len < 1000 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    bar
}

/// Human byte counts: 812 B, 14.2 kB, 3.1 MB.
pub fn bytes(n: u64) -> String {
    match n {
        n if n < 1000 => format!("{n} B"),
        n if n < 1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        n => format!("{:.1} MB", n as f64 / 1e6),
    }
}

/// An RFC 3339 time from the hub in this computer's local time, to the
/// minute; as it came when it does not parse.
pub fn local_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// `outpost admin devices` as a table.
pub fn devices_text(devices: &[Value]) -> String {
    let mut out = String::from(
        "NAME                          DEVICE    ORG         SITE                  STAFF   LAST SEEN         WAITING  CLOCK       STATE\n",
    );
    for d in devices {
        let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
        let clock = match d.get("clock_offset_secs").and_then(Value::as_i64) {
            None => "-".to_string(),
            Some(o)
                if d.get("clock_flag")
                    .and_then(Value::as_bool)
                    .unwrap_or(false) =>
            {
                format!("OFF {:+}h", o / 3600)
            }
            Some(o) => format!("{o:+}s"),
        };
        let state = if d.get("revoked").and_then(Value::as_bool).unwrap_or(false) {
            "revoked"
        } else {
            "active"
        };
        let waiting = d
            .get("waiting")
            .and_then(Value::as_u64)
            .map_or("-".to_string(), |n| n.to_string());
        let seen = d
            .get("last_seen")
            .and_then(Value::as_str)
            .map_or("-".to_string(), local_time);
        let id = s("id");
        let _ = writeln!(
            out,
            "{:<28}  {:<8}  {:<10}  {:<20}  {:<6}  {:<16}  {:>7}  {:<10}  {state}",
            clip(&s("name"), 28),
            id.get(..8).unwrap_or(&id),
            clip(&s("org"), 10),
            clip(&s("site"), 20),
            clip(&s("staff"), 6),
            seen,
            waiting,
            clock
        );
    }
    out
}

/// `outpost admin token list` for people: one token a line, never a
/// secret (the hub sends none).
pub fn tokens_text(tokens: &[Value]) -> String {
    let mut out = String::from(
        "ID            ROLE         ORGS              CREATED               LAST USED             REVOKED               NAME\n",
    );
    for t in tokens {
        let s = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
        let orgs = match t.get("orgs").and_then(Value::as_array) {
            None => "(all)".to_string(),
            Some(list) => list
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
        };
        let _ = writeln!(
            out,
            "{:<12}  {:<11}  {:<16}  {:<20}  {:<20}  {:<20}  {}",
            s("id"),
            s("role"),
            orgs,
            s("created_at"),
            s("last_used"),
            s("revoked_at"),
            s("name")
        );
    }
    out
}

/// `outpost admin audit` for people: one entry a line, oldest first.
pub fn audit_text(entries: &[Value]) -> String {
    let mut out = String::from(
        "#     WHEN                  WHO                             ACTION          ORG          DETAIL\n",
    );
    for e in entries {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
        let who = match e.get("actor_id").and_then(Value::as_str) {
            Some(id) => format!("{} [{id}]", s("actor_name")),
            None => s("actor_name"),
        };
        let _ = writeln!(
            out,
            "{:<4}  {:<20}  {:<30}  {:<14}  {:<11}  {}",
            e.get("position").and_then(Value::as_u64).unwrap_or(0),
            s("at"),
            who,
            s("action"),
            s("org"),
            s("detail")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_summaries_speak_in_singular_and_plural() {
        let s = outpost_files::export::ExportSummary {
            visits: 1,
            courses: 0,
            rows: 1,
        };
        assert_eq!(summary_text(&s), "1 visit, 0 courses (1 row)");
        assert_eq!(counted(2, "course", "courses"), "2 courses");
    }
}
