//! Prometheus metrics (SPEC §3, served at the admin listener's `/metrics`): counters and
//! histograms kept in memory, written in the text exposition format. Label values come from
//! the configuration or a fixed set (an unauthenticated client is `unknown`), never from raw
//! request input, so no request can grow the number of series.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// A fixed-bucket histogram.
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// Sum in millionths, to keep it an integer.
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            if value <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros
            .fetch_add((value * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Counters by label set, the labels in a fixed order. A series is found by its label values
/// written length-first (`7:granted0:`…) into a reused buffer, so counting allocates only when a
/// label set is new; the values themselves are kept for rendering.
#[derive(Default)]
struct Counters(Mutex<BTreeMap<String, (Vec<String>, u64)>>);

thread_local! {
    static SERIES_KEY: RefCell<String> = const { RefCell::new(String::new()) };
}

impl Counters {
    fn add(&self, labels: &[&str]) {
        SERIES_KEY.with_borrow_mut(|key| {
            key.clear();
            for value in labels {
                let _ = write!(key, "{}:{value}", value.len());
            }
            let Ok(mut map) = self.0.lock() else { return };
            match map.get_mut(key.as_str()) {
                Some((_, count)) => *count += 1,
                None => {
                    let values = labels.iter().map(|v| v.to_string()).collect();
                    map.insert(key.clone(), (values, 1));
                }
            }
        });
    }

    fn render(&self, out: &mut String, name: &str, help: &str, label_names: &[&str]) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        let Ok(map) = self.0.lock() else { return };
        let mut series: Vec<&(Vec<String>, u64)> = map.values().collect();
        series.sort();
        for (labels, value) in series {
            let _ = writeln!(
                out,
                "{name}{{{}}} {value}",
                labels_text(label_names, labels)
            );
        }
    }
}

fn labels_text(names: &[&str], values: &[String]) -> String {
    names
        .iter()
        .zip(values)
        .map(|(n, v)| {
            format!(
                "{n}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub struct Metrics {
    exchanges: Counters,
    exchange_seconds: Histogram,
    audit_batch: Histogram,
    audit_commit_seconds: Histogram,
    jwks_fetches: Counters,
    reloads: Counters,
    rate_limited: Counters,
    pre_auth_limited: Counters,
    /// The store's size and the space left beside it (bytes; `u64::MAX`: not known).
    store_bytes: std::sync::atomic::AtomicU64,
    store_free_bytes: std::sync::atomic::AtomicU64,
    /// Whether the last commit the audit writer made (a batch or a probe) succeeded: 1 or 0.
    store_ready: std::sync::atomic::AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            exchanges: Counters::default(),
            exchange_seconds: Histogram::new(SECONDS),
            audit_batch: Histogram::new(BATCH),
            audit_commit_seconds: Histogram::new(SECONDS),
            jwks_fetches: Counters::default(),
            reloads: Counters::default(),
            rate_limited: Counters::default(),
            pre_auth_limited: Counters::default(),
            store_bytes: std::sync::atomic::AtomicU64::new(u64::MAX),
            store_free_bytes: std::sync::atomic::AtomicU64::new(u64::MAX),
            store_ready: std::sync::atomic::AtomicU64::new(1),
        }
    }
}

impl Metrics {
    /// `client` and `rule` must come from the configuration (or be `unknown` / empty).
    pub fn exchange(
        &self,
        outcome: &str,
        error: &str,
        client: &str,
        rule: &str,
        token_type: &str,
        took: Duration,
    ) {
        self.exchanges
            .add(&[outcome, error, client, rule, token_type]);
        self.exchange_seconds.observe(took.as_secs_f64());
    }

    pub fn audit_commit(&self, records: usize, took: Duration) {
        self.audit_batch.observe(records as f64);
        self.audit_commit_seconds.observe(took.as_secs_f64());
    }

    pub fn jwks_fetch(&self, issuer: &str, ok: bool) {
        self.jwks_fetches
            .add(&[issuer, if ok { "ok" } else { "error" }]);
    }

    pub fn reload(&self, ok: bool) {
        self.reloads.add(&[if ok { "ok" } else { "error" }]);
    }

    /// Whether the audit writer's last commit succeeded.
    pub fn store_ready(&self, ok: bool) {
        self.store_ready
            .store(u64::from(ok), std::sync::atomic::Ordering::Relaxed);
    }

    /// The store's size, and the space left on its file system when known (SQLite).
    pub fn store_size(&self, bytes: u64, free: Option<u64>) {
        use std::sync::atomic::Ordering::Relaxed;
        self.store_bytes.store(bytes, Relaxed);
        self.store_free_bytes
            .store(free.unwrap_or(u64::MAX), Relaxed);
    }

    /// A request refused before authentication past its address's limit (SPEC §6).
    pub fn pre_auth_limited(&self, error: &str) {
        self.pre_auth_limited.add(&[error]);
    }

    pub fn rate_limited(&self, client: &str) {
        self.rate_limited.add(&[client]);
    }

    /// The text exposition; `key_ages` gives each issuer's id and when its keys were fetched.
    pub fn render(&self, key_ages: &[(String, Option<SystemTime>)]) -> String {
        let mut out = String::with_capacity(4096);
        self.exchanges.render(
            &mut out,
            "tessera_exchanges_total",
            "Token exchanges by outcome, error, client, rule and the kind of token asked for.",
            &["outcome", "error", "client", "rule", "token_type"],
        );
        self.exchange_seconds.render(
            &mut out,
            "tessera_exchange_duration_seconds",
            "Time to answer a token request, audit commit included.",
        );
        self.audit_batch.render(
            &mut out,
            "tessera_audit_batch_records",
            "Records committed together by the audit writer.",
        );
        self.audit_commit_seconds.render(
            &mut out,
            "tessera_audit_commit_duration_seconds",
            "Time of one audit commit.",
        );
        self.jwks_fetches.render(
            &mut out,
            "tessera_jwks_fetches_total",
            "Key fetches by issuer (or private_key_jwt client) and result.",
            &["issuer", "result"],
        );
        render_key_ages(&mut out, key_ages);
        self.reloads.render(
            &mut out,
            "tessera_config_reloads_total",
            "Configuration reloads by result.",
            &["result"],
        );
        self.rate_limited.render(
            &mut out,
            "tessera_rate_limited_total",
            "Token requests refused for rate, by client.",
            &["client"],
        );
        self.pre_auth_limited.render(
            &mut out,
            "tessera_pre_auth_limited_total",
            "Token requests refused before client authentication past their address's limit \
             (answered 429, counted in summary records), by the error they had.",
            &["error"],
        );
        self.render_store(&mut out);
        out
    }

    /// The store's gauges, each once it has been measured.
    fn render_store(&self, out: &mut String) {
        for (name, help, value) in [
            (
                "tessera_store_size_bytes",
                "The audit store's size: the SQLite file and its log, or the PostgreSQL database.",
                &self.store_bytes,
            ),
            (
                "tessera_store_free_bytes",
                "Space left on the file system holding the SQLite file.",
                &self.store_free_bytes,
            ),
            (
                "tessera_store_ready",
                "1 when the audit writer's last commit (records or a readiness probe) succeeded.",
                &self.store_ready,
            ),
        ] {
            let value = value.load(std::sync::atomic::Ordering::Relaxed);
            if value != u64::MAX {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
                );
            }
        }
    }
}

/// `tessera_issuer_keys_age_seconds`, from when each issuer's keys were fetched.
fn render_key_ages(out: &mut String, key_ages: &[(String, Option<SystemTime>)]) {
    let _ = writeln!(
        out,
        "# HELP tessera_issuer_keys_age_seconds Age of the keys in use for each issuer.\n# TYPE tessera_issuer_keys_age_seconds gauge"
    );
    for (issuer, fetched) in key_ages {
        if let Some(age) = fetched.and_then(|t| t.elapsed().ok()) {
            let _ = writeln!(
                out,
                "tessera_issuer_keys_age_seconds{{{}}} {}",
                labels_text(&["issuer"], std::slice::from_ref(issuer)),
                age.as_secs_f64()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_as_prometheus_text() {
        let m = Metrics::default();
        m.exchange(
            "granted",
            "",
            "orders-svc",
            "r",
            "access_token",
            Duration::from_millis(2),
        );
        m.exchange(
            "granted",
            "",
            "orders-svc",
            "r",
            "access_token",
            Duration::from_millis(20),
        );
        m.jwks_fetch("co\"rp", false);
        let text = m.render(&[("corp".into(), Some(SystemTime::now()))]);
        assert!(text.contains("tessera_exchanges_total{outcome=\"granted\",error=\"\",client=\"orders-svc\",rule=\"r\",token_type=\"access_token\"} 2"), "{text}");
        assert!(
            text.contains("tessera_exchange_duration_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tessera_exchange_duration_seconds_bucket{le=\"+Inf\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("tessera_exchange_duration_seconds_count 2"),
            "{text}"
        );
        assert!(
            text.contains("tessera_jwks_fetches_total{issuer=\"co\\\"rp\",result=\"error\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tessera_issuer_keys_age_seconds{issuer=\"corp\"}"),
            "{text}"
        );
    }

    #[test]
    fn series_are_counted_apart_and_rendered_in_label_order() {
        let m = Metrics::default();
        for (outcome, error, client, rule) in [
            ("granted", "", "orders-svc", "r"),
            ("denied", "invalid_scope", "billing-svc", ""),
            ("granted", "", "billing-svc", "r"),
            ("granted", "", "orders-svc", "r"),
            // Length-first keys keep apart what plain joining would not.
            ("granted", "", "orders-svc", "r1"),
            ("granted", "", "orders-svcr", "1"),
        ] {
            m.exchange(
                outcome,
                error,
                client,
                rule,
                "access_token",
                Duration::from_millis(1),
            );
        }
        let text = m.render(&[]);
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("tessera_exchanges_total{"))
            .collect();
        assert_eq!(
            series,
            [
                "tessera_exchanges_total{outcome=\"denied\",error=\"invalid_scope\",client=\"billing-svc\",rule=\"\",token_type=\"access_token\"} 1",
                "tessera_exchanges_total{outcome=\"granted\",error=\"\",client=\"billing-svc\",rule=\"r\",token_type=\"access_token\"} 1",
                "tessera_exchanges_total{outcome=\"granted\",error=\"\",client=\"orders-svc\",rule=\"r\",token_type=\"access_token\"} 2",
                "tessera_exchanges_total{outcome=\"granted\",error=\"\",client=\"orders-svc\",rule=\"r1\",token_type=\"access_token\"} 1",
                "tessera_exchanges_total{outcome=\"granted\",error=\"\",client=\"orders-svcr\",rule=\"1\",token_type=\"access_token\"} 1",
            ]
        );
    }
}
