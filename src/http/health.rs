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
    for id in policy.issuers.not_ready() {
        let why = policy
            .issuers
            .iter()
            .find(|i| i.config.id == id)
            .and_then(|i| i.last_error())
            .unwrap_or_else(|| "no keys fetched yet".into());
        issuers.insert(id, Value::String(why));
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
