//! `/healthz` (the process is alive) and `/readyz` (it can serve exchanges now).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};

use crate::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// How long `/readyz` waits for the store: an orchestrator's probe must get an answer, and a
/// store that takes longer than this to commit is not ready to serve.
const STORE_BOUND: Duration = Duration::from_millis(500);

/// 200 when the store takes a commit, a signing key is loaded and every issuer has usable
/// keys; otherwise 503, naming what is not ready. The store is proved by the audit writer's
/// own commit (not the request pool), within `STORE_BOUND`.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = tokio::time::timeout(STORE_BOUND, state.audit.probe())
        .await
        .unwrap_or_else(|_| Err(crate::audit::writer::Error::NotWithin(STORE_BOUND)));
    if let Err(e) = &store {
        crate::telemetry::repeated::error(
            "not ready: the store cannot take records",
            &crate::error::chain(e),
        );
    }
    let store_ok = store.is_ok();
    let policy = state.policy.load();
    let mut issuers = Map::new();
    // What a fetch returned can come from anyone the issuer's URLs lead to: it goes to the log
    // and the admin listener's /admin/issuers, never to this public answer.
    for id in policy.issuers.not_ready() {
        let failed = policy
            .issuers
            .iter()
            .find(|i| i.config.id == id)
            .is_some_and(|i| i.last_error().is_some());
        let why = if failed {
            "no usable keys: the last fetch failed (see the log or /admin/issuers)"
        } else {
            "no keys fetched yet"
        };
        issuers.insert(id, Value::String(why.into()));
    }
    let ready = store_ok && issuers.is_empty();
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "store": if store_ok { "ok" } else { "unavailable" },
        "signing_key": state.keys.current().kid,
        "issuers_not_ready": issuers,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
