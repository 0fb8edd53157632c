//! Who may talk to the app: a browser on this laptop that came in through
//! `outpost ui`'s one-time link (DESIGN.md §8).
//!
//! Every request passes [`guard`]:
//! 1. the `Host` header must be exactly `127.0.0.1:PORT` — a page on
//!    another site that rebinds its DNS name to 127.0.0.1 still sends its
//!    own name, so it is refused (DNS rebinding);
//! 2. apart from `/launch` and the embedded assets, a live session cookie
//!    is needed; a session ends after the configured idle time;
//! 3. every POST carries the session's CSRF token (form field `csrf`, or
//!    the `x-csrf-token` header for the script's JSON calls) and, when the
//!    browser sends one, an `Origin` of this app.
//!
//! `/launch?t=TOKEN` redeems a launch token made by `outpost ui`
//! (`outpost_store::ui`) once and sets the session cookie: HttpOnly (no
//! script reads it), SameSite=Strict (no other site's page sends it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::App;
use crate::i18n::Lang;

/// What a handler knows about the session it serves.
#[derive(Debug, Clone)]
pub struct Sess {
    pub id: String,
    pub csrf: String,
    pub lang: Lang,
}

#[derive(Debug)]
struct Entry {
    csrf: String,
    lang: Lang,
    last_seen: Instant,
}

/// Live sessions, in memory only: a daemon restart signs everyone out,
/// and nothing about a session is ever written to disk.
#[derive(Debug)]
pub struct Sessions {
    idle: Duration,
    map: Mutex<HashMap<String, Entry>>,
}

fn random_hex() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Sessions {
    pub fn new(idle: Duration) -> Sessions {
        Sessions {
            idle,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn create(&self, lang: Lang) -> String {
        let id = random_hex();
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, e| now.duration_since(e.last_seen) < self.idle);
        map.insert(
            id.clone(),
            Entry {
                csrf: random_hex(),
                lang,
                last_seen: now,
            },
        );
        id
    }

    /// The live session `id`, touched; an idle one is dropped.
    pub fn touch(&self, id: &str) -> Option<Sess> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let alive = map
            .get(id)
            .is_some_and(|e| now.duration_since(e.last_seen) < self.idle);
        if !alive {
            map.remove(id);
            return None;
        }
        let e = map.get_mut(id)?;
        e.last_seen = now;
        Some(Sess {
            id: id.to_string(),
            csrf: e.csrf.clone(),
            lang: e.lang,
        })
    }

    pub fn set_lang(&self, id: &str, lang: Lang) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(id) {
            e.lang = lang;
        }
    }
}

/// The cookie's name carries the port: cookies are per host, not per port,
/// so two laptops' apps on one machine (the demo) must not share one.
pub fn cookie_name(port: u16) -> String {
    format!("outpost_session_{port}")
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub fn session_cookie(port: u16, id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Strict",
        cookie_name(port)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Headers every answer carries: nothing from elsewhere may load or frame
/// the app, nothing is cached (records on a shared laptop), and no
/// address (with a launch token) leaks in a Referer.
fn harden(resp: &mut Response) {
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

/// Largest POST body read (a visit form is a few kB; a note at most 2,000
/// characters).
const MAX_POST: usize = 256 * 1024;

pub async fn guard(State(app): State<std::sync::Arc<App>>, req: Request, next: Next) -> Response {
    let mut resp = check(&app, req, next).await;
    harden(&mut resp);
    resp
}

async fn check(app: &App, req: Request, next: Next) -> Response {
    let host_ok = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h == app.host);
    if !host_ok {
        return crate::pages::refused(
            app.lang,
            StatusCode::MISDIRECTED_REQUEST,
            "Fel adress",
            "Wrong address",
            "Appen svarar bara på adressen som `outpost ui` öppnar.",
            "The app answers only at the address `outpost ui` opens.",
        );
    }
    let path = req.uri().path().to_string();
    if path == "/launch" || path.starts_with("/assets/") {
        return next.run(req).await;
    }
    let sess =
        cookie_value(req.headers(), &cookie_name(app.port)).and_then(|id| app.sessions.touch(&id));
    let Some(sess) = sess else {
        return crate::pages::refused(
            app.lang,
            StatusCode::UNAUTHORIZED,
            "Inte inloggad",
            "Not signed in",
            "Öppna appen med kommandot `outpost ui` (eller genvägen på skrivbordet). Efter en stunds inaktivitet stängs sidan av säkerhetsskäl.",
            "Open the app with `outpost ui` (or the desktop shortcut). After a while without use the page closes, for safety.",
        );
    };
    let (mut parts, body) = req.into_parts();
    if parts.method == Method::POST {
        let origin_ok = parts
            .headers
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_none_or(|o| o == app.origin);
        let bytes = match axum::body::to_bytes(body, MAX_POST).await {
            Ok(b) => b,
            Err(_) => {
                return (StatusCode::PAYLOAD_TOO_LARGE, "too large").into_response();
            }
        };
        let header_token = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let token = header_token.or_else(|| {
            crate::form::first(&crate::form::pairs(&bytes), "csrf").map(str::to_string)
        });
        if !origin_ok || token.as_deref() != Some(sess.csrf.as_str()) {
            return crate::pages::refused(
                sess.lang,
                StatusCode::FORBIDDEN,
                "Sidan var för gammal",
                "The page was out of date",
                "Inget sparades. Gå tillbaka, ladda om sidan och försök igen.",
                "Nothing was saved. Go back, reload the page and try again.",
            );
        }
        parts.extensions.insert(sess);
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    }
    parts.extensions.insert(sess);
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_session_ends() {
        let s = Sessions::new(Duration::ZERO);
        let id = s.create(Lang::Sv);
        assert!(s.touch(&id).is_none());
        let s = Sessions::new(Duration::from_secs(3600));
        let id = s.create(Lang::En);
        assert_eq!(s.touch(&id).unwrap().lang, Lang::En);
        assert!(s.touch("nope").is_none());
    }

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
}
