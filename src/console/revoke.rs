//! Revocation from a record's detail (operators only): the token the record minted and every
//! token minted from it (lineage), as `/admin/revoke {"jti"}` does, after a confirmation, and
//! recorded with who did it (`actions`).

use actix_web::{HttpResponse, web};
use diesel::Connection;

use super::actions::{self, Action};
use super::html::{Viewer, error, esc, failed, page_response, url_value};
use super::{SessionKey, SignedIn, see_other};
use crate::audit::query;
use crate::audit::revocation::{self, Target};
use crate::state::AppState;

#[derive(serde::Deserialize)]
pub struct Revoke {
    csrf: String,
    /// Absent on the first post, which asks for confirmation.
    confirm: Option<String>,
}

pub async fn revoke(
    SignedIn(session): SignedIn,
    id: web::Path<String>,
    form: web::Form<Revoke>,
    key: web::Data<SessionKey>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let now = state.clock.now();
    if let Some(refused) = super::refused_form(&session, &key, &form.csrf, Some("revoking")) {
        return refused;
    }
    let viewer = Viewer {
        session: &session,
        key: &key,
    };
    let id = id.into_inner();
    let lookup = id.clone();
    // By its key, on the store's own connections: a revocation never waits behind an auditor's
    // long query.
    let found = state
        .store
        .blocking_write(move |c| query::one(c, &lookup))
        .await;
    let record = match found {
        Ok(Some(record)) => record,
        Ok(None) => return see_other("/console/exchanges"),
        Err(e) => {
            let e = crate::http::store_unavailable(e);
            return failed(
                HttpResponse::ServiceUnavailable(),
                "Revoke",
                &e.description,
                Some(&viewer),
            );
        }
    };
    let back = format!("/console/exchanges/{}", url_value(&id));
    let Some(jti) = record.token_jti.clone() else {
        return see_other(&back);
    };
    if form.confirm.as_deref() != Some("yes") {
        let body = format!(
            r#"<p>Revoke the token <code>{jti}</code> (subject {subject}, client {client}) and every token minted from it, directly or through further exchanges? They stop being active at once, and stay revoked.</p>
<form method="post" action="{action}"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="confirm" value="yes"><button>Yes, revoke</button> <a href="{back}">Cancel</a></form>"#,
            jti = esc(&jti),
            subject = esc(record.subject.as_deref().unwrap_or("-")),
            client = esc(record.client_id.as_deref().unwrap_or("-")),
            action = esc(&format!("{back}/revoke")),
            csrf = esc(&session.csrf(&key)),
            back = esc(&back),
        );
        return page_response(HttpResponse::Ok(), "Revoke", &body, Some(&viewer));
    }
    let policy = state.policy.load();
    let local = policy.local_issuers.clone();
    let when = policy.revocation_bounds(None, now.secs());
    let action = Action::by(&session, now, "revoke", format!("jti {jti}"), String::new());
    let revoked = state
        .store
        .blocking_write(move |c| {
            // Both or neither: no revocation from the console goes unrecorded.
            c.transaction(|c| {
                let target = Target::Jti(jti);
                let revoked = revocation::revoke(c, &target, &local, when)?;
                actions::record(
                    c,
                    &Action {
                        result: format!("{revoked} token(s) revoked"),
                        ..action
                    },
                )?;
                Ok::<_, diesel::result::Error>(revoked)
            })
        })
        .await;
    match revoked {
        Ok(revoked) => {
            tracing::info!(who = %session.who, revoked, "console revocation");
            see_other(&back)
        }
        Err(e) => {
            let e = crate::http::store_unavailable(e);
            failed(
                HttpResponse::ServiceUnavailable(),
                "Revoke",
                &e.description,
                Some(&viewer),
            )
        }
    }
}

/// The latest console actions, newest first.
pub async fn activity(
    SignedIn(session): SignedIn,
    key: web::Data<SessionKey>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let viewer = Viewer {
        session: &session,
        key: &key,
    };
    let listed = state.store.audit_read(|c| actions::recent(c, 200)).await;
    let body = match listed {
        Ok(list) if list.is_empty() => "<p>No console action yet.</p>".to_string(),
        Ok(list) => {
            let rows: String = list
                .iter()
                .map(|a| {
                    format!(
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                        esc(&crate::clock::format_micros(a.time_us)),
                        esc(&a.who),
                        esc(&a.role),
                        esc(&a.action),
                        esc(&a.target),
                        esc(&a.result)
                    )
                })
                .collect();
            format!(
                "<table><thead><tr><th>Time</th><th>Who</th><th>Role</th><th>Action</th><th>Target</th><th>Result</th></tr></thead><tbody>{rows}</tbody></table>"
            )
        }
        Err(e) => {
            let e = crate::http::admin::audit_query_failed(e, state.store.audit_budget());
            error(&e.description)
        }
    };
    page_response(HttpResponse::Ok(), "Console activity", &body, Some(&viewer))
}
