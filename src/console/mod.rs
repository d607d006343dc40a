//! The console (SPEC §11): the audit trail in a browser, on the admin listener at `/console/`.
//! Server-rendered HTML with no script at all, its one stylesheet embedded in the binary, every
//! answer under a strict Content-Security-Policy. Records hold text an attacker chose (client
//! ids, user agents, reasons): everything shown goes through `html::esc`.
//!
//! Signing in: with the organisation's identity provider (`oidc`, roles from the ID token) or
//! the admin bearer token (an operator). Sessions are signed cookies (`session`); every form
//! posted carries the session's CSRF token (`refused_form`).

mod actions;
mod audit;
mod export;
mod html;
mod oidc;
mod overview;
mod revoke;
mod rules;
mod session;
mod try_it;
mod verify;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

pub use session::SessionKey;
use session::{Role, Session};
pub use verify::Verification;

use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console", web::get().to(home))
        .route("/console/", web::get().to(home))
        .route("/console/console.css", web::get().to(stylesheet))
        .route("/console/sign-in", web::get().to(sign_in_form))
        .route("/console/sign-in", web::post().to(sign_in))
        .route("/console/sign-in/oidc", web::get().to(oidc::start))
        .route("/console/callback", web::get().to(oidc::callback))
        .route("/console/sign-out", web::post().to(sign_out))
        .route("/console/overview", web::get().to(overview::page))
        .route("/console/exchanges", web::get().to(audit::search))
        .route("/console/exchanges.csv", web::get().to(export::csv))
        .route("/console/exchanges.jsonl", web::get().to(export::jsonl))
        .route("/console/exchanges/{id}", web::get().to(audit::detail))
        .route(
            "/console/exchanges/{id}/revoke",
            web::post().to(revoke::revoke),
        )
        .route("/console/activity", web::get().to(revoke::activity))
        .route("/console/rules", web::get().to(rules::page))
        .route("/console/reload", web::post().to(rules::reload))
        .route("/console/try", web::get().to(try_it::page))
        .route("/console/try", web::post().to(try_it::run))
        .route("/console/verify", web::get().to(verify::page))
        .route("/console/verify", web::post().to(verify::start));
}

/// What every console answer carries: no script may run, nothing is framed, nothing cached,
/// no referrer leaks a filter.
pub(crate) fn secured(
    mut builder: actix_web::HttpResponseBuilder,
) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    builder
}

/// How people sign in, as configured at start (`[console]`).
pub struct SignInConfig {
    pub admin_token: bool,
    oidc: Option<oidc::Oidc>,
}

impl SignInConfig {
    pub fn new(config: &crate::config::ConsoleConfig) -> Self {
        Self {
            admin_token: config.admin_token_sign_in,
            oidc: config
                .oidc
                .clone()
                .zip(config.redirect_uri())
                .map(|(c, redirect)| oidc::Oidc::new(c, redirect)),
        }
    }
}

/// Adds a `Set-Cookie` header (the values are made here, never from a request).
fn set_cookie(answer: &mut HttpResponse, cookie: &str) {
    if let Ok(value) = header::HeaderValue::from_str(cookie) {
        answer.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn see_other(to: &str) -> HttpResponse {
    secured(HttpResponse::SeeOther())
        .insert_header((header::LOCATION, to))
        .finish()
}

async fn home() -> HttpResponse {
    see_other("/console/overview")
}

async fn stylesheet() -> HttpResponse {
    secured(HttpResponse::Ok())
        .content_type("text/css; charset=utf-8")
        .body(include_str!("console.css"))
}

/// A request's signed-in session. A handler that takes it answers signed-in people only;
/// anyone else is sent to the sign-in page.
pub(crate) struct SignedIn(pub Session);

/// No session: the answer is the way to the sign-in page.
#[derive(Debug)]
pub(crate) struct NotSignedIn;

impl std::fmt::Display for NotSignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not signed in")
    }
}

impl actix_web::ResponseError for NotSignedIn {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::SEE_OTHER
    }

    fn error_response(&self) -> HttpResponse {
        see_other("/console/sign-in")
    }
}

impl actix_web::FromRequest for SignedIn {
    type Error = NotSignedIn;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let key = req.app_data::<web::Data<SessionKey>>();
        let state = req.app_data::<web::Data<AppState>>();
        let found = key
            .zip(state)
            .filter(|_| from_the_console(req))
            .and_then(|(key, state)| Session::of(req, key, state.clock.now().secs()));
        std::future::ready(found.map(SignedIn).ok_or(NotSignedIn))
    }
}

/// Why a posted form may not go on, as the page that says so: it must carry the session's CSRF
/// token, and an action `operators_only` names ("revoking") needs the operator role.
pub(crate) fn refused_form(
    session: &Session,
    key: &SessionKey,
    csrf: &str,
    operators_only: Option<&str>,
) -> Option<HttpResponse> {
    if !session.csrf_matches(key, csrf) {
        return Some(html::forbidden(
            "the form is not this session's; reload the page and try again",
        ));
    }
    match operators_only {
        Some(action) if session.role != Role::Operator => Some(html::forbidden(&format!(
            "{action} needs the operator role"
        ))),
        _ => None,
    }
}

/// Whether the browser says the request comes from the console's own pages or from the person
/// (a bookmark, the address bar): a page of another site, or of another port of this host
/// (`SameSite` does not tell ports apart), never acts with the session. Browsers that send no
/// `Sec-Fetch-Site` are judged by `SameSite=Strict` alone.
pub(crate) fn from_the_console(req: &HttpRequest) -> bool {
    req.headers()
        .get("sec-fetch-site")
        .is_none_or(|site| matches!(site.as_bytes(), b"same-origin" | b"none"))
}

/// Failed sign-ins this process takes in a minute; past them, sign-in is refused until the
/// minute is over, so the admin token cannot be guessed at speed, nor made-up codes sent to
/// the identity provider at will.
const FAILED_SIGN_INS_PER_MINUTE: u32 = 10;

/// The failed sign-ins of the current minute: (the minute, how many).
#[derive(Default)]
pub struct SignInFailures(std::sync::Mutex<(i64, u32)>);

impl SignInFailures {
    /// Whether another attempt may be judged now.
    pub(crate) fn open(&self, now: i64) -> bool {
        self.0
            .lock()
            .is_ok_and(|w| w.0 != now / 60 || w.1 < FAILED_SIGN_INS_PER_MINUTE)
    }

    pub(crate) fn failed(&self, now: i64) {
        if let Ok(mut w) = self.0.lock() {
            if w.0 != now / 60 {
                *w = (now / 60, 0);
            }
            w.1 += 1;
        }
    }
}

async fn sign_in_form(
    req: HttpRequest,
    config: web::Data<SignInConfig>,
    key: web::Data<SessionKey>,
) -> HttpResponse {
    sign_in_page(&config, &key, Some(&req), HttpResponse::Ok(), None)
}

/// The sign-in page, with the ways the configuration allows, and why the last try failed.
/// The admin-token form needs the request, for its form token.
fn sign_in_page(
    config: &SignInConfig,
    key: &SessionKey,
    req: Option<&HttpRequest>,
    builder: actix_web::HttpResponseBuilder,
    refused: Option<&str>,
) -> HttpResponse {
    let form_token = match req.filter(|_| config.admin_token) {
        None => None,
        Some(req) => match session::form_token(req, key) {
            Ok(token) => Some(token),
            Err(_) => return html::no_randomness(),
        },
    };
    let provider = config.oidc.as_ref().map(|o| o.config.issuer.as_str());
    let body = html::sign_in(
        provider,
        form_token.as_ref().map(|t| t.value.as_str()),
        refused,
    );
    let mut answer = html::page_response(builder, "Sign in", &body, None);
    if let Some(cookie) = form_token.and_then(|t| t.cookie) {
        set_cookie(&mut answer, &cookie);
    }
    answer
}

#[derive(serde::Deserialize)]
struct SignIn {
    admin_token: String,
    form_token: String,
}

async fn sign_in(
    req: HttpRequest,
    form: web::Form<SignIn>,
    key: web::Data<SessionKey>,
    state: web::Data<AppState>,
    failures: web::Data<SignInFailures>,
    config: web::Data<SignInConfig>,
) -> HttpResponse {
    let now = state.clock.now().secs();
    let refused = |status: actix_web::http::StatusCode, why: &str| {
        sign_in_page(
            &config,
            &key,
            Some(&req),
            HttpResponse::build(status),
            Some(why),
        )
    };
    let unauthorized = actix_web::http::StatusCode::UNAUTHORIZED;
    if !failures.open(now) {
        return refused(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "too many failed sign-ins; wait a minute",
        );
    }
    if !from_the_console(&req) || !session::form_token_matches(&req, &form.form_token) {
        return refused(unauthorized, "the form expired; sign in again");
    }
    let Some(expected) = state.admin_token_sha256.filter(|_| config.admin_token) else {
        return refused(
            unauthorized,
            "sign-in with the admin token is not configured",
        );
    };
    let presented =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, form.admin_token.as_bytes());
    if aws_lc_rs::constant_time::verify_slices_are_equal(presented.as_ref(), &expected).is_err() {
        failures.failed(now);
        crate::telemetry::repeated::warn("console sign-in with a wrong admin token", "");
        return refused(unauthorized, "that is not the admin token");
    }
    let Ok(session) = Session::new("admin token", Role::Operator, now) else {
        return html::no_randomness();
    };
    tracing::info!(who = %session.who, role = session.role.as_str(), "console sign-in");
    let mut answer = see_other("/console/exchanges");
    set_cookie(&mut answer, &session.cookie(&key));
    set_cookie(&mut answer, &session::expired_form_token(&key));
    answer
}

#[derive(serde::Deserialize)]
struct SignOut {
    csrf: String,
}

async fn sign_out(
    SignedIn(session): SignedIn,
    form: web::Form<SignOut>,
    key: web::Data<SessionKey>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Some(refused) = refused_form(&session, &key, &form.csrf, None) {
        return refused;
    }
    session.end(&key, state.clock.now().secs());
    tracing::info!(who = %session.who, "console sign-out");
    let mut answer = see_other("/console/sign-in");
    set_cookie(&mut answer, &session::expired(&key));
    answer
}
