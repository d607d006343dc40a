//! What every `/token` request leaves besides its record: its span (`token_request`, with
//! `request_id`, then `client_id` and `rule` as they become known, so every line logged while
//! it runs names them), the `X-Request-Id` header, one log line and its count in the metrics.
//! The handler says what the request came to with a `Report` in the response's extensions; this
//! middleware does the rest, so the handler holds no logging or counting of its own.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing::Instrument;

/// The request's id (SPEC §3), for the handler to record.
pub struct RequestId(pub String);

/// What a `/token` request came to, as far as logs and metrics care.
pub enum Report {
    /// An exchange answered (granted when `error` is `None`): logged and counted, with the
    /// client and rule when they are configured ones.
    Exchange {
        error: Option<&'static str>,
        client: Option<String>,
        rule: Option<String>,
        /// The kind of token asked for.
        token_type: &'static str,
    },
    /// Refused by its client's rate limit: logged, and counted as rate limited only.
    RateLimited {
        error: &'static str,
        client: Option<String>,
    },
    /// Refused before authentication, past its address's limit: counted only (SPEC §6).
    Summarised { error: &'static str },
}

pub async fn report(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let id = super::request_id::of(req.request());
    req.extensions_mut().insert(RequestId(id.clone()));
    let state = req
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .cloned();
    let span = tracing::info_span!(
        "token_request",
        request_id = %id,
        client_id = tracing::field::Empty,
        rule = tracing::field::Empty,
    );
    let mut response = next.call(req).instrument(span).await?;
    // Only exchanges are reported: a 405 for another method is not one (no id, no log line).
    let report = response.response_mut().extensions_mut().remove::<Report>();
    if let Some(report) = report {
        super::request_id::attach(response.response_mut(), &id);
        if let Some(state) = state {
            log_and_count(&report, &id, &state.metrics, started);
        }
    }
    Ok(response)
}

fn log_and_count(
    report: &Report,
    request_id: &str,
    metrics: &crate::metrics::Metrics,
    started: Instant,
) {
    let logged =
        |outcome: &str, error: Option<&str>, client: &Option<String>, rule: Option<&str>| {
            tracing::info!(
                request_id = %request_id,
                client_id = client.as_deref().unwrap_or("-"),
                rule = rule.unwrap_or("-"),
                outcome,
                error = error.unwrap_or("-"),
                "token exchange"
            );
        };
    match report {
        Report::Exchange {
            error,
            client,
            rule,
            token_type,
        } => {
            let outcome = if error.is_some() { "denied" } else { "granted" };
            logged(outcome, *error, client, rule.as_deref());
            metrics.exchange(
                outcome,
                error.unwrap_or(""),
                client.as_deref().unwrap_or("unknown"),
                rule.as_deref().unwrap_or(""),
                token_type,
                started.elapsed(),
            );
        }
        Report::RateLimited { error, client } => {
            logged("denied", Some(error), client, None);
            tracing::debug!(client_id = client.as_deref().unwrap_or("-"), "rate limited");
            metrics.rate_limited(client.as_deref().unwrap_or("unknown"));
        }
        Report::Summarised { error } => metrics.pre_auth_limited(error),
    }
}
