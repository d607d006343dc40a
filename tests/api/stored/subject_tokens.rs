//! Records found by subject token (`subject_jti`): through each token's span of time in the
//! database, whoever wrote the records, in whatever order, and before or after the upgrade that
//! introduced the spans.

use serde_json::json;

use crate::helpers::*;
use crate::storage::{Database, count_rows, execute};

/// The columns of a record copied under a new id, token and place in its chain, its time moved
/// by `shift_us`; the copy's `subject_until_us` is dropped, as a writer without it would.
fn copy_record(id: &str, new_id: &str, shift_us: i64, seq_shift: i64) -> String {
    format!(
        "INSERT INTO exchanges (id, time_us, outcome, error, reason, client_id, subject_issuer, \
         subject, subject_jti, requested_audiences, requested_resources, requested_scopes, \
         granted_audiences, granted_scopes, rule, token_jti, expires_at, request_id, duration_us, \
         chain, seq, prev_hash, hash) \
         SELECT '{new_id}', time_us + {shift_us}, outcome, error, reason, client_id, subject_issuer, \
         subject, subject_jti, requested_audiences, requested_resources, requested_scopes, \
         granted_audiences, granted_scopes, rule, '{new_id}-jti', expires_at, request_id, \
         duration_us, chain, seq + {seq_shift}, prev_hash, hash FROM exchanges WHERE id = '{id}'"
    )
}

#[tokio::test]
async fn records_are_found_by_subject_token_across_subjects_and_out_of_order() {
    let app = TestApp::spawn().await;
    // The same jti from two subjects: neither hides the other.
    let alice = app.subject_token(json!({"jti": "shared-jti"}));
    let bob = app.subject_token(json!({"sub": "bob", "jti": "shared-jti"}));
    assert_eq!(app.exchange_subject(&alice).await.status(), 200);
    assert_eq!(app.exchange_subject(&bob).await.status(), 200);
    let other = app.subject_token(json!({"jti": "other-jti"}));
    assert_eq!(app.exchange_subject(&other).await.status(), 200);
    let count = |args: &[&str]| app.records(args).len();
    assert_eq!(count(&["--subject-jti", "shared-jti"]), 2);
    assert_eq!(
        count(&["--subject-jti", "shared-jti", "--subject", "bob"]),
        1
    );
    assert_eq!(count(&["--subject-jti", "other-jti"]), 1);
    assert_eq!(count(&["--subject-jti", "unknown-jti"]), 0);

    // Records of alice's token written late with an earlier time (a slow request), and by a
    // writer that does not say when the token stops being accepted, much later.
    let alice_record = app.records(&["--subject-jti", "shared-jti", "--subject", "alice"]);
    let id = alice_record[0]["id"].as_str().unwrap();
    app.sql(&copy_record(id, "EARLIER", -3_600_000_000, 100));
    app.sql(&copy_record(id, "LATER", 7_200_000_000, 101));
    let found = app.records(&["--subject-jti", "shared-jti"]);
    let ids: Vec<&str> = found.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(ids[0], "LATER", "newest first: {ids:?}");
    assert_eq!(ids[3], "EARLIER", "{ids:?}");

    // The admin API and revocation find the same records.
    let resp = app
        .admin_get("/admin/exchanges?subject_jti=shared-jti")
        .await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["items"].as_array().map(Vec::len), Some(4), "{body}");
    let resp = app.admin_revoke(json!({"subject_jti": "shared-jti"})).await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["revoked"], 4, "{body}");
}

#[tokio::test]
async fn a_jti_shared_by_very_many_subjects_is_still_found_and_revoked() {
    // An issuer that reuses one jti for every subject (a bug, or an attacker holding its key)
    // must not make the lookup too large for the database to run.
    let app = TestApp::spawn().await;
    let token = app.subject_token(json!({"jti": "reused-jti"}));
    assert_eq!(app.exchange_subject(&token).await.status(), 200);
    app.sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 70000) \
         INSERT INTO subject_tokens (subject_jti, subject_issuer, subject, first_us, until_us) \
         SELECT 'reused-jti', 'corp', 'user-' || i, 0, 1 FROM n",
    );
    assert_eq!(app.records(&["--subject-jti", "reused-jti"]).len(), 1);
    let resp = app.admin_revoke(json!({"subject_jti": "reused-jti"})).await;
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["revoked"], 1, "{body}");
}

#[tokio::test]
async fn spans_go_once_retention_has_pruned_their_records() {
    let app = TestApp::spawn_with(|c| {
        c.storage.retention = Some("2s".into());
        c.issuer_mut("corp").leeway = Some("0s".into());
    })
    .await;
    let t = now();
    for n in 0..3 {
        let token = app.subject_token(json!({"jti": format!("short-{n}"), "exp": t + 2}));
        assert_eq!(app.exchange_subject(&token).await.status(), 200);
    }
    assert_eq!(
        count_rows(&app.database.url, app.dir.path(), "subject_tokens"),
        3
    );
    let mut left = i64::MAX;
    for _ in 0..100 {
        left = count_rows(&app.database.url, app.dir.path(), "subject_tokens");
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        left, 0,
        "spans past retention, their records pruned, go too"
    );
    assert_eq!(app.records(&[]).len(), 0);
}

#[tokio::test]
async fn records_written_before_the_spans_existed_are_found_after_the_upgrade() {
    let app = TestApp::spawn().await;
    let (old, migrations) = if crate::on_postgres() {
        (
            Database::fresh_postgres(false),
            [
                include_str!(
                    "../../../migrations/postgres/2026-11-25-000001_create_exchanges/up.sql"
                ),
                include_str!(
                    "../../../migrations/postgres/2026-11-25-000002_create_used_jtis/up.sql"
                ),
                include_str!(
                    "../../../migrations/postgres/2026-11-25-000003_create_store_probes/up.sql"
                ),
            ],
        )
    } else {
        (
            Database::fresh("before-spans"),
            [
                include_str!(
                    "../../../migrations/sqlite/2026-11-25-000001_create_exchanges/up.sql"
                ),
                include_str!(
                    "../../../migrations/sqlite/2026-11-25-000002_create_used_jtis/up.sql"
                ),
                include_str!(
                    "../../../migrations/sqlite/2026-11-25-000003_create_store_probes/up.sql"
                ),
            ],
        )
    };
    let base = app.dir.path();
    if !crate::on_postgres() {
        // Made by a version before incremental vacuum: its mode is fixed with its first table.
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let path = base.join("before-spans.db");
        diesel::SqliteConnection::establish(&path.to_string_lossy())
            .unwrap()
            .batch_execute("PRAGMA auto_vacuum = NONE; CREATE TABLE first (a); DROP TABLE first;")
            .unwrap();
    }
    let record = |id: &str, time_us: i64, subject: &str, jti: &str, seq: i64| {
        format!(
            "INSERT INTO exchanges (id, time_us, outcome, reason, subject_issuer, subject, \
             subject_jti, requested_audiences, requested_resources, requested_scopes, \
             granted_audiences, granted_scopes, token_jti, request_id, duration_us, chain, seq, \
             prev_hash, hash) VALUES ('{id}', {time_us}, 'granted', 'granted', 'corp', \
             '{subject}', '{jti}', '[]', '[]', '[]', '[]', '[]', '{id}-jti', 'req', 1, 'old', \
             {seq}, 'p', 'h');"
        )
    };
    execute(
        &old.url,
        base,
        &format!(
            "{}\n{}\n{}\n\
             CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, \
             run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);\n\
             INSERT INTO __diesel_schema_migrations (version) VALUES ('20261125000001'), \
             ('20261125000002'), ('20261125000003');\n{}{}{}",
            migrations[0],
            migrations[1],
            migrations[2],
            record("OLD1", 1_000_000, "alice", "old-subject", 0),
            record("OLD2", 5_000_000, "alice", "old-subject", 1),
            record("OLD3", 3_000_000, "bob", "another-subject", 2),
        ),
    );
    let config = app.config_copy("before-spans.toml", |c| {
        c.storage.url = Some(old.url.clone())
    });

    let out = run_cli(&["migrate"], Some(&config));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("7 migration(s) applied"),
        "{stdout}"
    );
    if !crate::on_postgres() {
        // A file made before incremental vacuum is converted once, so retention frees space.
        assert!(stdout.contains("rewritten once"), "{stdout}");
        let again = run_cli(&["migrate"], Some(&config));
        assert!(!String::from_utf8_lossy(&again.stdout).contains("rewritten"));
    }
    let out = run_cli(
        &["audit", "--format", "json", "--subject-jti", "old-subject"],
        Some(&config),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .collect();
    assert_eq!(ids, ["\"OLD2\"", "\"OLD1\""]);
}
