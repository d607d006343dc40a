//! Logging and tracing, set up once: lines on stderr, filtered by `TESSERA_LOG` (default `info`
//! for `serve`, `warn` for the other commands); one JSON object a line with
//! `TESSERA_LOG_FORMAT=json`. `serve` can also export its spans over OTLP/HTTP
//! (`[telemetry] otlp_endpoint`), off by default.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::TelemetryConfig;

/// Logging only, for the commands other than `serve`.
pub fn init(default_level: &str) {
    let _ = init_with(default_level, &TelemetryConfig::default());
}

/// Spans being exported; dropping this sends those still buffered.
pub struct Exporting(Option<SdkTracerProvider>);

impl Drop for Exporting {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Logging, and the export of spans when `telemetry` names a collector. Call it outside any
/// async runtime: the exporter runs on a thread of its own.
pub fn init_with(default_level: &str, telemetry: &TelemetryConfig) -> Result<Exporting, String> {
    let filter =
        EnvFilter::try_from_env("TESSERA_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let provider = telemetry
        .otlp_endpoint
        .as_ref()
        .map(|endpoint| exporter(endpoint, telemetry))
        .transpose()?;
    let spans = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("tessera")));
    let registry = tracing_subscriber::registry().with(filter).with(spans);
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let _ = if std::env::var("TESSERA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        registry
            .with(logs.json().with_current_span(false))
            .try_init()
    } else {
        registry
            .with(logs.with_ansi(std::io::stderr().is_terminal()))
            .try_init()
    };
    Ok(Exporting(provider))
}

/// Spans to `<endpoint>/v1/traces`, in batches (the SDK's `OTEL_BSP_*` variables tune them).
fn exporter(endpoint: &url::Url, telemetry: &TelemetryConfig) -> Result<SdkTracerProvider, String> {
    let traces = format!("{}/v1/traces", endpoint.as_str().trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces)
        .build()
        .map_err(|e| format!("telemetry.otlp_endpoint: cannot export spans: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(telemetry.service_name.clone())
        .build();
    // Tessera's spans are roots (no trace context is taken from requests): the ratio decides.
    let sampler = opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
        opentelemetry_sdk::trace::Sampler::TraceIdRatioBased(telemetry.sample_ratio),
    ));
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler)
        .with_resource(resource)
        .build())
}

/// Errors that every request meets during an outage (the store down, say) are logged once, then
/// summarised: each kind at most once per `SUMMARY_EVERY`, with how many times it recurred in
/// between, so an outage costs a few lines rather than one per request. Every error is one line:
/// line breaks inside it (libpq's messages have them) become spaces.
pub mod repeated {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    use std::time::{Duration, Instant};

    const SUMMARY_EVERY: Duration = Duration::from_secs(10);

    struct Seen {
        logged_at: Instant,
        /// Occurrences since the last line.
        since: u64,
    }

    /// A log-rate limiter, like the global subscriber it writes to: process-wide by nature.
    static SEEN: LazyLock<Mutex<HashMap<&'static str, Seen>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));

    /// `None`: stay quiet; `Some(n)`: log now, `n` occurrences left unlogged since the last line.
    fn admit(what: &'static str, now: Instant) -> Option<u64> {
        let mut seen = SEEN.lock().ok()?;
        match seen.get_mut(what) {
            Some(s) if now.duration_since(s.logged_at) < SUMMARY_EVERY => {
                s.since += 1;
                None
            }
            Some(s) => {
                let skipped = s.since;
                *s = Seen {
                    logged_at: now,
                    since: 0,
                };
                Some(skipped)
            }
            None => {
                seen.insert(
                    what,
                    Seen {
                        logged_at: now,
                        since: 0,
                    },
                );
                Some(0)
            }
        }
    }

    /// The error on one line.
    pub fn one_line(error: &str) -> String {
        error
            .split(['\n', '\r'])
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Logs `what` with its error at `error` level, the first time and then at most once per
    /// ten seconds, saying how often it recurred meanwhile.
    pub fn error(what: &'static str, error: &str) {
        if let Some(skipped) = admit(what, Instant::now()) {
            tracing::error!(error = %one_line(error), repeated_since_last = skipped, "{what}");
        }
    }

    /// As `error`, at `warn` level, for what a stranger can make happen at will.
    pub fn warn(what: &'static str, detail: &str) {
        if let Some(skipped) = admit(what, Instant::now()) {
            tracing::warn!(detail = %one_line(detail), repeated_since_last = skipped, "{what}");
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn repeats_are_summarised_once_per_interval() {
            let start = Instant::now();
            assert_eq!(admit("test: first", start), Some(0));
            for _ in 0..100 {
                assert_eq!(admit("test: first", start), None);
            }
            assert_eq!(admit("test: first", start + SUMMARY_EVERY), Some(100));
            assert_eq!(
                admit("test: other", start),
                Some(0),
                "kinds are counted apart"
            );
        }

        #[test]
        fn errors_are_one_line() {
            assert_eq!(
                one_line("could not connect\n\tIs the server running?\r\n"),
                "could not connect Is the server running?"
            );
        }
    }
}
