//! Client authentication of a form request, for `/token`, `/introspect` and `/revoke`:
//! `client_secret_basic`, `client_secret_post` or `private_key_jwt`, exactly one.

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::clients::{self, Credentials, Evidence};
use crate::error::OAuthError;
use crate::oauth::Params;
use crate::state::{AppState, Policy};

/// The client id presented (kept for the record even when authentication fails, cut to 256
/// characters), and the authenticated client id or why not.
pub async fn authenticate(
    req: &HttpRequest,
    params: &Params,
    policy: &Policy,
    state: &AppState,
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
    let cut = |id: &str| id.chars().take(256).collect::<String>();
    let credentials = clients::credentials(&Evidence {
        authorization,
        form_client_id: params.one("client_id"),
        form_client_secret: params.one("client_secret"),
        form_client_assertion: params.one("client_assertion"),
        form_client_assertion_type: params.one("client_assertion_type"),
    });
    match credentials {
        Err(e) => (params.one("client_id").map(cut), Err(e)),
        Ok(Credentials::Secret(p)) => (Some(cut(&p.client_id)), policy.clients.authenticate(&p)),
        Ok(Credentials::Assertion {
            assertion,
            client_id,
        }) => {
            let claimed = client_id.clone().or_else(|| {
                crate::tokens::unverified::parse(&assertion)
                    .ok()
                    .and_then(|t| t.iss().map(str::to_string))
            });
            let now = state.clock.now().secs();
            let verified = crate::clients::assertion::verify(
                &assertion,
                client_id.as_deref(),
                &policy.client_keys,
                &state.store,
                now,
                state.server.max_assertion_lifetime,
            )
            .await;
            (claimed.as_deref().map(cut), verified)
        }
    }
}
