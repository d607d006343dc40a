//! A request body, read within its size and time bounds.

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;

use crate::error::OAuthError;

/// The body, refused before it is read whole when it is larger than allowed, or not a form.
pub async fn read_body(
    req: &HttpRequest,
    body: web::Payload,
    limit: usize,
    within: std::time::Duration,
) -> Result<Vec<u8>, OAuthError> {
    tokio::time::timeout(within, read_whole(req, body, limit))
        .await
        .unwrap_or_else(|_| Err(OAuthError::body_timeout()))
}

async fn read_whole(
    req: &HttpRequest,
    mut body: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, OAuthError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(OAuthError::payload_too_large(limit));
    }
    // Grown as the body arrives, never reserved from what the client declares: a connection
    // that declares a large body and sends a byte must not hold the whole of it.
    let mut bytes = Vec::with_capacity(declared.unwrap_or(1024).min(limit).min(4096));
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|_| OAuthError::invalid_request("the request body could not be read"))?;
        if bytes.len() + chunk.len() > limit {
            return Err(OAuthError::payload_too_large(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
