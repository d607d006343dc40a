//! Transaction tokens (SPEC §8, draft-ietf-oauth-transaction-tokens-10): Tessera as the
//! Transaction Token Service of trust domain `trust-domain.example`. orders-svc plays the API
//! gateway at the edge, billing-svc a workload down the call chain that replaces the Txn-Token.
//! Tests named after a MUST of the draft's "Txn-Token Request Processing", "Txn-Token
//! Response" and "Txn-Token as a subject_token" sections check that MUST.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde_json::{Value, json};
use tessera::clock::{Clock, UnixTime};

use crate::helpers::*;

const TXN_TOKEN: &str = "urn:ietf:params:oauth:token-type:txn_token";
const SELF_SIGNED: &str = "urn:ietf:params:oauth:token-type:self_signed";
const UNSIGNED_JSON: &str = "urn:ietf:params:oauth:token-type:unsigned_json";
const REFRESH_TOKEN: &str = "urn:ietf:params:oauth:token-type:refresh_token";
const TRUST_DOMAIN: &str = "trust-domain.example";
const BILLING: (&str, &str) = ("billing-svc", "billing-secret");

/// The trust domain, a rule for the gateway (subjects from the corp issuer, the context it
/// builds), one for replacements down the chain, and one taking unsigned subjects from
/// billing-svc only.
fn tts(c: &mut RawConfig) {
    c.transaction_tokens = Some(entry(&format!(
        r#"trust_domain = "{TRUST_DOMAIN}"
max_replacements = 3"#
    )));
    c.append(
        r#"
[[rules]]
name = "gateway-txn"
mints = "txn_token"
clients = ["orders-svc"]
issuers = ["corp"]
scopes = ["trade.stocks", "trade.read"]
[rules.tctx]
action = "request.details.action"
quantity = "has(request.details.quantity) ? request.details.quantity : null"
email = "subject.email"
[rules.rctx]
req_ip = "request.context.req_ip"
gateway = "client"

[[rules]]
name = "chain-txn"
mints = "txn_token"
clients = ["billing-svc", "orders-svc"]
issuers = ["txn_token"]
scopes = ["trade.stocks", "trade.read"]
[rules.rctx]
chain = "'down-chain'"

[[rules]]
name = "batch-txn"
mints = "txn_token"
clients = ["billing-svc"]
issuers = ["unsigned_json"]
scopes = ["trade.read"]
"#,
    );
}

fn subject(app: &TestApp) -> String {
    app.subject_token(json!({"scope": "trade.stocks trade.read"}))
}

const DETAILS: &str = r#"{"action":"BUY","ticker":"MSFT","quantity":100}"#;
const CONTEXT: &str = r#"{"req_ip":"69.151.72.123","authn":"face"}"#;

/// A Txn-Token request as `client`, with `extra` form fields replacing or adding to the usual.
async fn request_as(
    app: &TestApp,
    client: (&str, &str),
    subject: &str,
    subject_type: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("requested_token_type", TXN_TOKEN),
        ("audience", TRUST_DOMAIN),
        ("scope", "trade.stocks"),
        ("subject_token", subject),
        ("subject_token_type", subject_type),
        ("request_context", CONTEXT),
        ("request_details", DETAILS),
    ];
    for (name, value) in extra {
        form.retain(|(n, _)| n != name);
        if !value.is_empty() {
            form.push((name, value));
        }
    }
    app.post_token(&form, Some(client)).await
}

async fn gateway_request(
    app: &TestApp,
    subject: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    request_as(
        app,
        ("orders-svc", ORDERS_SECRET),
        subject,
        ACCESS_TOKEN,
        extra,
    )
    .await
}

/// A granted Txn-Token response's body.
async fn granted(resp: reqwest::Response) -> Value {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

async fn txn_token(app: &TestApp) -> String {
    let body = granted(gateway_request(app, &subject(app), &[]).await).await;
    body["access_token"].as_str().unwrap().to_string()
}

/// A downstream workload validating a Txn-Token as the draft's "Txn-Token Validation" says,
/// with a standard JOSE library: the signature against the service's published keys, `aud` the
/// trust domain, not expired; and `typ`, so no other token of the service passes for one.
async fn validate_downstream(app: &TestApp, token: &str) -> Result<Value, String> {
    let jwks: JwkSet = app.get("/jwks.json").await.json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    if header.typ.as_deref() != Some("txntoken+jwt") {
        return Err(format!("typ {:?}", header.typ));
    }
    let jwk = jwks
        .find(header.kid.as_deref().ok_or("no kid")?)
        .ok_or("an unknown kid")?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[TRUST_DOMAIN]);
    validation.set_required_spec_claims(&["exp", "aud", "iat"]);
    validation.leeway = 0;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_gateway_gets_a_txn_token_that_a_downstream_workload_validates() {
    let app = TestApp::spawn_with(tts).await;
    let subject = subject(&app);
    let body = granted(gateway_request(&app, &subject, &[]).await).await;
    let token = body["access_token"].as_str().unwrap();
    let claims = validate_downstream(&app, token).await.unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], TRUST_DOMAIN);
    assert_eq!(claims["iss"], STS);
    assert_eq!(claims["scope"], "trade.stocks");
    assert_eq!(claims["req_wl"], "orders-svc");
    assert_eq!(
        claims["tctx"],
        json!({"action": "BUY", "quantity": 100, "email": "alice@example.com"}),
        "the rule builds tctx; ticker, which it does not name, is not copied"
    );
    assert_eq!(
        claims["rctx"],
        json!({"req_ip": "69.151.72.123", "gateway": "orders-svc"})
    );
    let txn = claims["txn"].as_str().unwrap();
    assert_eq!(txn.len(), 36, "a UUID: {txn}");
    assert_eq!(header_of(token)["typ"], "txntoken+jwt");
    // The audit trail: the kind of token and the transaction, a filter on either.
    let records = app.records(&["--txn", txn]);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["token_type"], "txn_token");
    assert_eq!(records[0]["txn"], txn);
    assert_eq!(records[0]["rule"], "gateway-txn");
    assert_eq!(records[0]["granted_audiences"], json!([TRUST_DOMAIN]));
    assert_eq!(app.records(&["--token-type", "txn_token"]).len(), 1);
    let csv = app.cli(&["audit", "--format", "csv", "--txn", txn]);
    let csv = String::from_utf8(csv.stdout).unwrap();
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .ends_with(",count,truncated,token_type,txn,grant_type,grant_kind"),
        "{csv}"
    );
    assert!(
        lines
            .next()
            .unwrap()
            .ends_with(&format!(",1,false,txn_token,{txn},token-exchange,")),
        "{csv}"
    );
    assert!(app.records(&["--token-type", "access_token"]).is_empty());
    let admin: Value = app
        .admin_get(&format!("/admin/exchanges?txn={txn}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(admin["items"][0]["txn"], txn);
    let metrics = app.admin_get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"client="orders-svc",rule="gateway-txn",token_type="txn_token"} 1"#),
        "{metrics}"
    );
    // An access-token exchange beside it is still an access-token exchange.
    assert_eq!(
        app.exchange_subject(&app.subject_token(json!({})))
            .await
            .status(),
        200
    );
    assert_eq!(app.records(&["--token-type", "access_token"]).len(), 1);
}

#[tokio::test]
async fn txn_token_response_must_be_n_a_with_the_txn_token_and_no_refresh_token() {
    let app = TestApp::spawn_with(tts).await;
    let resp = gateway_request(&app, &subject(&app), &[]).await;
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body = granted(resp).await;
    // "The token_type value MUST be set to N_A".
    assert_eq!(body["token_type"], "N_A");
    // "The issued_token_type value MUST be set to urn:ietf:params:oauth:token-type:txn_token".
    assert_eq!(body["issued_token_type"], TXN_TOKEN);
    // "The access_token value MUST be the Txn-Token JWT".
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(header_of(token)["typ"], "txntoken+jwt");
    // "The Txn-Token Response MUST NOT include the refresh_token value".
    assert!(body.get("refresh_token").is_none(), "{body}");
    let exp = claims_of(token)["exp"].as_i64().unwrap();
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!(
        (59..=60).contains(&expires_in),
        "the default 1m: {expires_in}"
    );
    assert!((exp - now() - expires_in).abs() <= 2);
}

#[tokio::test]
async fn txn_token_request_processing_must_authenticate_and_authorize_the_requesting_workload() {
    let app = TestApp::spawn_with(|c| {
        tts(c);
        c.append(
            r#"
[[clients]]
id = "stranger-svc"
secret_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
"#,
        );
    })
    .await;
    let subject = subject(&app);
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("requested_token_type", TXN_TOKEN),
        ("audience", TRUST_DOMAIN),
        ("scope", "trade.stocks"),
        ("subject_token", subject.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    // "MUST validate the requesting workload client authentication".
    assert_error(app.post_token(&form, None).await, 401, "invalid_client").await;
    assert_error(
        app.post_token(&form, Some(("orders-svc", "wrong"))).await,
        401,
        "invalid_client",
    )
    .await;
    // "... and determine if that workload is authorized to obtain the Txn-Tokens with the
    // requested value(s)": billing-svc has Txn-Token rules, none for the corp issuer's tokens.
    let desc = assert_error(
        request_as(&app, BILLING, &subject, ACCESS_TOKEN, &[]).await,
        400,
        "invalid_target",
    )
    .await;
    assert!(desc.contains("issuer"), "{desc}");
    // billing-svc's access-token rules do not make it a Txn-Token requester, nor the reverse.
    let only_access = TestApp::spawn().await;
    let theirs = only_access.subject_token(json!({"scope": "trade.stocks"}));
    let desc = assert_error(
        gateway_request(&only_access, &theirs, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("no Transaction Token Service"), "{desc}");
    let with_txn_rules_only = TestApp::spawn_with(|c| {
        tts(c);
        c.rules.retain(|r| r.name != "orders-to-inventory");
    })
    .await;
    let desc = assert_error(
        with_txn_rules_only
            .exchange_subject(&with_txn_rules_only.subject_token(json!({})))
            .await,
        400,
        "unauthorized_client",
    )
    .await;
    assert!(desc.contains("not allowed to exchange tokens"), "{desc}");
    let desc = assert_error(
        request_as(&app, ("stranger-svc", "x"), &subject, ACCESS_TOKEN, &[]).await,
        401,
        "invalid_client",
    )
    .await;
    assert!(!desc.is_empty());
}

#[tokio::test]
async fn txn_token_request_processing_must_validate_the_subject_token_signature() {
    let app = TestApp::spawn_with(tts).await;
    let forger = TestKey::generate(Algorithm::ES256, "forger");
    let forged = forger.sign_as(
        Algorithm::ES256,
        Some(&app.key.kid),
        &app.claims(json!({"scope": "trade.stocks"})),
    );
    let desc = assert_error(
        gateway_request(&app, &forged, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("signature"), "{desc}");
    let expired = app.subject_token(json!({"scope": "trade.stocks", "exp": now() - 3600}));
    let desc = assert_error(
        gateway_request(&app, &expired, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("expired"), "{desc}");
    let record = &app.records(&["--token-type", "txn_token", "--limit", "1"])[0];
    assert_eq!(record["outcome"], "denied");
}

#[tokio::test]
async fn txn_token_request_processing_must_set_iat_aud_exp_a_unique_txn_and_the_scope() {
    let clock = Clock::fixed(UnixTime::from_secs(now()));
    let app = TestApp::start_with_clock(clock.clone(), tts).await;
    app.wait_ready().await;
    let at = now() + 5;
    clock.set(UnixTime::from_secs(at));
    let subject = subject(&app);
    let a = claims_of(
        granted(gateway_request(&app, &subject, &[]).await).await["access_token"]
            .as_str()
            .unwrap(),
    );
    let b = claims_of(
        granted(gateway_request(&app, &subject, &[("scope", "trade.read")]).await).await
            ["access_token"]
            .as_str()
            .unwrap(),
    );
    // "MUST set the iat claim to the time of issuance".
    assert_eq!(a["iat"], at);
    // "MUST set the aud claim to an identifier representing the Trust Domain".
    assert_eq!(a["aud"], TRUST_DOMAIN);
    // "MUST set the exp claim": the default one minute, within the subject token's life.
    assert_eq!(a["exp"], at + 60);
    // "MUST set the txn claim to a unique ID specific to this transaction".
    assert_ne!(a["txn"], b["txn"]);
    // "MUST evaluate the value specified in the scope parameter".
    assert_eq!(
        (a["scope"].as_str(), b["scope"].as_str()),
        (Some("trade.stocks"), Some("trade.read"))
    );
    // "The TTS determines the value to specify as the sub": the subject's, never another.
    assert_eq!(
        (a["sub"].as_str(), b["sub"].as_str()),
        (Some("alice"), Some("alice"))
    );
    // The access token presented is never in the Txn-Token.
    let raw = serde_json::to_string(&a).unwrap();
    assert!(
        !raw.contains(&subject),
        "the subject token leaked into the Txn-Token"
    );
    // A subject token expiring sooner cuts the Txn-Token's life.
    let short = app.subject_token(json!({"scope": "trade.stocks", "exp": at + 20}));
    let c = claims_of(
        granted(gateway_request(&app, &short, &[]).await).await["access_token"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(c["exp"], at + 20);
}

#[tokio::test]
async fn bad_txn_requests_get_errors_a_client_developer_can_act_on() {
    let app = TestApp::spawn_with(|c| {
        tts(c);
        c.server.max_body_bytes = Some(65536);
    })
    .await;
    let subject = subject(&app);
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(8200));
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("request_details", "{\"action\":")],
            "invalid_request",
            "request_details is not valid JSON",
        ),
        (
            vec![("request_context", "[1,2]")],
            "invalid_request",
            "request_context must be a JSON object",
        ),
        (
            vec![("request_details", big.as_str())],
            "invalid_request",
            "longer than 8192 bytes",
        ),
        (
            vec![("audience", "other-domain.example")],
            "invalid_target",
            "trust domain \"trust-domain.example\"",
        ),
        (
            vec![("resource", "https://api.example/")],
            "invalid_request",
            "exactly one audience",
        ),
        (vec![("scope", "")], "invalid_request", "scope parameter"),
        (
            vec![("scope", "admin")],
            "invalid_scope",
            "not allowed by rule \"gateway-txn\"",
        ),
        (
            vec![("subject_token_type", REFRESH_TOKEN)],
            "invalid_request",
            "refresh token never obtains a Txn-Token",
        ),
        (
            vec![
                ("actor_token", subject.as_str()),
                ("actor_token_type", ACCESS_TOKEN),
            ],
            "invalid_request",
            "takes no actor_token",
        ),
    ];
    for (extra, code, says) in cases {
        let desc = assert_error(gateway_request(&app, &subject, &extra).await, 400, code).await;
        assert!(desc.contains(says), "{extra:?}: {desc}");
        assert!(
            !desc.contains(&subject),
            "a description never echoes a token"
        );
    }
    // Two audiences.
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("requested_token_type", TXN_TOKEN),
        ("audience", TRUST_DOMAIN),
        ("audience", "inventory-api"),
        ("scope", "trade.stocks"),
        ("subject_token", subject.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    let desc = assert_error(app.exchange(&form).await, 400, "invalid_request").await;
    assert!(desc.contains("exactly one audience"), "{desc}");
    // A subject whose scope is unknown is refused, never taken as unconstrained.
    let no_scope = app.subject_token(json!({"scope": null}));
    let desc = assert_error(
        gateway_request(&app, &no_scope, &[]).await,
        400,
        "invalid_scope",
    )
    .await;
    assert!(desc.contains("carries no scope"), "{desc}");
    // Wider than the subject's scope.
    let narrow = app.subject_token(json!({"scope": "trade.read"}));
    let desc = assert_error(
        gateway_request(&app, &narrow, &[]).await,
        400,
        "invalid_scope",
    )
    .await;
    assert!(desc.contains("not carried by the subject token"), "{desc}");
    // A rule's tctx that the request cannot fill says which claim and where to look.
    let desc = assert_error(
        gateway_request(
            &app,
            &subject,
            &[("request_details", "{\"ticker\":\"MSFT\"}")],
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("tctx.action"), "{desc}");
    // Context parameters belong to Txn-Token requests only.
    let desc = assert_error(
        app.exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", subject.as_str()),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "inventory-api"),
            ("request_details", DETAILS),
        ])
        .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("belong to Txn-Token requests"), "{desc}");
    // Every refusal is on record as a Txn-Token request.
    let denied = app.records(&["--token-type", "txn_token", "--outcome", "denied"]);
    assert_eq!(denied.len(), 13);
}

#[tokio::test]
async fn a_replacement_must_keep_txn_sub_aud_and_the_chain_and_may_only_narrow() {
    let app = TestApp::spawn_with(tts).await;
    let first = txn_token(&app).await;
    let before = claims_of(&first);
    let body = granted(
        request_as(
            &app,
            BILLING,
            &first,
            TXN_TOKEN,
            &[
                ("scope", "trade.stocks"),
                ("request_details", ""),
                ("request_context", ""),
            ],
        )
        .await,
    )
    .await;
    let token = body["access_token"].as_str().unwrap();
    let after = validate_downstream(&app, token).await.unwrap();
    // "MUST NOT modify txn, sub, and aud values of the Txn-Token in the request".
    for claim in ["txn", "sub", "aud"] {
        assert_eq!(after[claim], before[claim], "{claim}");
    }
    // "MUST maintain the Call Chain of workloads that requested the Txn-Token being replaced".
    assert_eq!(after["req_wl"], "orders-svc,billing-svc");
    // "MUST NOT enable modification to asserted values that expand the scope of permitted
    // actions": what the gateway asserted in tctx is kept as it is; the request's environment
    // (rctx) may gain values ("MAY enable additional asserted values").
    assert_eq!(after["tctx"], before["tctx"]);
    let mut rctx = before["rctx"].clone();
    rctx["chain"] = json!("down-chain");
    assert_eq!(after["rctx"], rctx);
    // Its lifetime never extends the replaced token's.
    assert!(after["exp"].as_i64() <= before["exp"].as_i64());
    // Scope may only narrow: a further hop narrows to trade.stocks … and cannot widen again.
    let narrowed = claims_of(&first);
    assert_eq!(narrowed["scope"], "trade.stocks");
    let wider = request_as(
        &app,
        BILLING,
        token,
        TXN_TOKEN,
        &[
            ("scope", "trade.read"),
            ("request_details", ""),
            ("request_context", ""),
        ],
    )
    .await;
    let desc = assert_error(wider, 400, "invalid_scope").await;
    assert!(desc.contains("\"trade.read\""), "{desc}");
    // A third hop keeps the whole chain.
    let third = granted(
        request_as(
            &app,
            ("orders-svc", ORDERS_SECRET),
            token,
            TXN_TOKEN,
            &[("request_details", ""), ("request_context", "")],
        )
        .await,
    )
    .await;
    let third = claims_of(third["access_token"].as_str().unwrap());
    assert_eq!(third["req_wl"], "orders-svc,billing-svc,orders-svc");
    assert_eq!(third["txn"], before["txn"]);
    // The transaction's records, in the audit trail, tell its story.
    let txn = before["txn"].as_str().unwrap();
    let records = app.records(&["--txn", txn]);
    assert_eq!(records.len(), 4, "{records:?}");
    assert_eq!(
        records.iter().filter(|r| r["outcome"] == "granted").count(),
        3
    );
    assert!(records.iter().all(|r| r["txn"] == txn));
    assert_eq!(records[0]["subject_issuer"], "txn_token");
}

#[tokio::test]
async fn a_replacement_must_not_change_what_the_replaced_txn_token_asserts() {
    let app = TestApp::spawn_with(|c| {
        tts(c);
        c.rule_mut("chain-txn")
            .tctx
            .insert("action".into(), "'SELL'".into());
    })
    .await;
    let first = txn_token(&app).await;
    let desc = assert_error(
        request_as(&app, BILLING, &first, TXN_TOKEN, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("tctx.action would change"), "{desc}");
}

#[tokio::test]
async fn an_expired_txn_token_must_never_be_replaced() {
    let clock = Clock::fixed(UnixTime::from_secs(now()));
    let app = TestApp::start_with_clock(clock.clone(), tts).await;
    app.wait_ready().await;
    let first = txn_token(&app).await;
    let exp = claims_of(&first)["exp"].as_i64().unwrap();
    clock.set(UnixTime::from_secs(exp - 1));
    granted(request_as(&app, BILLING, &first, TXN_TOKEN, &[]).await).await;
    // No leeway: at its exp it is expired.
    clock.set(UnixTime::from_secs(exp));
    let desc = assert_error(
        request_as(&app, BILLING, &first, TXN_TOKEN, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("expired"), "{desc}");
}

#[tokio::test]
async fn only_this_trust_domains_own_txn_tokens_are_replaced() {
    let app = TestApp::spawn_with(tts).await;
    let genuine = claims_of(&txn_token(&app).await);
    // Signed by another key, though it says it is ours.
    let foreign = app.key.sign_named(
        "RS256",
        json!({"typ": "txntoken+jwt", "kid": app.key.kid}),
        &genuine,
    );
    let desc = assert_error(
        request_as(&app, BILLING, &foreign, TXN_TOKEN, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("this server issued"), "{desc}");
    // An access token this server minted is no Txn-Token.
    let access = app.minted(json!({})).await;
    let desc = assert_error(
        request_as(&app, BILLING, &access, TXN_TOKEN, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("not a Txn-Token"), "{desc}");
    // Another trust domain's Txn-Token, signed with the same keys: the same service configured
    // for another domain refuses it.
    let token = txn_token(&app).await;
    let (other, _, _) = app
        .serve_copy("other", "info", |c| {
            c.transaction_tokens.as_mut().unwrap().trust_domain = "other-domain.example".into();
        })
        .await;
    let resp = app
        .http
        .post(format!("{}/token", other.url))
        .basic_auth(BILLING.0, Some(BILLING.1))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([
                ("grant_type", TOKEN_EXCHANGE),
                ("requested_token_type", TXN_TOKEN),
                ("audience", "other-domain.example"),
                ("scope", "trade.stocks"),
                ("subject_token", token.as_str()),
                ("subject_token_type", TXN_TOKEN),
            ])
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let desc = assert_error(resp, 400, "invalid_request").await;
    assert!(desc.contains("another trust domain"), "{desc}");
}

#[tokio::test]
async fn a_txn_token_is_never_taken_as_an_access_token() {
    let app = TestApp::spawn_with(|c| {
        tts(c);
        c.append(&format!(
            r#"
[[issuers]]
id = "self"
issuer = "{STS}"
audiences = ["{TRUST_DOMAIN}", "{STS}"]

[[rules]]
name = "re-exchange"
clients = ["orders-svc"]
issuers = ["self"]
audiences = ["inventory-api"]
scopes = ["trade.stocks"]
scope_mode = "grant"
"#
        ));
    })
    .await;
    let token = txn_token(&app).await;
    for token_type in [ACCESS_TOKEN, "urn:ietf:params:oauth:token-type:jwt"] {
        let desc = assert_error(
            app.exchange(&[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", token.as_str()),
                ("subject_token_type", token_type),
                ("audience", "inventory-api"),
                ("scope", "trade.stocks"),
            ])
            .await,
            400,
            "invalid_request",
        )
        .await;
        assert!(
            desc.contains("is a Txn-Token, which is not an access token"),
            "{desc}"
        );
    }
    let desc = assert_error(
        app.exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", token.as_str()),
            ("subject_token_type", TXN_TOKEN),
            ("audience", "inventory-api"),
        ])
        .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("taken only by Txn-Token requests"), "{desc}");
    // Introspection does not call it an active access token either.
    let resp = app
        .post_form(
            "/introspect",
            &[("token", token.as_str())],
            ("orders-svc", ORDERS_SECRET),
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["active"], false, "{body}");
}

#[tokio::test]
async fn replacements_per_transaction_are_bounded() {
    let app = TestApp::spawn_with(tts).await;
    let first = txn_token(&app).await;
    // max_replacements = 3, in all, however they branch.
    for _ in 0..3 {
        granted(request_as(&app, BILLING, &first, TXN_TOKEN, &[]).await).await;
    }
    let desc = assert_error(
        request_as(&app, BILLING, &first, TXN_TOKEN, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("max_replacements"), "{desc}");
    // Another transaction has its own count.
    let other = txn_token(&app).await;
    granted(request_as(&app, BILLING, &other, TXN_TOKEN, &[]).await).await;
}

#[tokio::test]
async fn concurrent_replacements_never_pass_the_bound() {
    let app = TestApp::spawn_with(tts).await;
    let first = txn_token(&app).await;
    let attempts = (0..12).map(|_| request_as(&app, BILLING, &first, TXN_TOKEN, &[]));
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_txn_token_from_a_revoked_subject_token_is_not_replaced() {
    let app = TestApp::spawn_with(tts).await;
    let subject = subject(&app);
    let first = granted(gateway_request(&app, &subject, &[]).await).await;
    let first = first["access_token"].as_str().unwrap();
    let subject_jti = claims_of(&subject)["jti"].as_str().unwrap().to_string();
    let resp = app.admin_revoke(json!({"subject_jti": subject_jti})).await;
    assert_eq!(resp.status(), 200);
    let desc = assert_error(
        request_as(&app, BILLING, first, TXN_TOKEN, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("revoked"), "{desc}");
    // A first Txn-Token refused at its commit began no transaction: its record names none.
    let desc = assert_error(
        gateway_request(&app, &subject, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("revoked"), "{desc}");
    let record = &app.records(&["--limit", "1"])[0];
    assert!(record["txn"].is_null(), "{record}");
    assert_eq!(record["token_type"], "txn_token");
}

#[tokio::test]
async fn a_workload_without_an_inbound_token_asserts_its_subject() {
    let key = TestKey::generate(Algorithm::ES256, "batch-1");
    let keys = TestIdp::start(&[&key]).await;
    let jwks = format!("{}/jwks", keys.url);
    let app = TestApp::spawn_with(|c| {
        tts(c);
        c.clients
            .push(entry(&format!("id = \"batch-svc\"\njwks_uri = \"{jwks}\"")));
        c.append(
            r#"
[[rules]]
name = "batch-self-signed"
mints = "txn_token"
clients = ["batch-svc"]
issuers = ["self_signed"]
scopes = ["trade.read"]
"#,
        );
    })
    .await;
    let self_signed = |extra: Value| {
        let mut claims = json!({"iss": "batch-svc", "sub": "alice", "aud": STS, "iat": now(), "exp": now() + 60, "scope": "trade.read"});
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        key.sign(&claims)
    };
    let assertion = |key: &TestKey| {
        key.sign(&json!({"iss": "batch-svc", "sub": "batch-svc", "aud": format!("{STS}/token"), "iat": now(), "exp": now() + 60, "jti": uuid_like()}))
    };
    let request = |subject: String, subject_type: &'static str, client_key: &TestKey| {
        let form = vec![
            ("grant_type", TOKEN_EXCHANGE.to_string()),
            ("requested_token_type", TXN_TOKEN.into()),
            ("audience", TRUST_DOMAIN.into()),
            ("scope", "trade.read".into()),
            ("subject_token", subject),
            ("subject_token_type", subject_type.into()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ),
            ("client_assertion", assertion(client_key)),
        ];
        let form: Vec<(&str, String)> = form;
        let http = app.http.clone();
        let url = format!("{}/token", app.url);
        let body = serde_urlencoded::to_string(&form).unwrap();
        async move {
            http.post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    // The client's keys arrive in the background; until then its requests get 503.
    let mut resp = request(self_signed(json!({})), SELF_SIGNED, &key).await;
    for _ in 0..50 {
        if resp.status() != 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        resp = request(self_signed(json!({})), SELF_SIGNED, &key).await;
    }
    let body = granted(resp).await;
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(
        (claims["sub"].as_str(), claims["req_wl"].as_str()),
        (Some("alice"), Some("batch-svc"))
    );
    // Signed by the client, so its iss is the client and its aud this server.
    for (extra, says) in [
        (
            json!({"iss": "orders-svc"}),
            "its iss must be the requesting client's id",
        ),
        (json!({"aud": "https://elsewhere.example"}), "aud"),
        (
            json!({"aud": format!("{STS}/token")}),
            "its aud must be this server's issuer",
        ),
        (json!({"exp": now() + 7200}), "max_assertion_lifetime"),
    ] {
        let desc = assert_error(
            request(self_signed(extra.clone()), SELF_SIGNED, &key).await,
            400,
            "invalid_request",
        )
        .await;
        assert!(desc.contains(says), "{extra}: {desc}");
    }
    let other = TestKey::generate(Algorithm::ES256, "batch-1");
    let desc = assert_error(
        request(other.sign(&json!({"iss": "batch-svc", "sub": "alice", "aud": STS, "iat": now(), "exp": now() + 60, "scope": "trade.read"})), SELF_SIGNED, &key).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("signature"), "{desc}");
    // An unsigned subject: only where a rule takes it from that client.
    let unsigned = r#"{"sub":"batch-job-7","scope":"trade.read"}"#;
    let desc = assert_error(
        request(unsigned.into(), UNSIGNED_JSON, &key).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(
        desc.contains("no rule takes unsigned_json subject tokens from client \"batch-svc\""),
        "{desc}"
    );
    let record = &app.records(&["--limit", "1"])[0];
    assert!(
        record["subject"].is_null(),
        "nothing asserted is recorded unasked: {record}"
    );
    let body = granted(
        request_as(
            &app,
            BILLING,
            unsigned,
            UNSIGNED_JSON,
            &[("scope", "trade.read")],
        )
        .await,
    )
    .await;
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], "batch-job-7");
    let record = &app.records(&["--limit", "1"])[0];
    assert_eq!(record["subject_issuer"], "unsigned_json");
    // Neither type obtains an access token.
    let desc = assert_error(
        app.exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", unsigned),
            ("subject_token_type", UNSIGNED_JSON),
            ("audience", "inventory-api"),
        ])
        .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("taken only by Txn-Token requests"), "{desc}");
}

#[tokio::test]
async fn the_metadata_lists_txn_token_among_the_requested_token_types() {
    let app = TestApp::spawn_with(tts).await;
    let meta: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    let types = meta["requested_token_types_supported"].as_array().unwrap();
    assert!(types.contains(&json!(TXN_TOKEN)), "{meta}");
    let plain = TestApp::spawn().await;
    let meta: Value = plain
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !meta["requested_token_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(TXN_TOKEN))
    );
}

fn verify_chain(app: &TestApp) -> (bool, String) {
    let out = app.cli(&["audit", "verify"]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn a_records_kind_and_transaction_are_in_its_hash_and_go_with_it() {
    let app = TestApp::spawn_with(tts).await;
    let token = txn_token(&app).await;
    let txn = claims_of(&token)["txn"].as_str().unwrap().to_string();
    let (ok, text) = verify_chain(&app);
    assert!(ok, "{text}");
    // Rewriting the transaction a record names, or dropping what says it was a Txn-Token
    // request, is found by the chain.
    app.sql(&format!(
        "UPDATE exchange_kinds SET txn = 'forged' WHERE txn = '{txn}';"
    ));
    let (ok, text) = verify_chain(&app);
    assert!(!ok && text.contains("altered"), "{text}");
    app.sql("DELETE FROM exchange_kinds;");
    let (ok, text) = verify_chain(&app);
    assert!(!ok && text.contains("altered"), "{text}");

    // Retention prunes a Txn-Token request's record and what is kept beside it together.
    let pruned = TestApp::spawn_with(|c| {
        tts(c);
        c.storage.retention = Some("2s".into());
    })
    .await;
    txn_token(&pruned).await;
    let mut left = usize::MAX;
    for _ in 0..100 {
        left = pruned.records(&[]).len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(left, 0);
    assert_eq!(
        crate::storage::count_rows(&pruned.database.url, pruned.dir.path(), "exchange_kinds"),
        0,
        "a kind row outlived its record"
    );
    let (ok, text) = verify_chain(&pruned);
    assert!(ok, "{text}");
}
