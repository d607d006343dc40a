//! "Try it" (SPEC §11): a request dry-run against the running rules and keys, shown as
//! `tessera explain` shows it: each rule's verdict, the result, the denial explained, and the
//! token that would be minted. The subject is a token (verified as `/token` would) or claims
//! (taken as given, as `tessera test` cases are). It is posted, never in a URL; nothing is
//! minted, stored or logged, and a token is not sent back in the page.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::actions::{self, Action};
use super::html::{Viewer, esc, esc_lines, page_response};
use super::{SessionKey, SignedIn};
use crate::explain::{self, Request};
use crate::oauth::{Resource, Scopes, TokenType};
use crate::rules::cases::TokenClaims;
use crate::state::AppState;

/// Largest claims text taken, as JSON.
const MAX_CLAIMS_BYTES: usize = 16 * 1024;

#[derive(Deserialize, Default)]
pub struct Form {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    client: String,
    /// `token` or `claims`.
    #[serde(default)]
    subject_from: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    subject_token_type: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    claims: String,
    #[serde(default)]
    requested_token_type: String,
    #[serde(default)]
    audience: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    request_context: String,
}

/// What a link may fill in beforehand (a denied record's "try this request"): never a token.
#[derive(Deserialize, Default)]
pub struct Prefill {
    client: Option<String>,
    issuer: Option<String>,
    sub: Option<String>,
    requested_token_type: Option<String>,
    audience: Option<String>,
    resource: Option<String>,
    scope: Option<String>,
}

pub async fn page(
    SignedIn(session): SignedIn,
    prefill: web::Query<Prefill>,
    key: web::Data<SessionKey>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let viewer = Viewer {
        session: &session,
        key: &key,
    };
    let p = prefill.into_inner();
    let claims = serde_json::json!({
        "sub": p.sub.as_deref().unwrap_or("alice"),
        "scope": p.scope.as_deref().unwrap_or("inventory:read"),
    });
    let form = Form {
        subject_from: "claims".into(),
        claims: claims.to_string(),
        client: p.client.unwrap_or_default(),
        issuer: p.issuer.unwrap_or_default(),
        requested_token_type: p.requested_token_type.unwrap_or_default(),
        audience: p.audience.unwrap_or_default(),
        resource: p.resource.unwrap_or_default(),
        scope: p.scope.unwrap_or_default(),
        ..Form::default()
    };
    let body = form_html(&state, &form, &session.csrf(&key), None);
    page_response(HttpResponse::Ok(), "Try a request", &body, Some(&viewer))
}

pub async fn run(
    SignedIn(session): SignedIn,
    form: web::Form<Form>,
    key: web::Data<SessionKey>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Some(refused) = super::refused_form(&session, &key, &form.csrf, None) {
        return refused;
    }
    let viewer = Viewer {
        session: &session,
        key: &key,
    };
    let mut explained = match dry_run(&state, &form).await {
        Ok(text) => text,
        Err(why) => format!("the request cannot be tried: {why}"),
    };
    // A pasted token is checked against the issuers (an opaque one with this server's
    // introspection credentials): who did so is recorded, with the token's hash, never the
    // token. Without the record, no answer.
    if form.subject_from == "token" && !form.token.trim().is_empty() {
        let hash =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, form.token.trim().as_bytes());
        let now = state.clock.now();
        let action = Action::by(
            &session,
            now,
            "try",
            crate::text::shown(
                &format!(
                    "client {}, a token with SHA-256 {}",
                    form.client.trim(),
                    crate::hex(hash.as_ref())
                ),
                300,
            ),
            crate::text::shown(
                explained
                    .lines()
                    .find(|l| l.starts_with("result: "))
                    .unwrap_or("not tried"),
                300,
            ),
        );
        let recorded = state
            .store
            .blocking_write(move |c| actions::record(c, &action))
            .await;
        if let Err(e) = recorded {
            tracing::error!(error = %crate::error::chain(&e), "a console try could not be recorded");
            explained =
                "the store cannot record this try now, so it is not shown; try again later".into();
        }
    }
    // A token is never sent back: the form shows it empty again.
    let shown = Form {
        token: String::new(),
        csrf: String::new(),
        ..form.into_inner()
    };
    let body = form_html(&state, &shown, &session.csrf(&key), Some(&explained));
    page_response(HttpResponse::Ok(), "Try a request", &body, Some(&viewer))
}

async fn dry_run(state: &AppState, form: &Form) -> Result<String, String> {
    let words =
        |text: &str| -> Vec<String> { text.split_whitespace().map(str::to_string).collect() };
    let resources = words(&form.resource)
        .into_iter()
        .map(|r| Resource::parse(&r).ok_or(format!("resource \"{r}\" is not an absolute URI")))
        .collect::<Result<Vec<_>, _>>()?;
    let scopes = match form.scope.trim() {
        "" => None,
        text => Some(Scopes::parse(text).map_err(|e| format!("\"{}\" is not a scope", e.0))?),
    };
    let type_of = |text: &str, default: TokenType| match text.trim() {
        "" => Ok(default),
        t => TokenType::from_arg(t),
    };
    let requested_token_type = type_of(&form.requested_token_type, TokenType::AccessToken)?;
    let context = Some(form.request_context.trim())
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let mut request = Request {
        client: form.client.trim().to_string(),
        assertion: None,
        subject_token: String::new(),
        subject_token_type: type_of(&form.subject_token_type, TokenType::AccessToken)?,
        actor_token: None,
        audiences: words(&form.audience),
        resources,
        scopes,
        requested_token_type,
        request_context: context,
        request_details: None,
    };
    let policy = state.policy.load_full();
    let mut out = Vec::new();
    if form.subject_from == "token" {
        if form.token.trim().is_empty() {
            return Err("paste a subject token, or give claims".into());
        }
        request.subject_token = form.token.trim().to_string();
        explain::explain_with(&policy.config, &state.keys, &policy, &request, &mut out).await?;
    } else {
        if form.claims.len() > MAX_CLAIMS_BYTES {
            return Err(format!(
                "the claims are longer than {MAX_CLAIMS_BYTES} bytes"
            ));
        }
        let claims = match serde_json::from_str(&form.claims) {
            Ok(serde_json::Value::Object(claims)) => claims,
            _ => return Err("the claims must be a JSON object, e.g. {\"sub\": \"alice\"}".into()),
        };
        let subject = TokenClaims {
            issuer: form.issuer.trim().to_string(),
            claims,
        };
        explain::explain_claims(
            &policy.config,
            &state.keys,
            &policy,
            &request,
            &subject,
            &mut out,
        )?;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn form_html(state: &AppState, form: &Form, csrf: &str, explained: Option<&str>) -> String {
    let policy = state.policy.load();
    let options = |names: Vec<String>, chosen: &str| -> String {
        names
            .iter()
            .map(|n| {
                format!(
                    r#"<option value="{v}"{sel}>{v}</option>"#,
                    v = esc(n),
                    sel = if n == chosen { " selected" } else { "" }
                )
            })
            .collect()
    };
    let sorted = |mut names: Vec<String>| {
        names.sort();
        names
    };
    // In order of id already.
    let clients = options(
        policy
            .clients
            .configs()
            .iter()
            .map(|c| c.id.clone())
            .collect(),
        &form.client,
    );
    let issuers = options(
        sorted(policy.issuers.iter().map(|i| i.config.id.clone()).collect()),
        &form.issuer,
    );
    let types =
        |chosen: &str, list: &[&str]| options(list.iter().map(|s| s.to_string()).collect(), chosen);
    let checked = |from: &str| {
        if form.subject_from == from || (from == "claims" && form.subject_from != "token") {
            " checked"
        } else {
            ""
        }
    };
    let result = explained
        .map(|text| {
            format!(
                r#"<h2>Decision</h2><pre class="explained" id="decision">{}</pre>"#,
                esc_lines(text)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<p>A dry run against the running rules and keys, as <code>tessera explain</code>: nothing is minted or recorded, and a pasted token is neither stored nor logged.</p>
<form method="post" action="/console/try" class="try">
<input type="hidden" name="csrf" value="{csrf}">
<label>Client <select name="client">{clients}</select></label>
<fieldset><legend>Subject</legend>
<label><input type="radio" name="subject_from" value="claims"{claims_checked}> Claims, taken as verified, from issuer <select name="issuer">{issuers}</select></label>
<textarea name="claims" rows="5">{claims}</textarea>
<label><input type="radio" name="subject_from" value="token"{token_checked}> A token, verified as /token would, of type <select name="subject_token_type">{subject_types}</select></label>
<textarea name="token" rows="4" autocomplete="off"></textarea>
</fieldset>
<label>Requested token type <select name="requested_token_type">{requested_types}</select></label>
<label>Audience (space-separated) <input name="audience" value="{audience}"></label>
<label>Resource (space-separated) <input name="resource" value="{resource}"></label>
<label>Scope <input name="scope" value="{scope}"></label>
<label>request_context (Txn-Token requests, JSON) <input name="request_context" value="{context}"></label>
<button>Try it</button></form>{result}"#,
        csrf = esc(csrf),
        claims_checked = checked("claims"),
        token_checked = checked("token"),
        claims = esc(&form.claims),
        subject_types = types(
            &form.subject_token_type,
            &["access_token", "jwt", "id_token", "txn_token"]
        ),
        requested_types = types(
            &form.requested_token_type,
            &["access_token", "jwt", "txn_token", "id-jag"]
        ),
        audience = esc(&form.audience),
        resource = esc(&form.resource),
        scope = esc(&form.scope),
        context = esc(&form.request_context),
    )
}
