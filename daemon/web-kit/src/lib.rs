//! What Outpost's two web apps share — the staff app on each laptop
//! (`outpost-web`, served by `outpostd` on 127.0.0.1) and the hub's
//! coordinator dashboard (`outpost-dashboard`) — kept once here so the
//! two never drift apart (DESIGN.md §8, §9):
//! - [`Lang`]: Swedish first, English second;
//! - [`head`], [`refused`], [`APP_CSS`]: the page skeleton and the one
//!   style sheet (embedded; nothing is loaded from outside);
//! - [`harden`]: the headers every answer carries (CSP, no framing, no
//!   caching, no Referer leaving);
//! - [`cookie_value`], [`session_cookie`], [`random_secret`]: session
//!   cookies (HttpOnly, SameSite=Strict, Secure over TLS);
//! - [`host_ok`], [`origin_ok`], [`csrf_ok`]: who may talk to an app;
//! - [`pairs`], [`first`]: form bodies;
//! - [`ChannelBody`], [`ChannelWriter`]: answers streamed from a blocking
//!   task chunk by chunk (the hub's record export, the dashboard's
//!   downloads), so no file is ever held whole in memory.
//!
//! This crate links neither the laptop store nor the hub: each app keeps
//! its own sessions (in memory on a laptop, in the database on the hub).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// The style sheet both apps serve at `/assets/app.css` (the dashboard
/// under its own prefix).
pub const APP_CSS: &str = include_str!("../assets/app.css");

pub use outpost_proto::lang::Lang;

/// The label of an enum value of `field` (e.g. `outcome` `partly`).
pub fn value_label(lang: Lang, field: &str, value: &str) -> String {
    let pair: Option<(&str, &str)> = match (field, value) {
        ("channel", "drop_in") => Some(("Drop-in", "Drop-in")),
        ("channel", "booked") => Some(("Bokad tid", "Booked")),
        ("channel", "outreach") => Some(("Uppsökande", "Outreach")),
        ("channel", "phone") => Some(("Telefon", "Phone")),
        ("channel", "course_followup") => Some(("Efter kurs", "Course follow-up")),
        ("category", "e_service") => Some(("E-tjänst", "E-service")),
        ("category", "device") => Some(("Mobil, surfplatta, dator", "Device")),
        ("category", "internet_basics") => Some(("Grunderna i internet", "Internet basics")),
        ("category", "security") => Some(("Säkerhet", "Security")),
        ("category", "social_media") => Some(("Sociala medier", "Social media")),
        ("category", "other") => Some(("Annat", "Other")),
        ("outcome", "solved") => Some(("Löst", "Solved")),
        ("outcome", "partly") => Some(("Delvis löst", "Partly solved")),
        ("outcome", "referred") => Some(("Hänvisad", "Referred")),
        ("outcome", "not_solved") => Some(("Inte löst", "Not solved")),
        ("age_band", "under_25") => Some(("Under 25", "Under 25")),
        ("age_band", "25_44") => Some(("25–44", "25–44")),
        ("age_band", "45_64") => Some(("45–64", "45–64")),
        ("age_band", "65_79") => Some(("65–79", "65–79")),
        ("age_band", "80_plus") => Some(("80 eller äldre", "80 or older")),
        ("age_band", "unknown") => Some(("Vet inte", "Not known")),
        ("assistive", "interpreter") => Some(("Tolk", "Interpreter")),
        ("assistive", "speech_synthesis") => Some(("Talsyntes", "Speech synthesis")),
        ("assistive", "large_text") => Some(("Förstorad text", "Large text")),
        ("assistive", "screen_reader") => Some(("Skärmläsare", "Screen reader")),
        ("barrier", "login") => Some(("Inloggning", "Login")),
        ("barrier", "bankid") => Some(("BankID", "BankID")),
        ("barrier", "language") => Some(("Språket", "Language")),
        ("barrier", "navigation") => Some(("Hitta rätt", "Navigation")),
        ("barrier", "form") => Some(("Formuläret", "The form")),
        ("barrier", "accessibility") => Some(("Tillgänglighet", "Accessibility")),
        ("barrier", "device") => Some(("Enheten", "The device")),
        ("barrier", "other") => Some(("Annat", "Other")),
        _ => None,
    };
    match pair {
        Some((sv, en)) => lang.t(sv, en).to_string(),
        None => value.to_string(),
    }
}

/// A page's `<head>`: the embedded style sheet at `css` and the scripts
/// given (none for the dashboard: every page works without one).
pub fn head(title: &str, css: &str, scripts: &[&str]) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " – Outpost" }
            link rel="stylesheet" href=(css);
            @for src in scripts {
                script src=(src) defer {}
            }
            meta name="color-scheme" content="light";
        }
    }
}

pub fn html_response(page: Markup) -> Response {
    Html(page.into_string()).into_response()
}

/// A page for someone who may not come in (no session, wrong address,
/// used link): says why and what to do, nothing more.
pub fn refused(
    lang: Lang,
    status: StatusCode,
    head: Markup,
    title: &str,
    text: &str,
    extra: Markup,
) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head)
            body {
                main #main .narrow {
                    h1 { (title) }
                    p { (text) }
                    (extra)
                }
            }
        }
    };
    (status, html_response(page)).into_response()
}

/// A random 256-bit secret, hex-encoded (session ids, CSRF tokens).
pub fn random_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The value of cookie `name` among the request's cookies.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A session cookie: HttpOnly (no script reads it), SameSite=Strict (no
/// other site's page sends it), Secure when the app is served over TLS,
/// for the whole app (`path`). `max_age` 0 ends it.
pub fn session_cookie(name: &str, value: &str, path: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A cookie that removes cookie `name`.
pub fn cleared_cookie(name: &str, path: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}=; Path={path}; Max-Age=0; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Headers every answer carries: nothing from elsewhere may load or frame
/// the app, nothing is cached (records on a shared computer), and no
/// address (with a one-time token or code) leaks in a Referer.
pub fn harden(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: with the latter Chrome sends
    // `Origin: null` on the app's own form posts, which the Origin check
    // then refuses; no address leaves for another site either way.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Whether the request's `Host` is one the app answers to: a page on
/// another site that rebinds its DNS name to the app's address still
/// sends its own name, so it is refused (DNS rebinding).
pub fn host_ok(headers: &HeaderMap, allowed: &[String]) -> bool {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| allowed.iter().any(|a| a.eq_ignore_ascii_case(h)))
}

/// Whether a POST's `Origin`, when the browser sends one, is one of the
/// app's own.
pub fn origin_ok(headers: &HeaderMap, allowed: &[String]) -> bool {
    headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_none_or(|o| allowed.iter().any(|a| a.eq_ignore_ascii_case(o)))
}

/// Whether a POST carries the session's CSRF token: the form field
/// `csrf` or the `x-csrf-token` header (for a script's JSON calls).
pub fn csrf_ok(headers: &HeaderMap, body: &[u8], expected: &str) -> bool {
    let header_token = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let token = header_token.or_else(|| first(&pairs(body), "csrf").map(str::to_string));
    // Compared without an early exit, so timing tells nothing.
    token.is_some_and(|t| {
        t.len() == expected.len()
            && t.bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    })
}

/// Decodes an `application/x-www-form-urlencoded` body into pairs, in order.
pub fn pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The first value of `name`.
pub fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An HTTP body fed by a bounded channel of chunks: a blocking task
/// sends each chunk as it is made, a slow reader slows the task down, and
/// an error aborts the body (the client sees a broken transfer rather
/// than a silently short file).
pub struct ChannelBody(pub tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>);

impl http_body::Body for ChannelBody {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<axum::body::Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|r| r.map(http_body::Frame::data)))
    }
}

/// Bytes gathered per chunk of a streamed answer.
pub const STREAM_CHUNK: usize = 64 * 1024;

/// A blocking `Write` into a [`ChannelBody`]: gathers [`STREAM_CHUNK`]
/// bytes, then sends them (waiting while the channel is full). Writing
/// after the reader went away is an error, which stops the writer's work.
pub struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<axum::body::Bytes, std::io::Error>>,
    chunk: Vec<u8>,
}

impl ChannelWriter {
    /// A writer and the body it feeds.
    pub fn new() -> (ChannelWriter, axum::body::Body) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        (
            ChannelWriter {
                tx,
                chunk: Vec::with_capacity(STREAM_CHUNK),
            },
            axum::body::Body::new(ChannelBody(rx)),
        )
    }

    fn send(&mut self) -> std::io::Result<()> {
        let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(STREAM_CHUNK));
        self.tx
            .blocking_send(Ok(axum::body::Bytes::from(full)))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
            })
    }

    /// Sends what is left; or, on `Err`, aborts the body.
    pub fn finish(mut self, result: Result<(), String>) {
        match result {
            Ok(()) => {
                let _ = self.send();
            }
            Err(e) => {
                let _ = self.tx.blocking_send(Err(std::io::Error::other(e)));
            }
        }
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.chunk.extend_from_slice(buf);
        if self.chunk.len() >= STREAM_CHUNK {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; outpost_session_80=xyz; b=2"),
        );
        assert_eq!(
            cookie_value(&h, "outpost_session_80").as_deref(),
            Some("xyz")
        );
        assert_eq!(cookie_value(&h, "outpost_session_81"), None);
    }

    #[test]
    fn csrf_is_taken_from_the_form_or_the_header() {
        let h = HeaderMap::new();
        assert!(csrf_ok(&h, b"a=1&csrf=abc", "abc"));
        assert!(!csrf_ok(&h, b"a=1&csrf=abd", "abc"));
        assert!(!csrf_ok(&h, b"a=1", "abc"));
        let mut h = HeaderMap::new();
        h.insert("x-csrf-token", HeaderValue::from_static("abc"));
        assert!(csrf_ok(&h, b"", "abc"));
    }

    #[test]
    fn host_and_origin_must_be_the_apps_own() {
        let allowed = vec!["hub.example.se".to_string(), "127.0.0.1:7878".to_string()];
        let mut h = HeaderMap::new();
        assert!(!host_ok(&h, &allowed));
        assert!(origin_ok(&h, &allowed), "no Origin sent: nothing to refuse");
        h.insert(header::HOST, HeaderValue::from_static("HUB.example.se"));
        assert!(host_ok(&h, &allowed));
        h.insert(header::HOST, HeaderValue::from_static("evil.example"));
        assert!(!host_ok(&h, &allowed));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!origin_ok(&h, &allowed));
    }
}
