//! `/healthz` (the process is alive) and `/readyz` (it can serve exchanges now).

use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};

use crate::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// 200 when the store takes a commit, a signing key is loaded and every issuer has usable
/// keys; otherwise 503, naming what is not ready.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = match state.store.ping().await {
        Ok(()) => state.audit.probe().await,
        Err(e) => Err(e),
    };
    if let Err(e) = &store {
        tracing::warn!(error = %e, "not ready: the store cannot take records");
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
