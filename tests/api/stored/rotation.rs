//! Signing-key rotation: several keys, the first signs, all are published.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn tokens_signed_before_a_rotation_still_verify_after_it() {
    let app = TestApp::spawn().await;
    let before = app.minted(json!({})).await;
    assert_eq!(header_of(&before)["kid"], "sts-1");
    app.stop().await;

    // The rotation's last step: the new key signs, the old one is still published.
    let pem = tessera::keys::generate_pkcs8_pem(Algorithm::EdDSA).unwrap();
    std::fs::write(app.dir.path().join("next.pem"), pem).unwrap();
    let mut config = app.config();
    config.signing.keys.insert(
        0,
        RawSigningKey {
            kid: "sts-2".into(),
            alg: "EdDSA".into(),
            private_key_file: "next.pem".into(),
        },
    );
    write_config(&app.config_path, &config);
    let next =
        tessera::startup::Application::build(tessera::config::load(&app.config_path).unwrap())
            .await
            .unwrap();
    let url = format!("http://127.0.0.1:{}", next.port());
    let handle = next.handle();
    tokio::spawn(next.run_until_stopped());

    let jwks: JwkSet = app
        .http
        .get(format!("{url}/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.as_deref())
        .collect();
    assert_eq!(
        kids,
        vec!["sts-2", "sts-1"],
        "both published, the signing key first"
    );
    let old_key = DecodingKey::from_jwk(jwks.find("sts-1").unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["inventory-api"]);
    assert!(
        jsonwebtoken::decode::<Value>(&before, &old_key, &validation).is_ok(),
        "the old token verifies after the rotation"
    );
    let answer: Value = app
        .http
        .post(format!("{url}/introspect"))
        .basic_auth("orders-svc", Some(ORDERS_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={before}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["active"], true, "and is still active");
    handle.stop(true).await;
}
