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
//! The checks themselves (Host, Origin, CSRF, cookies, headers) are
//! `outpost_web_kit`'s, shared with the hub's dashboard; the sessions here
//! are the laptop's own (in memory).
//!
//! `/launch?t=TOKEN` redeems a launch token made by `outpost ui`
//! (`outpost_store::ui`) once and sets the session cookie: HttpOnly (no
//! script reads it), SameSite=Strict (no other site's page sends it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
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
    outpost_web_kit::random_secret()
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

pub fn session_cookie(port: u16, id: &str) -> HeaderValue {
    outpost_web_kit::session_cookie(&cookie_name(port), id, "/", false)
}

/// Largest POST body read (a visit form is a few kB; a note at most 2,000
/// characters).
const MAX_POST: usize = 256 * 1024;

pub async fn guard(State(app): State<std::sync::Arc<App>>, req: Request, next: Next) -> Response {
    let mut resp = check(&app, req, next).await;
    outpost_web_kit::harden(&mut resp);
    resp
}

async fn check(app: &App, req: Request, next: Next) -> Response {
    if !outpost_web_kit::host_ok(req.headers(), std::slice::from_ref(&app.host)) {
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
    let sess = outpost_web_kit::cookie_value(req.headers(), &cookie_name(app.port))
        .and_then(|id| app.sessions.touch(&id));
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
        let origin_ok =
            outpost_web_kit::origin_ok(&parts.headers, std::slice::from_ref(&app.origin));
        let bytes = match axum::body::to_bytes(body, MAX_POST).await {
            Ok(b) => b,
            Err(_) => {
                return (StatusCode::PAYLOAD_TOO_LARGE, "too large").into_response();
            }
        };
        if !origin_ok || !outpost_web_kit::csrf_ok(&parts.headers, &bytes, &sess.csrf) {
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
}
