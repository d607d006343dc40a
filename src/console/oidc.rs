//! Signing in with the organisation's identity provider (SPEC §11): the OpenID Connect
//! authorization code flow with PKCE (S256), `state` and `nonce`. What the flow needs between
//! the way out and the way back lives in a signed cookie for that one path, `SameSite=Lax`
//! because the way back is a top-level navigation from the provider's site. The ID token is
//! verified with the same signature and time checks as subject tokens, by the keys of the
//! `[[issuers]]` entry the console names; roles come from its claims.

use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::html::page_response;
use super::session::{self, Role, Session, SessionKey};
use super::{SignInConfig, set_cookie};
use crate::config::ConsoleOidc;
use crate::state::AppState;

const FLOW_COOKIE: &str = "tessera_console_oidc";
const FLOW_PATH: &str = "/console/callback";
/// A sign-in must come back from the provider within this.
const FLOW_SECS: i64 = 600;
/// The provider's endpoints are discovered again after this.
const ENDPOINTS_FOR: Duration = Duration::from_secs(600);
/// A failed discovery is answered from memory this long.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// The provider's endpoints, discovered on the first sign-in and kept `ENDPOINTS_FOR`.
pub struct Oidc {
    pub config: ConsoleOidc,
    redirect_uri: String,
    endpoints: tokio::sync::Mutex<Option<(Result<Endpoints, String>, Instant)>>,
}

#[derive(Clone)]
struct Endpoints {
    issuer_url: Url,
    authorization: Url,
    token: Url,
}

/// What the way back must match: kept in the flow cookie, signed.
#[derive(Serialize, Deserialize)]
struct Flow {
    state: String,
    nonce: String,
    verifier: String,
    iat: i64,
}

impl Oidc {
    pub fn new(config: ConsoleOidc, redirect_uri: String) -> Self {
        Self {
            config,
            redirect_uri,
            endpoints: tokio::sync::Mutex::new(None),
        }
    }

    async fn endpoints(&self, state: &AppState) -> Result<Endpoints, String> {
        let mut cached = self.endpoints.lock().await;
        match cached.as_ref() {
            Some((Ok(endpoints), at)) if at.elapsed() < ENDPOINTS_FOR => {
                return Ok(endpoints.clone());
            }
            // A failure is not asked again for a while: sign-in attempts do not become a
            // stream of requests to a provider that is down.
            Some((Err(why), at)) if at.elapsed() < RETRY_AFTER => return Err(why.clone()),
            _ => {}
        }
        let found = self.discover(state).await;
        *cached = Some((found.clone(), Instant::now()));
        found
    }

    async fn discover(&self, state: &AppState) -> Result<Endpoints, String> {
        let (issuer, name) = self.issuer(state)?;
        let provider = state
            .fetcher
            .provider(&issuer, &name)
            .await
            .map_err(|e| e.to_string())?;
        let named = |value: Option<String>, name: &str| {
            let value = value.ok_or_else(|| format!("the discovery document has no {name}"))?;
            crate::issuers::fetch::endpoint(&value, name).map_err(|e| e.to_string())
        };
        if provider
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|methods| !methods.iter().any(|m| m == "S256"))
        {
            return Err("the identity provider does not support PKCE with S256".into());
        }
        Ok(Endpoints {
            issuer_url: issuer,
            authorization: named(provider.authorization_endpoint, "authorization_endpoint")?,
            token: named(provider.token_endpoint, "token_endpoint")?,
        })
    }

    /// The configured issuer's URL and name (its `iss`), from the running configuration.
    fn issuer(&self, state: &AppState) -> Result<(Url, String), String> {
        let policy = state.policy.load();
        let issuer = policy
            .issuers
            .iter()
            .find(|i| i.config.id == self.config.issuer)
            .ok_or_else(|| format!("issuer \"{}\" is not configured", self.config.issuer))?;
        let name = issuer.config.issuer.clone();
        Ok((Url::parse(&name).map_err(|e| e.to_string())?, name))
    }
}

/// The way out: to the provider's authorization endpoint, with a new `state`, `nonce` and
/// PKCE verifier remembered in the flow cookie.
pub async fn start(
    req: HttpRequest,
    sign_in: web::Data<SignInConfig>,
    key: web::Data<SessionKey>,
    state: web::Data<AppState>,
) -> HttpResponse {
    // Started from the sign-in page only: another site starts no flow (nor replaces one).
    let Some(oidc) = sign_in
        .oidc
        .as_ref()
        .filter(|_| super::from_the_console(&req))
    else {
        return super::see_other("/console/sign-in");
    };
    let endpoints = match oidc.endpoints(&state).await {
        Ok(e) => e,
        Err(why) => {
            tracing::warn!(error = %why, "console sign-in: the identity provider's discovery failed");
            return refused(
                &sign_in,
                &key,
                HttpResponse::BadGateway(),
                "the identity provider cannot be reached now (see the log); try again later",
            );
        }
    };
    let secret = crate::ids::secret;
    let (Ok(state_value), Ok(nonce), Ok(verifier)) = (secret(), secret(), secret()) else {
        return super::html::no_randomness();
    };
    let flow = Flow {
        state: state_value,
        nonce,
        verifier,
        iat: state.clock.now().secs(),
    };
    let challenge =
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, flow.verifier.as_bytes()));
    let mut to = endpoints.authorization.clone();
    to.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.config.client_id)
        .append_pair("redirect_uri", &oidc.redirect_uri)
        .append_pair("scope", &oidc.config.scopes.join(" "))
        .append_pair("state", &flow.state)
        .append_pair("nonce", &flow.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut answer = super::see_other(to.as_str());
    let sealed = key.sealed(&serde_json::to_vec(&flow).unwrap_or_default());
    set_cookie(
        &mut answer,
        &key.cookie(FLOW_COOKIE, &sealed, FLOW_PATH, FLOW_SECS, "Lax"),
    );
    answer
}

#[derive(Deserialize)]
pub struct Back {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The way back: the code redeemed with the verifier, the ID token verified, the role found.
/// The answer is a page that moves on by itself, not a redirect: a redirect would continue the
/// provider's cross-site navigation, on which the `SameSite=Strict` session cookie is not sent.
pub async fn callback(
    req: HttpRequest,
    back: web::Query<Back>,
    sign_in: web::Data<SignInConfig>,
    key: web::Data<SessionKey>,
    state: web::Data<AppState>,
    failures: web::Data<super::SignInFailures>,
) -> HttpResponse {
    let Some(oidc) = &sign_in.oidc else {
        return super::see_other("/console/sign-in");
    };
    let now = state.clock.now().secs();
    let flow = session::cookie(&req, FLOW_COOKIE)
        .and_then(|v| key.unsealed(v))
        .and_then(|bytes| serde_json::from_slice::<Flow>(&bytes).ok())
        .filter(|f| (0..=FLOW_SECS).contains(&(now - f.iat)));
    let done = |mut answer: HttpResponse| {
        set_cookie(
            &mut answer,
            &key.cookie(FLOW_COOKIE, "", FLOW_PATH, 0, "Lax"),
        );
        answer
    };
    let unauthorized = |why: &str| done(refused(&sign_in, &key, HttpResponse::Unauthorized(), why));
    let Some(flow) = flow else {
        return unauthorized(
            "this sign-in was not started here, or took over 10 minutes; sign in again",
        );
    };
    let state_matches = back.state.as_deref().is_some_and(|s| {
        aws_lc_rs::constant_time::verify_slices_are_equal(s.as_bytes(), flow.state.as_bytes())
            .is_ok()
    });
    if !state_matches {
        return unauthorized("the answer's state is not this sign-in's; sign in again");
    }
    if let Some(error) = &back.error {
        let description = back
            .error_description
            .as_deref()
            .map(|d| format!(": {}", crate::text::shown(d, 200)))
            .unwrap_or_default();
        return unauthorized(&format!(
            "the identity provider refused: {}{description}",
            crate::text::shown(error, 64)
        ));
    }
    let Some(code) = back.code.as_deref() else {
        return unauthorized("the identity provider sent no code; sign in again");
    };
    // Anyone can get a flow cookie and send made-up codes with it: each would be a request to
    // the provider with the console's credentials. Refused ones count as failed sign-ins.
    if !failures.open(now) {
        return done(refused(
            &sign_in,
            &key,
            HttpResponse::TooManyRequests(),
            "too many failed sign-ins; wait a minute",
        ));
    }
    let person = match redeem(oidc, &state, code, &flow, now).await {
        Ok(person) => person,
        Err(Refusal::Upstream(why)) => {
            tracing::warn!(error = %why, "console sign-in: the identity provider failed");
            return done(refused(
                &sign_in,
                &key,
                HttpResponse::BadGateway(),
                "the identity provider cannot be reached now (see the log); try again later",
            ));
        }
        Err(Refusal::Denied(why)) => {
            failures.failed(now);
            tracing::warn!(why = %why, "console sign-in refused");
            return unauthorized(&why);
        }
    };
    let (who, role) = person;
    let Ok(session) = Session::new(&who, role, now) else {
        return done(super::html::no_randomness());
    };
    tracing::info!(who = %session.who, role = role.as_str(), "console sign-in");
    let body = r#"<p>Signed in. <a href="/console/exchanges">Continue to the console</a>.</p>"#;
    let mut answer = page_response(HttpResponse::Ok(), "Signed in", body, None);
    answer.headers_mut().insert(
        actix_web::http::header::HeaderName::from_static("refresh"),
        actix_web::http::header::HeaderValue::from_static("0;url=/console/exchanges"),
    );
    set_cookie(&mut answer, &session.cookie(&key));
    done(answer)
}

enum Refusal {
    /// The provider could not be asked: a 502.
    Upstream(String),
    /// The person may not sign in: why, shown to them.
    Denied(String),
}

async fn redeem(
    oidc: &Oidc,
    state: &AppState,
    code: &str,
    flow: &Flow,
    now: i64,
) -> Result<(String, Role), Refusal> {
    let endpoints = oidc.endpoints(state).await.map_err(Refusal::Upstream)?;
    let (status, answer) = state
        .fetcher
        .redeem_code(
            &endpoints.issuer_url,
            &endpoints.token,
            (&oidc.config.client_id, oidc.config.client_secret.as_deref()),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &oidc.redirect_uri),
                ("code_verifier", &flow.verifier),
            ],
        )
        .await
        .map_err(|e| Refusal::Upstream(e.to_string()))?;
    if !status.is_success() {
        let error = answer.get("error").and_then(Value::as_str).unwrap_or("?");
        if status.is_server_error() {
            return Err(Refusal::Upstream(format!(
                "the token endpoint answered {status}"
            )));
        }
        return Err(Refusal::Denied(format!(
            "the identity provider did not take the code ({}); sign in again",
            crate::text::shown(error, 64)
        )));
    }
    let id_token = answer
        .get("id_token")
        .and_then(Value::as_str)
        .ok_or_else(|| Refusal::Denied("the identity provider sent no ID token".into()))?;
    let claims = verify_id_token(oidc, state, id_token, &flow.nonce, now)
        .await
        .map_err(Refusal::Denied)?;
    person(&oidc.config, &claims).map_err(Refusal::Denied)
}

/// The ID token's claims, once its signature verifies with the console issuer's keys (as a
/// subject token's would), its times hold with that issuer's leeway, its audience is this
/// client and its nonce is this sign-in's.
async fn verify_id_token(
    oidc: &Oidc,
    state: &AppState,
    token: &str,
    nonce: &str,
    now: i64,
) -> Result<Map<String, Value>, String> {
    let parsed = crate::tokens::unverified::parse(token)
        .map_err(|why| format!("the ID token is not a JWT: {why}"))?;
    let policy = state.policy.load();
    let issuer = crate::tokens::verify::signed_by_issuer(&parsed, &policy.issuers, "ID token")
        .await
        .map_err(|e| e.description)?;
    if issuer.config.id != oidc.config.issuer {
        return Err(format!(
            "the ID token is from issuer \"{}\", not the console's",
            issuer.config.id
        ));
    }
    let claims = parsed.claims;
    crate::tokens::verify::check_times(&issuer.config, &claims, now)
        .map_err(|why| format!("the ID token {why}"))?;
    issued_to(&claims, &oidc.config.client_id)?;
    let same_nonce = claims
        .get("nonce")
        .and_then(Value::as_str)
        .is_some_and(|n| {
            aws_lc_rs::constant_time::verify_slices_are_equal(n.as_bytes(), nonce.as_bytes())
                .is_ok()
        });
    if !same_nonce {
        return Err("the ID token's nonce is not this sign-in's".into());
    }
    if claims
        .get("sub")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("the ID token has no sub".into());
    }
    Ok(claims)
}

/// OpenID Connect Core §3.1.3.7: `aud` names this client; with other audiences beside it,
/// `azp` must be this client; an `azp` naming another party is refused whatever.
fn issued_to(claims: &Map<String, Value>, client_id: &str) -> Result<(), String> {
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&client_id) {
        return Err("the ID token was not issued to the console (its aud)".into());
    }
    let azp = claims.get("azp").and_then(Value::as_str);
    if azp.is_some_and(|a| a != client_id) || (audiences.len() > 1 && azp.is_none()) {
        return Err("the ID token was issued to another party (its azp)".into());
    }
    Ok(())
}

/// Who signed in and their role: `operator` when a value of the roles claim is among
/// `operators`, else `auditor` when among `auditors`; no role, no sign-in. Who they are is
/// their `sub` at the console's issuer, which nobody chooses for themselves, after the name
/// shown (an email the provider says is unverified is no name): "alice@example.com ·
/// corp-sso:248289761001". No admin-token sign-in, nor another person, can look the same.
fn person(config: &ConsoleOidc, claims: &Map<String, Value>) -> Result<(String, Role), String> {
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let unverified_email =
        config.name_claim == "email" && claims.get("email_verified") == Some(&Value::Bool(false));
    let name = claim_at(claims, &config.name_claim)
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty() && !unverified_email && *n != sub)
        .map(|n| format!("{} · ", crate::text::shown(n, 128)))
        .unwrap_or_default();
    let name = format!(
        "{name}{}:{}",
        crate::text::shown(&config.issuer, 64),
        crate::text::shown(sub, 128)
    );
    let values: Vec<&str> = match claim_at(claims, &config.roles_claim) {
        Some(Value::String(v)) => vec![v.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let holds = |set: &[String]| values.iter().any(|v| set.iter().any(|s| s == v));
    let role = if holds(&config.operators) {
        Role::Operator
    } else if holds(&config.auditors) {
        Role::Auditor
    } else {
        return Err(format!(
            "{name} signed in at the identity provider, but holds no console role (claim \"{}\")",
            config.roles_claim
        ));
    };
    Ok((name, role))
}

/// A claim by a dotted path through objects (`realm_access.roles`).
fn claim_at<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut at = claims.get(parts.next()?)?;
    for part in parts {
        at = at.as_object()?.get(part)?;
    }
    Some(at)
}

/// The sign-in page again, saying why.
fn refused(
    sign_in: &SignInConfig,
    key: &SessionKey,
    builder: actix_web::HttpResponseBuilder,
    why: &str,
) -> HttpResponse {
    super::sign_in_page(sign_in, key, None, builder, Some(why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> ConsoleOidc {
        ConsoleOidc {
            issuer: "corp".into(),
            client_id: "console".into(),
            client_secret: None,
            scopes: vec!["openid".into()],
            roles_claim: "realm_access.roles".into(),
            auditors: vec!["audit".into()],
            operators: vec!["ops".into()],
            name_claim: "email".into(),
        }
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("an object")
    }

    #[test]
    fn the_role_is_the_highest_a_claim_value_names() {
        let c = config();
        let with = |roles: Value| {
            person(
                &c,
                &claims(json!({"sub": "u1", "email": "a@x", "realm_access": {"roles": roles}})),
            )
        };
        let named = || "a@x · corp:u1".to_string();
        assert_eq!(with(json!(["audit", "ops"])), Ok((named(), Role::Operator)));
        assert_eq!(with(json!(["audit"])), Ok((named(), Role::Auditor)));
        assert_eq!(with(json!("audit")), Ok((named(), Role::Auditor)));
        assert!(with(json!(["Audit", "opsx"])).is_err(), "exact values only");
        assert!(with(json!({"audit": true})).is_err());
        let ops = json!({"roles": ["ops"]});
        let no_email = person(&c, &claims(json!({"sub": "u1", "realm_access": ops})));
        assert_eq!(no_email, Ok(("corp:u1".into(), Role::Operator)));
        let unverified = person(
            &c,
            &claims(
                json!({"sub": "u1", "email": "admin token", "email_verified": false, "realm_access": ops}),
            ),
        );
        assert_eq!(unverified, Ok(("corp:u1".into(), Role::Operator)));
    }

    #[test]
    fn an_id_token_must_be_issued_to_the_console() {
        let check = |v: Value| issued_to(&claims(v), "console");
        assert!(check(json!({"aud": "console"})).is_ok());
        assert!(check(json!({"aud": ["console"]})).is_ok());
        assert!(check(json!({"aud": ["console", "api"], "azp": "console"})).is_ok());
        assert!(
            check(json!({"aud": ["console", "api"]})).is_err(),
            "azp needed"
        );
        assert!(check(json!({"aud": ["console", "api"], "azp": "api"})).is_err());
        assert!(check(json!({"aud": "console", "azp": "other"})).is_err());
        assert!(check(json!({"aud": "api"})).is_err());
        assert!(check(json!({})).is_err());
    }
}
