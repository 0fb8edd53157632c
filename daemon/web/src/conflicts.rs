//! Records with unresolved concurrent values (issue 11 point 4): two
//! laptops changed the same field before either synced. Automerge keeps
//! every value; the store shows one (the same on every laptop) and lists
//! the others as `conflicts`, which `outpost show` prints too. This page
//! lists them with the values side by side; choosing one writes it as a
//! new change (`Store::resolve_conflict`), which syncs like any edit and
//! ends the conflict everywhere. The values not chosen stay in the
//! record's history, as every change does, until the record is erased.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path as UrlPath, Query, State};
use axum::response::Response;
use chrono::Local;
use maud::{Markup, html};
use outpost_proto::schema::{self, Scope};
use outpost_store::store::{Identity, StoreError, StoredRecord};
use serde::Deserialize;
use serde_json::Value;

use crate::i18n::{self, Lang, value_label};
use crate::pages::{self, layout};
use crate::security::Sess;
use crate::{App, failed, form, now, see_other};

/// The page lists at most this many records (newest change first); the
/// rest come once these are resolved.
const LIMIT: usize = 100;

/// A field's label; `sessions.<id>` is "Session" with the start of its id.
fn field_label(lang: Lang, field: &str) -> String {
    if let Some(sid) = field.strip_prefix("sessions.") {
        return format!(
            "{} {}",
            lang.t("Tillfälle", "Session"),
            sid.get(..8).unwrap_or(sid)
        );
    }
    [Scope::Common, Scope::Visit, Scope::Course]
        .iter()
        .find_map(|s| schema::field(*s, field))
        .map(|d| lang.t2(d.label).to_string())
        .unwrap_or_else(|| field.to_string())
}

/// A value as a person reads it: enum values by their label, lists joined,
/// a session as one line, "(empty)" for a cleared field.
fn show_value(lang: Lang, field: &str, v: &Value) -> String {
    match v {
        Value::Null => lang.t("(tomt)", "(empty)").to_string(),
        Value::Bool(true) => lang.t("Ja", "Yes").to_string(),
        Value::Bool(false) => lang.t("Nej", "No").to_string(),
        Value::String(s) => value_label(lang, field, s),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.is_empty() => lang.t("(inga)", "(none)").to_string(),
        Value::Array(items) => items
            .iter()
            .map(|i| show_value(lang, field, i))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(map) if field.starts_with("sessions.") => {
            let today = Local::now().date_naive();
            let date = map
                .get("date")
                .and_then(Value::as_str)
                .and_then(|d| d.parse().ok())
                .map(|d| i18n::day(lang, d, today))
                .unwrap_or_default();
            let mut parts = vec![date];
            if let Some(t) = map.get("time").and_then(Value::as_str) {
                parts[0] = format!("{} {t}", parts[0]);
            }
            if let Some(m) = map.get("minutes") {
                parts.push(format!("{m} min"));
            }
            if let Some(p) = map.get("participants") {
                parts.push(format!("{p} {}", lang.t("deltagare", "participants")));
            }
            for k in ["instructor", "note"] {
                if let Some(s) = map.get(k).and_then(Value::as_str) {
                    parts.push(s.to_string());
                }
            }
            parts.join(" · ")
        }
        // A barrier: service, kind and note.
        Value::Object(map) => {
            let mut parts = Vec::new();
            if let Some(s) = map.get("service").and_then(Value::as_str) {
                parts.push(s.to_string());
            }
            if let Some(k) = map.get("kind").and_then(Value::as_str) {
                parts.push(value_label(lang, "barrier", k));
            }
            if let Some(n) = map.get("note").and_then(Value::as_str) {
                parts.push(n.to_string());
            }
            parts.join(": ")
        }
    }
}

/// The value shown now for `field` (the one every laptop shows until the
/// conflict is resolved).
fn current(r: &StoredRecord, field: &str) -> Value {
    let fields = r.record.to_fields();
    match field.strip_prefix("sessions.") {
        Some(sid) => fields
            .get("sessions")
            .and_then(Value::as_array)
            .and_then(|all| all.iter().find(|s| s["id"] == sid))
            .cloned()
            .unwrap_or(Value::Null),
        None => fields.get(field).cloned().unwrap_or(Value::Null),
    }
}

/// The values to choose from: the one shown now first, then the others.
fn choices(r: &StoredRecord, field: &str, losers: &Value) -> Vec<Value> {
    let mut options = vec![current(r, field)];
    for v in losers.as_array().into_iter().flatten() {
        if !options.contains(v) {
            options.push(v.clone());
        }
    }
    options
}

fn record_link(r: &StoredRecord) -> String {
    match &r.record.body {
        outpost_proto::Body::Visit(_) => format!("/visits/{}/edit", r.record.id),
        outpost_proto::Body::Course(_) => format!("/courses/{}", r.record.id),
    }
}

fn page(sess: &Sess, identity: &Identity, records: &[StoredRecord], resolved: bool) -> Markup {
    let lang = sess.lang;
    let body = html! {
        h1 { (lang.t("Konflikter att granska", "Conflicts to review")) }
        @if resolved {
            p.saved #saved role="status" { (lang.t("Konflikten är löst. Valet skickas till hubben vid nästa synkning.", "The conflict is resolved. The choice goes to the hub at the next sync.")) }
        }
        p {
            (lang.t(
                "Här finns poster som ändrats på två datorer innan de hann synkas, i samma fält. Alla datorer visar samma värde tills någon väljer. Välj det som stämmer; de andra värdena finns kvar i postens historik.",
                "These records were changed on two laptops, in the same field, before they synced. Every laptop shows the same value until someone chooses. Choose the right one; the others stay in the record's history.",
            ))
        }
        @if records.is_empty() {
            p.empty #no-conflicts { (lang.t("Inga konflikter. Allt stämmer överens.", "No conflicts. Everything agrees.")) }
        }
        @for r in records {
            section.conflict data-id=(r.record.id) aria-labelledby=(format!("c-{}", r.record.id)) {
                h2 id=(format!("c-{}", r.record.id)) {
                    (pages::summary(lang, r))
                }
                p { a href=(record_link(r)) { (lang.t("Öppna posten", "Open the record")) span.sr { " " (pages::summary(lang, r)) } } }
                @for (field, losers) in &r.conflicts {
                    @let options = choices(r, field, losers);
                    form.resolve method="post" action=(format!("/conflicts/{}", r.record.id)) {
                        input type="hidden" name="csrf" value=(sess.csrf);
                        input type="hidden" name="field" value=(field);
                        fieldset {
                            legend { (field_label(lang, field)) }
                            div.side-by-side {
                                @for (i, v) in options.iter().enumerate() {
                                    @let input_id = format!("v-{}-{}-{i}", r.record.id, field.replace('.', "-"));
                                    div.value {
                                        input type="radio" id=(input_id) name="value" value=(v.to_string()) required checked[i == 0];
                                        label for=(input_id) {
                                            span.which { @if i == 0 { (lang.t("Visas nu", "Shown now")) } @else { (lang.t("Annat värde", "Other value")) } }
                                            span.val { (show_value(lang, field, v)) }
                                        }
                                    }
                                }
                            }
                        }
                        button type="submit" { (lang.t("Använd det valda värdet", "Use the chosen value")) span.sr { " – " (field_label(lang, field)) } }
                    }
                }
            }
        }
    };
    layout(
        sess,
        identity,
        lang.t("Konflikter", "Conflicts"),
        "conflicts",
        body,
    )
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    resolved: Option<String>,
}

pub(crate) async fn list(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    Query(q): Query<ListQuery>,
) -> Response {
    let data = app
        .with_store(|s| -> Result<_, StoreError> {
            Ok((s.conflicted(LIMIT)?, s.identity().clone()))
        })
        .await;
    match data {
        Ok((records, identity)) => {
            pages::html(page(&sess, &identity, &records, q.resolved.is_some()))
        }
        Err(e) => failed(sess.lang, &e),
    }
}

pub(crate) async fn resolve(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    let pairs = form::pairs(&body);
    let field = form::first(&pairs, "field").unwrap_or("").to_string();
    // The value travels as JSON, so a choice is exactly what was shown; the
    // store refuses anything that is not one of the record's values.
    let value: Option<Value> =
        form::first(&pairs, "value").and_then(|v| serde_json::from_str(v).ok());
    let Some(value) = value else {
        return failed(sess.lang, &StoreError::NoConflict { id, field });
    };
    let result = app
        .with_store(move |s| -> Result<_, StoreError> {
            let id = s.resolve_id(&id)?;
            s.resolve_conflict(&id, &field, &value, now())
        })
        .await;
    match result {
        Ok(_) => see_other("/conflicts?resolved=1"),
        Err(e) => failed(sess.lang, &e),
    }
}
