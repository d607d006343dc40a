use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn metadata_describes_the_token_endpoint() {
    let app = TestApp::spawn().await;
    let resp = app.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(resp.status(), 200);
    let m: Value = resp.json().await.unwrap();
    assert_eq!(m["issuer"], STS);
    assert_eq!(m["token_endpoint"], format!("{STS}/token"));
    assert_eq!(m["jwks_uri"], format!("{STS}/jwks.json"));
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!([
            TOKEN_EXCHANGE,
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        ])
    );
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
}

#[tokio::test]
async fn jwks_publishes_the_public_signing_key_only() {
    let app = TestApp::spawn().await;
    let resp = app.get("/jwks.json").await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let jwks: Value = resp.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], "sts-1");
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["use"], "sig");
    assert!(keys[0].get("d").is_none(), "no private part");
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["store"], "ok");
}
