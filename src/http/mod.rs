//! The public HTTP interface (SPEC §3).

pub mod admin;
mod body;
mod client_auth;
mod errors;
mod health;
mod introspection;
mod meta;
pub mod remote_addr;
mod report;
mod request_id;
mod token;

use actix_web::{HttpResponse, ResponseError, web};

use crate::error::OAuthError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/token")
            .wrap(actix_web::middleware::from_fn(report::report))
            .route(web::post().to(token::token))
            .default_service(web::to(method_not_allowed)),
    )
    .route("/introspect", web::post().to(introspection::introspect))
    .route("/revoke", web::post().to(introspection::revoke))
    .route("/jwks.json", web::get().to(meta::jwks))
    .route(
        "/.well-known/oauth-authorization-server",
        web::get().to(meta::metadata),
    )
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz));
}

async fn method_not_allowed() -> HttpResponse {
    let mut response =
        OAuthError::invalid_request("the token endpoint takes POST only").error_response();
    *response.status_mut() = actix_web::http::StatusCode::METHOD_NOT_ALLOWED;
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static("POST"),
    );
    response
}

/// A store that did not answer: 503 for the client, the cause in the log.
pub(crate) fn store_unavailable(e: crate::store::Error) -> OAuthError {
    crate::telemetry::repeated::error("the store did not answer", &crate::error::chain(&e));
    OAuthError::temporarily_unavailable("the store is not available; retry later")
}
