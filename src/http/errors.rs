//! The one mapping of `OAuthError` to HTTP (RFC 6749 §5.2): status, JSON body, `no-store`,
//! and the `WWW-Authenticate` / `Retry-After` headers where they belong.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::error::{ErrorCode, OAuthError, Status};

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match (self.status, self.code) {
            (Status::PayloadTooLarge, _) => StatusCode::PAYLOAD_TOO_LARGE,
            (Status::RequestTimeout, _) => StatusCode::REQUEST_TIMEOUT,
            (Status::TooManyRequests { .. }, _) => StatusCode::TOO_MANY_REQUESTS,
            (_, ErrorCode::InvalidClient | ErrorCode::InvalidToken) => StatusCode::UNAUTHORIZED,
            (_, ErrorCode::TemporarilyUnavailable) => StatusCode::SERVICE_UNAVAILABLE,
            (_, ErrorCode::ServerError) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header(("Cache-Control", "no-store"))
            .insert_header(("Pragma", "no-cache"));
        if self.code == ErrorCode::InvalidClient && self.basic_challenge {
            response.insert_header((
                "WWW-Authenticate",
                "Basic realm=\"tessera\", charset=\"UTF-8\"",
            ));
        }
        if self.code == ErrorCode::InvalidToken {
            response.insert_header((
                "WWW-Authenticate",
                "Bearer realm=\"tessera-admin\", error=\"invalid_token\"",
            ));
        }
        if let Status::TooManyRequests { retry_after_secs } = self.status {
            response.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        response.json(json!({ "error": self.code.as_str(), "error_description": self.description }))
    }
}
