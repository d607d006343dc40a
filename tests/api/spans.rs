//! Tracing spans: what is logged while a request runs names the request, its client and rule.

use serde_json::json;

use crate::helpers::*;

/// A token signed with a key the server has not seen makes it fetch the issuer's keys again,
/// inside the request: that fetch's log line carries the request's span (its id, as the
/// response's `X-Request-Id` says it, and its client) and its own (the issuer).
#[tokio::test]
async fn a_line_logged_inside_a_request_names_the_request_and_its_client() {
    let app = TestApp::spawn().await;
    let (served, _, _) = app.serve_copy("spans", "info", |c| c).await;
    let fresh = TestKey::generate(jsonwebtoken::Algorithm::ES256, "rotated-1");
    app.idp.publish(&[&app.key, &fresh]);
    let subject = fresh.sign(&app.claims(json!({})));
    let resp = exchange_request(&app.http, &served.url, &subject, "inventory-api")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let inside = format!("token_request{{request_id={request_id} client_id=\"orders-svc\"}}");
    for _ in 0..100 {
        if served.count_logged(&inside) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        served.logged(&format!("{inside}:key_fetch{{issuer=corp}}")),
        "no line inside the request's span {inside}: {:?}",
        served.lines_with("issuer")
    );
}
