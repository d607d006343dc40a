//! The running configuration's trust, read-only (SPEC §11): issuers with their keys' status,
//! clients (never a secret or its hash) and rules in file order.

use actix_web::{HttpResponse, web};

use super::html::{Viewer, esc, page_response};
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
            let accept: Vec<&str> = c.accept.iter().map(|k| k.as_str()).collect();
            format!(
                r#"<tr><td>{}</td><td>{}</td><td>{}</td><td class="{}">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                esc(&c.id),
                esc(&c.issuer),
                esc(&source),
                if ready { "granted" } else { "denied" },
                if ready { "ready" } else { "not ready" },
                i.keys().map_or(0, |k| k.keys.len()),
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
        "<h2>Issuers</h2><table><thead><tr><th>Id</th><th>Issuer</th><th>Keys from</th><th>Status</th><th>Keys</th><th>Accepts</th><th>Last fetch error</th></tr></thead><tbody>{issuers}</tbody></table>\
         <h2>Clients</h2><table><thead><tr><th>Id</th><th>Authentication</th><th>Rate limit</th></tr></thead><tbody>{clients}</tbody></table>\
         <h2>Rules, in the order they are tried</h2><table><thead><tr><th>Name</th><th>Mints</th><th>Clients</th><th>Issuers</th><th>Subjects</th><th>Audiences, resources</th><th>Scopes</th><th>Condition</th></tr></thead><tbody>{rules}</tbody></table>"
    );
    page_response(
        HttpResponse::Ok(),
        "Trust configuration",
        &body,
        Some(&viewer),
    )
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
