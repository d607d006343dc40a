//! The running configuration's trust, read-only (SPEC §11): issuers with their keys' status,
//! clients (never a secret or its hash) and rules in file order.

use actix_web::{HttpResponse, web};

use super::actions::{self, Action};
use super::html::{Viewer, esc, page_response};
use super::session::Role;
use super::{SessionKey, SignedIn};
use crate::config::{ClientAuth, KeySource, RuleConfig};
use crate::state::AppState;

pub async fn page(
    SignedIn(session): SignedIn,
    key: web::Data<SessionKey>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let viewer = Viewer {
        session: &session,
        key: &key,
    };
    trust_page(&state, &viewer, HttpResponse::Ok(), "")
}

#[derive(serde::Deserialize)]
pub struct Reload {
    csrf: String,
}

/// Operators reload the configuration file, as SIGHUP does; the result is shown and recorded
/// with who asked.
pub async fn reload(
    SignedIn(session): SignedIn,
    form: web::Form<Reload>,
    key: web::Data<SessionKey>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Some(refused) = super::refused_form(&session, &key, &form.csrf, Some("reloading")) {
        return refused;
    }
    let viewer = Viewer {
        session: &session,
        key: &key,
    };
    let reloaded = crate::reload::reload(&state).await;
    state.metrics.reload(reloaded.is_ok());
    // What the page and the record say names where the file is wrong, never what it holds
    // there: a parser's excerpt or a quoted value can be a secret, and auditors read both.
    let (result, class) = match &reloaded {
        Ok(()) => ("reloaded".to_string(), "granted"),
        Err(e) => {
            tracing::error!(who = %session.who, error = %crate::error::chain(e), "console reload refused; the previous configuration keeps serving");
            let at = match e {
                crate::reload::Error::Config(c) if !c.key.is_empty() => format!("at {}", c.key),
                crate::reload::Error::Config(_) => "(the file cannot be read or parsed)".into(),
                crate::reload::Error::Files(_) => "(a file it names cannot be used)".into(),
            };
            (
                format!(
                    "refused {}; the previous configuration keeps serving (the whole message is in the server log)",
                    crate::text::shown(&at, 200)
                ),
                "denied",
            )
        }
    };
    tracing::info!(who = %session.who, result = %result, "console reload");
    let now = state.clock.now();
    let action = Action::by(
        &session,
        now,
        "reload",
        state.config_file.display().to_string(),
        crate::text::shown(&result, 1000),
    );
    let recorded = state
        .store
        .blocking_write(move |c| actions::record(c, &action))
        .await;
    let mut note = format!(
        r#"<p class="{class}" id="reload-result">Reload: {}</p>"#,
        esc(&result)
    );
    let status = match recorded {
        Ok(()) => HttpResponse::Ok(),
        Err(e) => {
            tracing::error!(error = %crate::error::chain(&e), "the console's reload could not be recorded");
            note.push_str(r#"<p class="error">The record of this reload could not be written (see the log).</p>"#);
            HttpResponse::ServiceUnavailable()
        }
    };
    trust_page(&state, &viewer, status, &note)
}

fn trust_page(
    state: &AppState,
    viewer: &Viewer<'_>,
    builder: actix_web::HttpResponseBuilder,
    note: &str,
) -> HttpResponse {
    let reload = if viewer.session.role == Role::Operator {
        format!(
            r#"<form method="post" action="/console/reload" class="reload"><input type="hidden" name="csrf" value="{}"><button>Reload the configuration file</button></form>"#,
            esc(&viewer.session.csrf(viewer.key))
        )
    } else {
        String::new()
    };
    let policy = state.policy.load();
    let issuers: String = policy
        .issuers
        .iter()
        .map(|i| {
            let c = &i.config;
            let source = match &c.keys {
                KeySource::Uri(u) => format!("jwks_uri {u}"),
                KeySource::File(f) => format!("jwks_file {}", f.display()),
                KeySource::Discovery(u) => format!("discovery {u}"),
                KeySource::Local => "this server's signing keys".into(),
                KeySource::None => "none (opaque tokens, introspected)".into(),
            };
            let ready = c.keys == KeySource::None || i.is_ready();
            let fetched = i.keys().map(|k| k.fetched_at);
            let when = |t: std::time::SystemTime| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .map(|d| crate::clock::format_micros(d.as_micros() as i64))
                    .unwrap_or_default()
            };
            let remote = matches!(c.keys, KeySource::Uri(_) | KeySource::Discovery(_));
            let (last, next) = match fetched {
                Some(at) if remote => (when(at), when(at + i.refresh_interval())),
                Some(at) => (when(at), "-".to_string()),
                None => ("never".to_string(), "-".to_string()),
            };
            let accept: Vec<&str> = c.accept.iter().map(|k| k.as_str()).collect();
            format!(
                r#"<tr><td>{}</td><td>{}</td><td>{}</td><td class="{}">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                esc(&c.id),
                esc(&c.issuer),
                esc(&source),
                if ready { "granted" } else { "denied" },
                if ready { "ready" } else { "not ready" },
                i.keys().map_or(0, |k| k.keys.len()),
                esc(&last),
                esc(&next),
                esc(&accept.join(" ")),
                esc(&i.last_error().unwrap_or_default()),
            )
        })
        .collect();
    let clients: String = policy
        .clients
        .configs()
        .iter()
        .map(|c| {
            let auth = match &c.auth {
                ClientAuth::Secret(_) => "client secret",
                ClientAuth::PrivateKeyJwt { .. } => "private_key_jwt",
            };
            let rate = c.rate_limit.map_or("unlimited".to_string(), |r| {
                format!("{}/s, burst {}", r.per_second, r.burst)
            });
            format!(
                "<tr><td>{}</td><td>{auth}</td><td>{}</td></tr>",
                esc(&c.id),
                esc(&rate)
            )
        })
        .collect();
    let rules: String = policy.rules.all().iter().map(rule_row).collect();
    let body = format!(
        "{note}{reload}<h2>Issuers</h2><table><thead><tr><th>Id</th><th>Issuer</th><th>Keys from</th><th>Status</th><th>Keys</th><th>Last fetch</th><th>Next refresh</th><th>Accepts</th><th>Last fetch error</th></tr></thead><tbody>{issuers}</tbody></table>\
         <h2>Clients</h2><table><thead><tr><th>Id</th><th>Authentication</th><th>Rate limit</th></tr></thead><tbody>{clients}</tbody></table>\
         <h2>Rules, in the order they are tried</h2><table><thead><tr><th>Name</th><th>Mints</th><th>Clients</th><th>Issuers</th><th>Subjects</th><th>Audiences, resources</th><th>Scopes</th><th>Condition</th></tr></thead><tbody>{rules}</tbody></table>"
    );
    page_response(builder, "Trust configuration", &body, Some(viewer))
}

fn rule_row(r: &RuleConfig) -> String {
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "-".to_string()
        } else {
            items.join(" ")
        }
    };
    let targets = r
        .audiences
        .iter()
        .cloned()
        .chain(r.resources.iter().map(|x| x.to_string()))
        .collect();
    format!(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
        esc(&r.name),
        r.mints.as_str(),
        esc(&list(r.clients.clone())),
        esc(&list(r.issuers.clone())),
        esc(&if r.subjects.is_empty() {
            "any".to_string()
        } else {
            list(r.subjects.iter().map(|s| s.to_string()).collect())
        }),
        esc(&list(targets)),
        esc(&r.scopes.to_string()),
        esc(r.condition.as_ref().map_or("", |c| c.source.as_str())),
    )
}
