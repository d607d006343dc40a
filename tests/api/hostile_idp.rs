//! Identity providers that hang, answer huge or malformed documents, or redirect: each fetch is
//! bounded, the last good keys keep serving, other issuers are unaffected, and metrics and
//! logs say what happened.

use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_identity_provider_affects_nothing_but_its_own_refetch() {
    let partner_key = TestKey::generate(Algorithm::ES256, "partner-1");
    let partner = TestIdp::start(&[&partner_key]).await;
    let partner_url = partner.url.clone();
    let app = TestApp::spawn_with(|c| {
        c.append(&format!(
            r#"
[[issuers]]
id = "partner"
issuer = "{partner_url}"
jwks_uri = "{partner_url}/jwks"
algorithms = ["ES256"]
audiences = ["{STS}"]
"#
        ));
        c.rule_mut("orders-to-inventory")
            .issuers
            .push("partner".into());
    })
    .await;
    let ghost = TestKey::generate(Algorithm::ES256, "ghost");
    for behaviour in [
        Behaviour::Huge,
        Behaviour::Malformed,
        Behaviour::Redirect,
        Behaviour::Hang,
    ] {
        app.idp.behave(behaviour);
        // A token under an unknown kid makes Tessera refetch from the hostile provider.
        let refetching = {
            let (http, url, token) = (
                app.http.clone(),
                app.url.clone(),
                ghost.sign(&app.claims(json!({}))),
            );
            tokio::spawn(async move { exchange_at(&http, &url, &token, "inventory-api").await })
        };
        // Meanwhile another issuer's token is exchanged, and so is corp's own, on its last good keys.
        let partner_token = partner_key.sign(&app.claims(json!({"iss": partner.url})));
        assert_eq!(
            app.exchange_subject(&partner_token).await.status(),
            200,
            "{behaviour:?}: partner"
        );
        if behaviour == Behaviour::Hang {
            assert!(
                !refetching.is_finished(),
                "the partner answered while corp's fetch still hung"
            );
        }
        // The refetch ends, bounded, with the unknown kid refused.
        assert_eq!(
            refetching.await.unwrap(),
            400,
            "{behaviour:?}: the unknown kid"
        );
        assert_eq!(
            app.exchange_subject(&app.subject_token(json!({})))
                .await
                .status(),
            200,
            "{behaviour:?}: last good keys"
        );
    }
    let metrics = app
        .http
        .get(format!("{}/metrics", app.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tessera_jwks_fetches_total{issuer=\"corp\",result=\"error\"} 4"),
        "{metrics}"
    );
    let ready: serde_json::Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(
        ready["status"], "ready",
        "last good keys keep the issuer ready"
    );
}
