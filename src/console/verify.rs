//! Verification of the audit hash chain from the console: the same walk as `tessera audit
//! verify`, run in the background on a connection of its own (at millions of records it takes
//! minutes), one at a time; the page shows its progress and its result.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{HttpResponse, web};

use super::html::{Viewer, esc, page_response};
use super::{SessionKey, SignedIn, see_other};
use crate::state::AppState;

/// The one verification this process runs or ran last.
#[derive(Default)]
pub struct Verification(Mutex<Option<Run>>);

struct Run {
    by: String,
    started: i64,
    checked: Arc<AtomicU64>,
    /// `None` while it runs; then the records verified, or what is broken.
    result: Option<(i64, Result<u64, String>)>,
}

/// Records how a verification ended, however it ended: a walk that panics is not shown as
/// running for ever.
struct Finish {
    verification: Arc<Verification>,
    clock: crate::clock::Clock,
    result: Result<u64, String>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        if let Ok(mut current) = self.verification.0.lock()
            && let Some(run) = current.as_mut()
        {
            let result = std::mem::replace(&mut self.result, Ok(0));
            run.result = Some((self.clock.now().secs(), result));
        }
    }
}

pub async fn page(
    SignedIn(session): SignedIn,
    key: web::Data<SessionKey>,
    verification: web::Data<Verification>,
) -> HttpResponse {
    let viewer = Viewer {
        session: &session,
        key: &key,
    };
    let mut running = false;
    let status = match verification
        .0
        .lock()
        .ok()
        .as_deref()
        .and_then(Option::as_ref)
    {
        None => "<p>No verification has run since the server started.</p>".to_string(),
        Some(run) => {
            let started = crate::clock::format_secs(run.started);
            match &run.result {
                None => {
                    running = true;
                    format!(
                        r#"<p class="running">Running since {started} (started by {}): {} records checked so far. This page reloads itself until it is done.</p>"#,
                        esc(&run.by),
                        run.checked.load(Ordering::Relaxed)
                    )
                }
                Some((finished, Ok(n))) => format!(
                    r#"<p class="granted">Audit chain intact: {n} records verified (started {started} by {}, finished {}).</p>"#,
                    esc(&run.by),
                    crate::clock::format_secs(*finished)
                ),
                Some((finished, Err(broken))) => format!(
                    r#"<p class="denied">Audit chain broken at {} (started {started} by {}, finished {}).</p>"#,
                    esc(broken),
                    esc(&run.by),
                    crate::clock::format_secs(*finished)
                ),
            }
        }
    };
    let body = format!(
        r#"{status}<form method="post" action="/console/verify"><input type="hidden" name="csrf" value="{}"><button>Verify the chain now</button></form>"#,
        esc(&session.csrf(&key))
    );
    let mut answer = page_response(HttpResponse::Ok(), "Audit chain", &body, Some(&viewer));
    if running {
        // Followed without script: the browser asks again every two seconds while it runs.
        answer.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("refresh"),
            actix_web::http::header::HeaderValue::from_static("2"),
        );
    }
    answer
}

#[derive(serde::Deserialize)]
pub struct Start {
    csrf: String,
}

pub async fn start(
    SignedIn(session): SignedIn,
    form: web::Form<Start>,
    key: web::Data<SessionKey>,
    state: web::Data<AppState>,
    verification: web::Data<Verification>,
) -> HttpResponse {
    let now = state.clock.now().secs();
    if let Some(refused) = super::refused_form(&session, &key, &form.csrf, None) {
        return refused;
    }
    let checked = Arc::new(AtomicU64::new(0));
    {
        let Ok(mut current) = verification.0.lock() else {
            return see_other("/console/verify");
        };
        if current.as_ref().is_some_and(|run| run.result.is_none()) {
            return see_other("/console/verify");
        }
        *current = Some(Run {
            by: session.who.clone(),
            started: now,
            checked: checked.clone(),
            result: None,
        });
    }
    tracing::info!(who = %session.who, "console: audit chain verification started");
    let (store, clock) = (state.store.clone(), state.clock.clone());
    let verification = verification.into_inner();
    tokio::task::spawn_blocking(move || {
        let mut finish = Finish {
            verification,
            clock,
            result: Err("the verification stopped unexpectedly".into()),
        };
        finish.result = store
            .connect_for_audit()
            .map_err(|e| {
                tracing::warn!(error = %crate::error::chain(&e), "console verification");
                "the store could not be reached".to_string()
            })
            .and_then(|mut conn| {
                crate::audit::chain::verify(&mut conn, |n| checked.store(n, Ordering::Relaxed))
                    .map_err(|e| {
                        tracing::warn!(error = %e, "console verification");
                        "the audit query failed".to_string()
                    })
            })
            .and_then(|walked| walked.map_err(|broken| broken.to_string()));
    });
    see_other("/console/verify")
}
