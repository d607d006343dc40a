//! Client authentication of a form request, for `/token`, `/introspect` and `/revoke`.

use actix_web::HttpRequest;
use actix_web::http::header;

use super::form::Params;
use crate::clients::{self, Clients, Evidence};
use crate::error::OAuthError;

/// The client id presented (kept for the record even when authentication fails, cut to 256
/// characters), and the authenticated client id or why not.
pub fn authenticate(
    req: &HttpRequest,
    params: &Params,
    clients: &Clients,
) -> (Option<String>, Result<String, OAuthError>) {
    let authorization = match req.headers().get(header::AUTHORIZATION).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            let err = OAuthError::invalid_client(
                "the Authorization header is not valid HTTP Basic client authentication",
                true,
            );
            return (None, Err(err));
        }
    };
    let presented = clients::presented(&Evidence {
        authorization,
        form_client_id: params.one("client_id"),
        form_client_secret: params.one("client_secret"),
        form_client_assertion: params.one("client_assertion").is_some()
            || params.one("client_assertion_type").is_some(),
    });
    match presented {
        Err(e) => (
            params
                .one("client_id")
                .map(|id| id.chars().take(256).collect()),
            Err(e),
        ),
        Ok(p) => (
            Some(p.client_id.chars().take(256).collect()),
            clients.authenticate(&p),
        ),
    }
}
