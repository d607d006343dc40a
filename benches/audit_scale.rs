//! The audit trail at scale: builds a data set of TESSERA_BENCH_RECORDS records (default 10
//! million) through the writer's own chain code, then times the first page (100 records) of
//! the queries auditors run, and `audit verify` over everything. A benchmark, not a test:
//!
//!     cargo bench --bench audit_scale
//!     TESSERA_BENCH_RECORDS=1000000 TESSERA_BENCH_DB=/tmp/audit.db cargo bench --bench audit_scale
//!
//! With TESSERA_BENCH_DB naming an existing file of the right size, the build step is skipped.

#![expect(clippy::unwrap_used, reason = "a benchmark stops at the first failure")]

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use tessera::audit::chain::{self, Tip, append};
use tessera::audit::query::{self, Filters};
use tessera::audit::{ExchangeRecord, Outcome};
use tessera::audit::{lineage, tallies};
use tessera::config::StorageUrl;
use tessera::store::{DbConnection, Store};

const SUBJECTS: u64 = 100_000;
const CLIENTS: u64 = 50;
const DAYS: i64 = 90;
const START_US: i64 = 1_780_000_000_000_000;

fn main() {
    let n: u64 = std::env::var("TESSERA_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = std::env::var("TESSERA_BENCH_DB")
        .map(Into::into)
        .unwrap_or_else(|_| dir.path().join("audit.db"));
    let store = Store::open(&StorageUrl::Sqlite(path.clone())).unwrap();
    store.migrate().unwrap();
    let mut conn = store.connect().unwrap();
    let have: i64 = tessera::store::schema::exchanges::table
        .count()
        .get_result(&mut *conn)
        .unwrap();
    if have as u64 != n {
        assert_eq!(have, 0, "{} holds another data set", path.display());
        build(&mut conn, n);
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "data set: {n} records, {:.1} GB, {}",
        size as f64 / 1e9,
        path.display()
    );

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let span = n.max(1);
    time_queries("first page by subject", &mut conn, || Filters {
        subject: Some(format!("user-{}", rng.below(SUBJECTS))),
        ..Default::default()
    });
    let mut rng = Rng(7);
    time_queries(
        "first page by client and a one-day range",
        &mut conn,
        || {
            let day = rng.below(DAYS as u64 - 1) as i64;
            Filters {
                client: Some(format!("svc-{}", rng.below(CLIENTS))),
                since: Some(START_US + day * 86_400_000_000),
                until: Some(START_US + (day + 1) * 86_400_000_000),
                ..Default::default()
            }
        },
    );
    let mut rng = Rng(11);
    time_queries("by jti", &mut conn, || Filters {
        jti: Some(format!("tj-{}", rng.below(span))),
        ..Default::default()
    });
    let mut rng = Rng(13);
    time_queries("by subject_jti (lineage)", &mut conn, || Filters {
        subject_jti: Some(format!("sj-{}", rng.below(span / 3 + 1))),
        ..Default::default()
    });
    time_queries("first page, no filter", &mut conn, Filters::default);
    let first = query::page(&mut conn, &Filters::default(), 100, None).unwrap();
    let cursor = query::Cursor::after(first.last().unwrap());
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let next = query::page(&mut conn, &Filters::default(), 100, Some(&cursor)).unwrap();
        times.push(started.elapsed());
        assert_eq!(next.len(), 100);
    }
    println!("second page, no filter (after a cursor)   {times:?}");
    time_console(&mut conn, n);

    let started = Instant::now();
    let verified = chain::verify(&mut conn, |done| eprintln!("  verify: {done} records…")).unwrap();
    println!(
        "audit verify: {:?} in {:.1} s",
        verified.map_err(|b| b.to_string()),
        started.elapsed().as_secs_f64()
    );
}

/// Records spread over 90 days: 100,000 subjects, 50 clients, three requests per subject
/// token, one request in ten denied.
fn build(conn: &mut DbConnection, n: u64) {
    // Building only: durability is not what is measured here.
    conn.batch_execute("PRAGMA synchronous = OFF;").unwrap();
    let started = Instant::now();
    let mut tip = Tip::start(conn, "bench", START_US).unwrap();
    let step_us = DAYS * 86_400_000_000 / n.max(1) as i64;
    let mut i = 0u64;
    while i < n {
        let mut batch: Vec<ExchangeRecord> = (i..(i + 1000).min(n))
            .map(|k| record(k, START_US + k as i64 * step_us))
            .collect();
        let after = tip.link(batch.iter_mut());
        let refs: Vec<&ExchangeRecord> = batch.iter().collect();
        append(conn, &refs).unwrap();
        tip = after;
        i += batch.len() as u64;
        if i.is_multiple_of(1_000_000) {
            eprintln!(
                "  built {i} records in {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    conn.batch_execute("PRAGMA synchronous = FULL; PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    println!(
        "built {n} records in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn record(k: u64, time_us: i64) -> ExchangeRecord {
    let mut r = ExchangeRecord::begin(
        time_us,
        format!("req-{k}"),
        Some("10.0.0.7".into()),
        Some("orders-svc/1.4".into()),
    );
    let denied = k % 10 == 9;
    r.outcome = if denied {
        Outcome::Denied
    } else {
        Outcome::Granted
    };
    r.error = denied.then(|| "invalid_target".into());
    r.reason = if denied {
        "no rule grants this exchange".into()
    } else {
        "granted".into()
    };
    r.client_id = Some(format!("svc-{}", k % CLIENTS));
    r.subject_issuer = Some("corp".into());
    // Three requests per subject token, each token valid for an hour.
    r.subject = Some(format!("user-{}", (k / 3 * 7919) % SUBJECTS));
    r.subject_jti = Some(format!("sj-{}", k / 3));
    r.subject_until_us = Some(time_us + 3_600_000_000);
    r.requested_audiences = vec!["inventory-api".into()];
    r.requested_scopes = vec!["inventory:read".into()];
    if !denied {
        r.granted_audiences = vec!["inventory-api".into()];
        r.granted_scopes = vec!["inventory:read".into()];
        r.rule = Some("orders-to-inventory".into());
        r.token_jti = Some(format!("tj-{k}"));
        r.expires_at = Some(time_us / 1_000_000 + 300);
    }
    r.duration_us = 180;
    r
}

fn time_queries(what: &str, conn: &mut DbConnection, mut filters: impl FnMut() -> Filters) {
    let mut times: Vec<Duration> = Vec::new();
    let mut rows = 0;
    for _ in 0..30 {
        let f = filters();
        let started = Instant::now();
        rows += query::page(conn, &f, 100, None).unwrap().len();
        times.push(started.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what:<42} median {:>7.2} ms   p90 {:>7.2} ms   max {:>7.2} ms   ({:.0} rows a query)",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 9 / 10]),
        ms(times[times.len() - 1]),
        rows as f64 / times.len() as f64
    );
}

/// xorshift64: deterministic keys, so runs compare.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// What the console reads beyond a page of records: the overview (an hour and a day of
/// per-minute counts, the last of the data set) and a record's lineage tree.
fn time_console(conn: &mut DbConnection, n: u64) {
    let step_us = DAYS * 86_400_000_000 / n.max(1) as i64;
    let last_minute = (START_US + n as i64 * step_us).div_euclid(60_000_000);
    time_it("overview (last hour and last day)", || {
        let (hour, day) = tallies::overview(conn, last_minute, 10).unwrap();
        hour.per_minute.len() + day.per_minute.len()
    });
    let mut rng = Rng(17);
    time_it("lineage tree of a record", || {
        let id = format!("tj-{}", rng.below(n));
        let filters = Filters {
            jti: Some(id),
            ..Default::default()
        };
        match query::page(conn, &filters, 1, None).unwrap().pop() {
            Some(record) => {
                let tree = lineage::of(conn, &record, &["corp".to_string()]).unwrap();
                1 + tree.ancestors.len() + tree.descendants.len()
            }
            None => 0,
        }
    });
}

fn time_it(what: &str, mut run: impl FnMut() -> usize) {
    let mut times: Vec<Duration> = Vec::new();
    let mut rows = 0;
    for _ in 0..30 {
        let started = Instant::now();
        rows += run();
        times.push(started.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what:<42} median {:>7.2} ms   p90 {:>7.2} ms   max {:>7.2} ms   ({:.0} rows a run)",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 9 / 10]),
        ms(times[times.len() - 1]),
        rows as f64 / times.len() as f64
    );
}
