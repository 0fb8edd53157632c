//! This laptop's settings for the app (issue 11 points 2 and 5): the visit
//! form's channel and language of help (a fixed default, or "remember the
//! last one used here") and the app's language. Kept in `config.toml`
//! (`default_channel`, `default_language`, `ui_lang`), the file the CLI
//! reads its defaults from too; only these keys are changed, and the file
//! is read without the `OUTPOST_*` environment layer so a variable set for
//! the daemon is never written into it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use outpost_proto::record::Channel;
use outpost_store::config::{Settings, read_toml};
use outpost_store::store::Identity;
use serde::Deserialize;

use crate::i18n::{self, Lang, value_label};
use crate::pages::{self, layout};
use crate::security::Sess;
use crate::{App, Remembered, form, see_other};

/// What the page shows and saves.
struct Choice {
    channel: String,
    language: String,
    ui_lang: String,
}

fn page(sess: &Sess, identity: &Identity, c: &Choice, saved: bool, error: Option<&str>) -> Markup {
    let lang = sess.lang;
    let remember = lang.t("Kom ihåg det senast valda", "Remember the last one chosen");
    let body = html! {
        h1 { (lang.t("Inställningar för den här datorn", "Settings for this laptop")) }
        @if saved { p.saved #saved role="status" { (lang.t("Inställningarna är sparade.", "The settings were saved.")) } }
        @if let Some(e) = error {
            div.errors #errors role="alert" tabindex="-1" autofocus { p { (e) } }
        }
        form #settings method="post" action="/settings" {
            input type="hidden" name="csrf" value=(sess.csrf);
            fieldset.choices #f-default_channel aria-describedby="help-default_channel" {
                legend { (lang.t("Kanal i besöksformuläret", "Channel in the visit form")) }
                p.help #help-default_channel { (lang.t("Fyll alltid i samma kanal, eller den som valdes senast på den här datorn.", "Always fill in the same channel, or the one chosen last on this laptop.")) }
                div.opts {
                    label.opt {
                        input type="radio" name="default_channel" value="" checked[c.channel.is_empty()];
                        span { (remember) }
                    }
                    @for ch in Channel::NAMES {
                        label.opt {
                            input type="radio" name="default_channel" value=(ch) checked[c.channel == *ch];
                            span { (value_label(lang, "channel", ch)) }
                        }
                    }
                }
            }
            div.field {
                label for="f-default_language" { (lang.t("Språk i besöksformuläret", "Language in the visit form")) }
                select #f-default_language name="default_language" aria-describedby="help-default_language" {
                    option value="" selected[c.language.is_empty()] { (remember) }
                    @for (code, sv, en) in i18n::LANGUAGES {
                        option value=(code) selected[c.language == *code] { (lang.t(sv, en)) " (" (code) ")" }
                    }
                }
                p.help #help-default_language { (lang.t("Språket som hjälpen oftast ges på.", "The language help is most often given in.")) }
            }
            fieldset.choices #f-ui_lang {
                legend { (lang.t("Appens språk", "The app's language")) }
                div.opts {
                    label.opt {
                        input type="radio" name="ui_lang" value="sv" checked[c.ui_lang != "en"];
                        span lang="sv" { "Svenska" }
                    }
                    label.opt {
                        input type="radio" name="ui_lang" value="en" checked[c.ui_lang == "en"];
                        span lang="en" { "English" }
                    }
                }
            }
            div.buttons { button type="submit" #save-settings { (lang.t("Spara inställningarna", "Save the settings")) } }
        }
    };
    layout(
        sess,
        identity,
        lang.t("Inställningar", "Settings"),
        "settings",
        body,
    )
}

/// The settings file alone (no environment layer), or the defaults.
fn file_settings(app: &App) -> Result<Settings, String> {
    read_toml::<Settings>(&app.paths.config_file)
        .map(Option::unwrap_or_default)
        .map_err(|e| e.to_string())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SettingsQuery {
    saved: Option<String>,
}

pub(crate) async fn show(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    Query(q): Query<SettingsQuery>,
) -> Response {
    let settings = file_settings(&app).unwrap_or_default();
    let identity = app.with_store(|s| s.identity().clone()).await;
    let choice = Choice {
        channel: settings.default_channel.unwrap_or_default(),
        language: settings.default_language.unwrap_or_default(),
        ui_lang: sess.lang.code().to_string(),
    };
    pages::html(page(&sess, &identity, &choice, q.saved.is_some(), None))
}

pub(crate) async fn save(
    State(app): State<Arc<App>>,
    Extension(sess): Extension<Sess>,
    body: Bytes,
) -> Response {
    let pairs = form::pairs(&body);
    let get = |k: &str| form::first(&pairs, k).unwrap_or("").trim().to_lowercase();
    let choice = Choice {
        channel: get("default_channel"),
        language: get("default_language"),
        ui_lang: get("ui_lang"),
    };
    let ui = Lang::parse(&choice.ui_lang).unwrap_or(sess.lang);
    let problem = if !choice.channel.is_empty()
        && !Channel::NAMES.contains(&choice.channel.as_str())
    {
        Some(
            sess.lang
                .t("Välj en av kanalerna.", "Choose one of the channels."),
        )
    } else if !choice.language.is_empty()
        && (choice.language.len() != 2 || !choice.language.bytes().all(|b| b.is_ascii_lowercase()))
    {
        Some(sess.lang.t(
            "Språket anges med två bokstäver (ISO 639-1), t.ex. sv.",
            "A language is two letters (ISO 639-1), e.g. sv.",
        ))
    } else {
        None
    };
    let saved = match problem {
        Some(p) => Err(p.to_string()),
        None => file_settings(&app).and_then(|mut s| {
            s.default_channel = (!choice.channel.is_empty()).then(|| choice.channel.clone());
            s.default_language = (!choice.language.is_empty()).then(|| choice.language.clone());
            s.ui_lang = ui.code().to_string();
            s.save(&app.paths).map_err(|e| {
                format!(
                    "{} ({e})",
                    sess.lang.t(
                        "Inställningarna kunde inte sparas; kontrollera att det finns plats på disken.",
                        "The settings could not be saved; check that the disk has space.",
                    )
                )
            })
        }),
    };
    if let Err(e) = saved {
        let identity = app.with_store(|s| s.identity().clone()).await;
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::html(page(&sess, &identity, &choice, false, Some(&e))),
        )
            .into_response();
    }
    // The language now, and at the next launch.
    app.sessions.set_lang(&sess.id, ui);
    let mut r = Remembered::load(&app.paths.data_dir);
    r.lang = Some(ui.code().to_string());
    r.save(&app.paths.data_dir);
    see_other("/settings?saved=1")
}
