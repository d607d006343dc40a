//! `X-Request-Id`: taken from the request when it is a sane value, generated otherwise, and
//! returned on the response.

use actix_web::HttpRequest;
use actix_web::HttpResponse;
use actix_web::http::header::{HeaderName, HeaderValue};

const HEADER: &str = "x-request-id";

pub fn of(req: &HttpRequest) -> String {
    req.headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| crate::ids::record_id(crate::clock::now()))
}

pub fn attach<B>(response: &mut HttpResponse<B>, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(HEADER), value);
    }
}
