//! SIGHUP reload of the real binary, under continuous load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_rules_under_load_and_a_bad_file_changes_nothing() {
    let app = TestApp::spawn().await;
    let (served, path, mut config) = app.serve_copy("served", "info", |_| {}).await;
    let http = reqwest::Client::new();
    let subject = app.subject_token(json!({"exp": now() + 3600}));
    assert_eq!(
        exchange_at(&http, &served.url, &subject, "billing-api").await,
        400
    );

    // Continuous load on what every configuration allows.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, sent, failed, http, url, subject) = (
            stop.clone(),
            sent.clone(),
            failed.clone(),
            http.clone(),
            served.url.clone(),
            subject.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let status = exchange_at(&http, &url, &subject, "inventory-api").await;
                sent.fetch_add(1, Ordering::Relaxed);
                if status != 200 {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    // A wider rule, then SIGHUP.
    config
        .rule_mut("orders-to-inventory")
        .audiences
        .push("billing-api".into());
    let wider = config.to_toml();
    std::fs::write(&path, &wider).unwrap();
    served.hangup();
    let mut status = 0;
    for _ in 0..100 {
        status = exchange_at(&http, &served.url, &subject, "billing-api").await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "the reloaded rule grants billing-api");

    // A broken file: logged, and the configuration in force keeps serving.
    std::fs::write(&path, "[server\nthis is not TOML").unwrap();
    served.hangup();
    for _ in 0..100 {
        if served.logged("reload refused") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served.logged("reload refused"), "the refusal is logged");
    assert_eq!(
        exchange_at(&http, &served.url, &subject, "billing-api").await,
        200
    );

    // A few more reloads of the good file while the load goes on.
    std::fs::write(&path, &wider).unwrap();
    for _ in 0..3 {
        served.hangup();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    assert!(sent.load(Ordering::Relaxed) > 10, "the load ran");
    // A rebuilt remote issuer would have no keys until fetched (503s): none failing also shows
    // that unchanged issuers kept their cached keys.
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no request failed during reloads"
    );
    assert!(served.logged("configuration reloaded"));
}
