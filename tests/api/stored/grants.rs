//! Across trust domains (SPEC §9): domain A's Tessera issues JWT authorization grants
//! (draft-ietf-oauth-identity-chaining) and ID-JAGs (draft-ietf-oauth-identity-assertion-authz-
//! grant); domain B's Tessera, a second real instance with its own database, trusting A's JWKS
//! over HTTP, takes them with RFC 7523's `jwt-bearer` grant. Tests named after a MUST of either
//! draft's processing rules check that MUST.

use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation, jwk::JwkSet};
use serde_json::{Value, json};
use tessera::config::TokenKind;

use crate::helpers::*;

const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Domain B's authorization server, and the API behind it.
const AS_B: &str = "https://as.b.example";
const API_B: &str = "https://api.b.example/";
const CHAT_B: &str = "https://chat.b.example/";

/// Domain A: the test configuration, its IdP's ID tokens accepted too, and two rules for
/// domain B: a JWT authorization grant naming the user by email, and ID-JAGs for B's chat.
fn domain_a(c: &mut RawConfig) {
    c.issuer_mut("corp").accept = Some(vec![TokenKind::AccessToken, TokenKind::IdToken]);
    c.append(&format!(
        r#"
[[rules]]
name = "to-domain-b"
mints = "authorization_grant"
clients = ["orders-svc"]
issuers = ["corp"]
audiences = ["{AS_B}"]
scopes = ["inventory:read"]
default_scopes = ["inventory:read"]
subject_claim = "email"
copy_claims = ["tenant"]
ttl = "2m"

[[rules]]
name = "chat-id-jag"
mints = "id_jag"
clients = ["orders-svc"]
issuers = ["corp"]
audiences = ["{AS_B}"]
resources = ["{CHAT_B}", "{API_B}"]
scopes = ["chat.read", "chat.history"]
"#
    ));
}

/// Domain B, trusting domain A's grants (keys from A's JWKS over HTTP) and, for grants a test
/// forges, those of its own test IdP; one rule for orders-svc, its client in domain B.
fn domain_b(a_url: &str) -> impl FnOnce(&mut RawConfig) {
    let a_url = a_url.to_string();
    move |c: &mut RawConfig| {
        c.server.issuer = AS_B.into();
        c.rules.clear();
        // Its access tokens are typed, so that they and its grants are told apart.
        let corp = c.issuer_mut("corp");
        corp.accept = Some(vec![
            TokenKind::AccessToken,
            TokenKind::AuthorizationGrant,
            TokenKind::IdJag,
        ]);
        corp.access_token_typ = Some("at+jwt".into());
        c.append(&format!(
            r#"
[[issuers]]
id = "domain-a"
issuer = "{STS}"
jwks_uri = "{a_url}/jwks.json"
accept = ["authorization_grant", "id_jag"]

[[rules]]
name = "from-domain-a"
clients = ["orders-svc"]
issuers = ["domain-a", "corp"]
resources = ["{API_B}", "{CHAT_B}"]
scopes = ["inventory:read", "chat.read", "chat.history"]
actor = "none"
"#
        ));
    }
}

async fn domains() -> (TestApp, TestApp) {
    let a = TestApp::spawn_with(domain_a).await;
    let b = TestApp::spawn_with(domain_b(&a.url)).await;
    (a, b)
}

/// A token exchange at A for a grant for B.
async fn grant_request(a: &TestApp, subject: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("requested_token_type", JWT),
        ("audience", AS_B),
    ];
    form.extend_from_slice(extra);
    a.exchange(&form).await
}

async fn granted(resp: reqwest::Response) -> Value {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// The grant domain A issues for `subject`.
async fn grant_from_a(a: &TestApp, subject: &str) -> String {
    let body = granted(grant_request(a, subject, &[]).await).await;
    body["access_token"].as_str().unwrap().to_string()
}

/// `jwt-bearer` at `b` as orders-svc.
async fn take(b: &TestApp, assertion: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![("grant_type", JWT_BEARER), ("assertion", assertion)];
    form.extend_from_slice(extra);
    b.exchange(&form).await
}

/// An ID token from the test IdP for `client`, as single sign-on gives the client.
fn id_token(app: &TestApp, client: &str, extra: Value) -> String {
    let mut claims = app.claims(json!({
        "aud": client, "nonce": "n-1", "auth_time": now() - 30, "acr": "phr",
        "amr": ["mfa", "hwk"], "scope": null,
    }));
    if let (Some(c), Value::Object(e)) = (claims.as_object_mut(), extra) {
        c.extend(e);
    }
    app.key.sign(&claims)
}

async fn id_jag_request(a: &TestApp, subject: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ID_TOKEN),
        ("requested_token_type", ID_JAG),
        ("audience", AS_B),
    ];
    form.extend_from_slice(extra);
    a.exchange(&form).await
}

/// A grant signed by B's test IdP (trusted by B for grants), with these claims over valid ones.
fn forged(b: &TestApp, typ: &str, extra: Value) -> String {
    let t = now();
    let mut claims = json!({
        "iss": b.idp.url, "sub": "alice", "aud": AS_B, "iat": t, "exp": t + 120,
        "jti": format!("grant-{}", uuid_like()), "scope": "inventory:read chat.read",
        "client_id": "orders-svc",
    });
    if let (Some(c), Value::Object(e)) = (claims.as_object_mut(), extra) {
        for (k, v) in e {
            if v.is_null() {
                c.remove(&k);
            } else {
                c.insert(k, v);
            }
        }
    }
    b.key
        .sign_named("RS256", json!({"typ": typ, "kid": b.key.kid}), &claims)
}

/// A standard JOSE library's check of a token `app` signed: signature against its published
/// keys, `typ`, `aud`, lifetime.
async fn validate(app: &TestApp, token: &str, typ: &str, aud: &str) -> Value {
    let jwks: JwkSet = app.get("/jwks.json").await.json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some(typ));
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[aud]);
    validation.set_required_spec_claims(&["exp", "aud", "iat", "sub", "iss"]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

#[tokio::test]
async fn the_grant_aud_must_identify_the_requested_authorization_server_alone() {
    let a = TestApp::spawn_with(domain_a).await;
    let subject = a.subject_token(json!({"tenant": "acme", "email": "alice@a.example"}));
    let body = granted(grant_request(&a, &subject, &[("scope", "inventory:read")]).await).await;
    assert_eq!(body["token_type"], "N_A", "not an access token: {body}");
    assert_eq!(body["issued_token_type"], JWT);
    assert_eq!(body["scope"], "inventory:read");
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap();
    let claims = validate(&a, token, "JWT", AS_B).await;
    // The aud MUST identify the requested authorization server: that one, as a string.
    assert_eq!(claims["aud"], AS_B);
    assert_eq!(claims["iss"], STS);
    // Subject mapping, copied claims, the downscoped scope.
    assert_eq!(claims["sub"], "alice@a.example");
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(claims["scope"], "inventory:read");
    assert!(claims.get("client_id").is_none() && claims.get("nonce").is_none());
    let life = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(life > 0 && life <= 120, "the rule's ttl: {life}");
    assert_eq!(body["expires_in"].as_i64().unwrap(), life);
    let again = grant_from_a(&a, &subject).await;
    assert_ne!(claims["jti"], claims_of(&again)["jti"], "a unique jti each");
    // A scope beyond the subject's or the rule's is refused, naming it.
    let desc = assert_error(
        grant_request(&a, &subject, &[("scope", "inventory:write")]).await,
        400,
        "invalid_scope",
    )
    .await;
    assert!(desc.contains("inventory:write"), "{desc}");
}

#[tokio::test]
async fn unknown_or_unacceptable_audiences_must_be_denied_as_rfc8693_says() {
    let a = TestApp::spawn_with(domain_a).await;
    let subject = a.subject_token(json!({}));
    // A server no rule names.
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("requested_token_type", JWT),
        ("audience", "https://as.c.example"),
    ];
    assert_error(a.exchange(&form).await, 400, "invalid_target").await;
    // A grant is for one authorization server: two targets are refused, not split.
    let desc = assert_error(
        grant_request(&a, &subject, &[("resource", "https://as.c.example/")]).await,
        400,
        "invalid_target",
    )
    .await;
    assert!(
        desc.contains("to-domain-b") || desc.contains("rule"),
        "{desc}"
    );
    // A subject without the claim the rule maps the subject from.
    let no_email = a.subject_token(json!({"email": null}));
    let desc = assert_error(
        grant_request(&a, &no_email, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("\"email\""), "{desc}");
    // Another client: no grant rule names it.
    let resp = a
        .post_token(
            &[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", subject.as_str()),
                ("subject_token_type", ACCESS_TOKEN),
                ("requested_token_type", JWT),
                ("audience", AS_B),
            ],
            Some(("billing-svc", "billing-secret")),
        )
        .await;
    assert_error(resp, 400, "unauthorized_client").await;
}

#[tokio::test]
async fn a_jwt_request_an_access_token_rule_decides_still_gets_an_access_token() {
    let a = TestApp::spawn_with(domain_a).await;
    let subject = a.subject_token(json!({}));
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("requested_token_type", JWT),
        ("audience", "inventory-api"),
    ];
    let body = granted(a.exchange(&form).await).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["issued_token_type"], JWT);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(header_of(token)["typ"], "at+jwt");
    // And a grant rule never answers an access-token request.
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", AS_B),
    ];
    assert_error(a.exchange(&form).await, 400, "invalid_target").await;
}

#[tokio::test]
async fn a_grant_from_domain_a_buys_an_access_token_in_domain_b() {
    let (a, b) = domains().await;
    let subject = a.subject_token(json!({"email": "alice@a.example"}));
    let grant = grant_from_a(&a, &subject).await;
    let grant_claims = claims_of(&grant);
    let resp = take(&b, &grant, &[]).await;
    assert_eq!(
        resp.headers().get("cache-control").unwrap(),
        "no-store",
        "RFC 6749 §5.1"
    );
    let body = granted(resp).await;
    // An RFC 6749 §5.1 answer: no issued_token_type, no refresh token.
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("issued_token_type").is_none(), "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(
        body["scope"], "inventory:read",
        "the grant's scope, as B's rule allows"
    );
    let token = body["access_token"].as_str().unwrap();
    let claims = validate(&b, token, "at+jwt", API_B).await;
    assert_eq!(claims["iss"], AS_B);
    assert_eq!(
        claims["sub"], "alice@a.example",
        "the subject the grant names"
    );
    assert!(claims["exp"].as_i64().unwrap() <= grant_claims["exp"].as_i64().unwrap());
    // Both trails answer who obtained access to the other domain, for whom, when.
    let issued = a.records(&["--grant-kind", "authorization_grant"]);
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0]["token_type"], "jwt");
    assert_eq!(issued[0]["grant_type"], "token-exchange");
    assert_eq!(issued[0]["granted_audiences"], json!([AS_B]));
    assert_eq!(issued[0]["token_jti"], grant_claims["jti"]);
    assert_eq!(issued[0]["subject"], "alice");
    let taken = b.records(&["--grant-type", "jwt-bearer"]);
    assert_eq!(taken.len(), 1, "{taken:?}");
    let r = &taken[0];
    assert_eq!(r["outcome"], "granted");
    assert_eq!(r["grant_kind"], "authorization_grant");
    assert_eq!(r["subject_issuer"], "domain-a");
    assert_eq!(r["subject"], "alice@a.example");
    assert_eq!(r["subject_jti"], grant_claims["jti"]);
    assert_eq!(r["client_id"], "orders-svc");
    assert_eq!(r["granted_audiences"], json!([API_B, CHAT_B]));
    assert_eq!(r["token_jti"], claims["jti"]);
    // The admin API filters alike.
    let page: Value = b
        .admin_get("/admin/exchanges?grant_kind=authorization_grant")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(b.records(&["--grant-type", "token-exchange"]).is_empty());
    let out = b.cli(&["audit", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_grant_must_not_be_taken_twice_even_at_once() {
    let (a, b) = domains().await;
    let grant = grant_from_a(&a, &a.subject_token(json!({}))).await;
    let attempts = (0..6).map(|_| take(&b, &grant, &[]));
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    let desc = assert_error(take(&b, &grant, &[]).await, 400, "invalid_grant").await;
    assert!(desc.contains("used before"), "{desc}");
    let replays = b.records(&["--error", "invalid_grant"]);
    assert_eq!(replays.len(), 6, "each replay is on record");
    assert_eq!(replays[0]["subject_issuer"], "domain-a");
    assert_eq!(replays[0]["grant_kind"], "authorization_grant");
}

#[tokio::test]
async fn the_grant_aud_must_be_this_server_alone_as_a_string_or_a_one_element_array() {
    let (_a, b) = domains().await;
    for typ in ["JWT", "oauth-id-jag+jwt"] {
        aud_is_this_server_alone(&b, typ).await;
    }
}

async fn aud_is_this_server_alone(b: &TestApp, typ: &str) {
    let ok = take(b, &forged(b, typ, json!({"aud": [AS_B]})), &[]).await;
    granted(ok).await;
    for (what, aud) in [
        ("two audiences", json!([AS_B, "https://as.c.example"])),
        (
            "two audiences, ours last",
            json!(["https://as.c.example", AS_B]),
        ),
        ("another server", json!("https://as.c.example")),
        ("the token endpoint", json!(format!("{AS_B}/token"))),
        ("none", Value::Null),
        ("an empty array", json!([])),
    ] {
        let grant = forged(b, typ, json!({ "aud": aud }));
        let desc = assert_error(take(b, &grant, &[]).await, 400, "invalid_grant").await;
        assert!(desc.contains(AS_B), "{typ}, {what}: {desc}");
    }
}

#[tokio::test]
async fn the_grant_must_be_validated_as_rfc7523_says_or_refused_as_invalid_grant() {
    let (a, b) = domains().await;
    let t = now();
    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            forged(&b, "JWT", json!({"iat": t - 600, "exp": t - 120})),
        ),
        ("not yet valid", forged(&b, "JWT", json!({"nbf": t + 600}))),
        (
            "issued in the future",
            forged(&b, "JWT", json!({"iat": t + 600})),
        ),
        ("without exp", forged(&b, "JWT", json!({"exp": null}))),
        ("without jti", forged(&b, "JWT", json!({"jti": null}))),
        ("an access token", forged(&b, "at+jwt", json!({}))),
        (
            "from an untrusted issuer",
            TestKey::generate(Algorithm::ES256, "stranger").sign(&json!({
                "iss": "https://stranger.example", "sub": "alice", "aud": AS_B,
                "iat": t, "exp": t + 60, "jti": uuid_like(),
            })),
        ),
        ("not a JWT", "opaque-grant".to_string()),
    ];
    for (what, grant) in cases {
        let resp = take(&b, &grant, &[]).await;
        let desc = assert_error(resp, 400, "invalid_grant").await;
        assert!(!desc.is_empty(), "{what}");
    }
    // Signed with a key the trusted issuer does not publish.
    let forger = TestKey::generate(Algorithm::RS256, &b.key.kid);
    let claims = claims_of(&forged(&b, "JWT", json!({})));
    let bad = forger.sign_named("RS256", json!({"typ": "JWT", "kid": b.key.kid}), &claims);
    let desc = assert_error(take(&b, &bad, &[]).await, 400, "invalid_grant").await;
    assert!(desc.contains("signature"), "{desc}");
    // A kind its issuer is not trusted for: B's IdP does not issue ID-JAGs to B for A's users,
    // and A's access tokens are not grants.
    let minted_at_a = a.minted(json!({})).await;
    assert_error(take(&b, &minted_at_a, &[]).await, 400, "invalid_grant").await;
    // A grant taken by B is never a subject token of a token exchange there.
    let id_jag = forged(&b, "oauth-id-jag+jwt", json!({}));
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", id_jag.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("resource", API_B),
    ];
    assert_error(b.exchange(&form).await, 400, "invalid_request").await;
}

#[tokio::test]
async fn a_grant_and_an_access_token_never_stand_in_for_each_other() {
    let (_a, b) = domains().await;
    // A grant of an issuer B also takes access tokens from, presented as a subject token.
    let grant = forged(&b, "JWT", json!({"resource": API_B}));
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", grant.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("resource", CHAT_B),
    ];
    assert_error(b.exchange(&form).await, 400, "invalid_request").await;
    // That issuer's access token (typed as its access tokens are), presented as a grant.
    let access = forged(&b, "at+jwt", json!({}));
    assert_error(take(&b, &access, &[]).await, 400, "invalid_grant").await;
    // An ID token is no grant, whatever its typ.
    let id = forged(&b, "JWT", json!({"nonce": "n"}));
    let desc = assert_error(take(&b, &id, &[]).await, 400, "invalid_grant").await;
    assert!(desc.contains("nonce"), "{desc}");
    // The grant itself is still good: it was never spent.
    granted(take(&b, &grant, &[]).await).await;
}

#[tokio::test]
async fn a_grant_must_bound_what_it_grants_or_be_refused() {
    let (_a, b) = domains().await;
    for resource in [json!([]), json!([7]), json!([API_B, 7]), json!("not a uri")] {
        let grant = forged(&b, "JWT", json!({ "resource": resource }));
        let desc = assert_error(take(&b, &grant, &[]).await, 400, "invalid_grant").await;
        assert!(desc.contains("resource"), "{resource}: {desc}");
    }
    let many: Vec<String> = (0..17)
        .map(|i| format!("https://api{i}.b.example/"))
        .collect();
    let grant = forged(&b, "JWT", json!({ "resource": many }));
    assert_error(take(&b, &grant, &[]).await, 400, "invalid_grant").await;
    // The same resource many times is one.
    let grant = forged(&b, "JWT", json!({ "resource": vec![API_B; 200] }));
    let body = granted(take(&b, &grant, &[]).await).await;
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["aud"],
        API_B
    );
    // authorization_details is not processed, so not silently dropped either.
    let rar = forged(
        &b,
        "oauth-id-jag+jwt",
        json!({"authorization_details": [{"type": "x"}]}),
    );
    let desc = assert_error(take(&b, &rar, &[]).await, 400, "invalid_grant").await;
    assert!(desc.contains("authorization_details"), "{desc}");
    // A grant valid for days is refused: its jti would have to be remembered that long.
    let long = forged(&b, "JWT", json!({"exp": now() + 3 * 86400}));
    let desc = assert_error(take(&b, &long, &[]).await, 400, "invalid_grant").await;
    assert!(desc.contains("an hour"), "{desc}");
}

#[tokio::test]
async fn a_grant_rule_refuses_an_actor_token_rather_than_ignoring_it() {
    let a = TestApp::spawn_with(domain_a).await;
    let subject = a.subject_token(json!({}));
    let actor = a.subject_token(json!({"sub": "svc-x", "cnf": {"jkt": "abc"}}));
    let resp = grant_request(
        &a,
        &subject,
        &[
            ("actor_token", actor.as_str()),
            ("actor_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    let desc = assert_error(resp, 400, "invalid_request").await;
    assert!(
        desc.contains("actor_token") || desc.contains("DPoP"),
        "{desc}"
    );
    let plain_actor = a.subject_token(json!({"sub": "svc-x"}));
    let resp = grant_request(
        &a,
        &subject,
        &[
            ("actor_token", plain_actor.as_str()),
            ("actor_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    let desc = assert_error(resp, 400, "invalid_request").await;
    assert!(desc.contains("takes no actor_token"), "{desc}");
}

#[tokio::test]
async fn scope_and_resource_stay_within_the_grant() {
    let (_a, b) = domains().await;
    let grant = || forged(&b, "JWT", json!({"scope": "chat.read", "resource": CHAT_B}));
    // Asking for more than the grant carries.
    let desc = assert_error(
        take(&b, &grant(), &[("scope", "chat.history")]).await,
        400,
        "invalid_scope",
    )
    .await;
    assert!(desc.contains("chat.history"), "{desc}");
    let desc = assert_error(
        take(&b, &grant(), &[("resource", API_B)]).await,
        400,
        "invalid_target",
    )
    .await;
    assert!(desc.contains("resources the grant"), "{desc}");
    // Without scope or resource: the grant's, as far as the rule allows.
    let body = granted(take(&b, &grant(), &[]).await).await;
    assert_eq!(body["scope"], "chat.read");
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], CHAT_B);
    // A grant without a scope: the rule's default scopes decide (none here: refused).
    let no_scope = forged(&b, "JWT", json!({"scope": null}));
    assert_error(take(&b, &no_scope, &[]).await, 400, "invalid_scope").await;
    // Token-exchange parameters are not taken.
    let desc = assert_error(
        take(&b, &grant(), &[("audience", API_B)]).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("audience"), "{desc}");
    assert_error(
        b.exchange(&[("grant_type", JWT_BEARER)]).await,
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn the_id_jag_must_include_the_granted_resource_and_scope_and_buys_a_token_at_the_ras() {
    let (a, b) = domains().await;
    let id = id_token(&a, "orders-svc", json!({}));
    let body = granted(
        id_jag_request(
            &a,
            &id,
            &[("resource", CHAT_B), ("scope", "chat.read chat.history")],
        )
        .await,
    )
    .await;
    assert_eq!(body["token_type"], "N_A");
    assert_eq!(body["issued_token_type"], ID_JAG);
    assert_eq!(body["scope"], "chat.read chat.history");
    let jag = body["access_token"].as_str().unwrap();
    let claims = validate(&a, jag, "oauth-id-jag+jwt", AS_B).await;
    let subject = claims_of(&id);
    for name in ["sub", "auth_time", "acr", "amr"] {
        assert_eq!(claims[name], subject[name], "{name}");
    }
    assert_eq!(claims["client_id"], "orders-svc");
    assert_eq!(claims["resource"], CHAT_B);
    assert_eq!(claims["scope"], "chat.read chat.history");
    assert!(claims["jti"].is_string());
    for absent in ["nonce", "email", "act", "at_hash"] {
        assert!(claims.get(absent).is_none(), "{absent} is not carried over");
    }
    // A grant is no access token: not active at A's introspection, even for its client.
    let resp = a
        .post_form(
            "/introspect",
            &[("token", jag)],
            ("orders-svc", ORDERS_SECRET),
        )
        .await;
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"active": false})
    );
    let taken = granted(take(&b, jag, &[("scope", "chat.read")]).await).await;
    assert_eq!(taken["token_type"], "Bearer");
    assert_eq!(taken["scope"], "chat.read");
    let access = claims_of(taken["access_token"].as_str().unwrap());
    assert_eq!(access["aud"], CHAT_B);
    assert_eq!(access["sub"], subject["sub"]);
    let a_records = a.records(&["--grant-kind", "id_jag"]);
    assert_eq!(a_records.len(), 1);
    assert_eq!(a_records[0]["token_type"], "id-jag");
    assert_eq!(a_records[0]["granted_audiences"], json!([AS_B, CHAT_B]));
    let b_records = b.records(&["--grant-kind", "id_jag"]);
    assert_eq!(b_records.len(), 1);
    assert_eq!(b_records[0]["grant_type"], "jwt-bearer");
    assert_eq!(b_records[0]["subject_jti"], claims["jti"]);
}

#[tokio::test]
async fn the_idp_must_validate_that_the_id_token_audience_is_the_authenticated_client() {
    let a = TestApp::spawn_with(domain_a).await;
    // An ID token issued to another client.
    let other = id_token(&a, "billing-svc", json!({}));
    let desc = assert_error(
        id_jag_request(&a, &other, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("not intended"), "{desc}");
    // One naming this client among others is its only when azp says so.
    for (aud, azp) in [
        (json!(["billing-svc", "orders-svc"]), json!("billing-svc")),
        (json!(["billing-svc", "orders-svc"]), Value::Null),
        (json!("orders-svc"), json!("billing-svc")),
    ] {
        let shared = id_token(&a, "orders-svc", json!({ "aud": aud, "azp": azp }));
        let desc = assert_error(
            id_jag_request(&a, &shared, &[]).await,
            400,
            "invalid_request",
        )
        .await;
        assert!(desc.contains("azp"), "{aud} {azp}: {desc}");
    }
    let ours = id_token(
        &a,
        "orders-svc",
        json!({"aud": ["orders-svc", "billing-svc"], "azp": "orders-svc"}),
    );
    granted(id_jag_request(&a, &ours, &[]).await).await;
    let ok = id_token(&a, "orders-svc", json!({}));
    // An access token is not an identity assertion.
    let access = a.subject_token(json!({}));
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", access.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("requested_token_type", ID_JAG),
        ("audience", AS_B),
    ];
    let desc = assert_error(a.exchange(&form).await, 400, "invalid_request").await;
    assert!(desc.contains("ID token"), "{desc}");
    // The audience is required and names one server; no actor token.
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", ok.as_str()),
        ("subject_token_type", ID_TOKEN),
        ("requested_token_type", ID_JAG),
        ("resource", CHAT_B),
    ];
    assert_error(a.exchange(&form).await, 400, "invalid_request").await;
    let actor = a.subject_token(json!({"sub": "svc"}));
    let resp = id_jag_request(
        &a,
        &ok,
        &[
            ("actor_token", actor.as_str()),
            ("actor_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    assert_error(resp, 400, "invalid_request").await;
    // A resource server the rule does not grant, a scope it does not allow.
    assert_error(
        id_jag_request(&a, &ok, &[("resource", "https://other.b.example/")]).await,
        400,
        "invalid_target",
    )
    .await;
    assert_error(
        id_jag_request(&a, &ok, &[("scope", "chat.admin")]).await,
        400,
        "invalid_scope",
    )
    .await;
    // Neither scope nor resource asked: an ID-JAG without them (both are optional).
    let body = granted(id_jag_request(&a, &ok, &[]).await).await;
    assert!(body.get("scope").is_none(), "{body}");
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert!(claims.get("scope").is_none() && claims.get("resource").is_none());
}

#[tokio::test]
async fn an_id_jag_client_id_must_identify_the_authenticated_client() {
    let (a, b) = domains().await;
    let jag = forged(&b, "oauth-id-jag+jwt", json!({"client_id": "billing-svc"}));
    let desc = assert_error(take(&b, &jag, &[]).await, 400, "invalid_grant").await;
    assert!(desc.contains("orders-svc"), "{desc}");
    let no_client = forged(&b, "oauth-id-jag+jwt", json!({"client_id": null}));
    assert_error(take(&b, &no_client, &[]).await, 400, "invalid_grant").await;
    // A's ID-JAG for B, presented at A, which does not trust itself for grants.
    let id = id_token(&a, "orders-svc", json!({}));
    let jag = granted(id_jag_request(&a, &id, &[]).await).await;
    let jag = jag["access_token"].as_str().unwrap();
    let resp = a
        .exchange(&[("grant_type", JWT_BEARER), ("assertion", jag)])
        .await;
    assert_error(resp, 400, "invalid_grant").await;
}

#[tokio::test]
async fn the_idp_must_not_issue_access_tokens_for_an_id_jag_it_issued_itself() {
    // Even when its configuration names itself as an issuer of ID-JAGs, for itself as audience.
    let a = TestApp::spawn_with(|c| {
        domain_a(c);
        c.append(&format!(
            r#"
[[issuers]]
id = "myself"
issuer = "{STS}"
accept = ["access_token", "id_jag"]
audiences = ["{STS}"]

[[rules]]
name = "own-grants"
clients = ["orders-svc"]
issuers = ["myself"]
audiences = ["inventory-api"]
scopes = ["chat.read"]

[[rules]]
name = "id-jag-for-myself"
mints = "id_jag"
clients = ["orders-svc"]
issuers = ["corp"]
audiences = ["{STS}"]
scopes = ["chat.read"]
"#
        ));
    })
    .await;
    let id = id_token(&a, "orders-svc", json!({}));
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", id.as_str()),
        ("subject_token_type", ID_TOKEN),
        ("requested_token_type", ID_JAG),
        ("audience", STS),
        ("scope", "chat.read"),
    ];
    let jag = granted(a.exchange(&form).await).await;
    let jag = jag["access_token"].as_str().unwrap();
    let resp = a
        .exchange(&[("grant_type", JWT_BEARER), ("assertion", jag)])
        .await;
    let desc = assert_error(resp, 400, "invalid_grant").await;
    assert!(desc.contains("issued by this server"), "{desc}");
}

#[tokio::test]
async fn domain_b_must_deny_a_grant_whose_subject_it_cannot_identify() {
    let (_a, b) = domains().await;
    for sub in [Value::Null, json!(""), json!(42)] {
        let grant = forged(&b, "JWT", json!({ "sub": sub }));
        let desc = assert_error(take(&b, &grant, &[]).await, 400, "invalid_grant").await;
        assert!(desc.contains("sub"), "{desc}");
    }
}

fn dpop_proof(key: &TestKey, htu: &str) -> String {
    let mut header = Header::new(key.alg);
    header.typ = Some("dpop+jwt".into());
    header.extras.insert("jwk", key.jwk.clone());
    let claims = json!({"jti": uuid_like(), "htm": "POST", "htu": htu, "iat": now()});
    jsonwebtoken::encode(&header, &claims, &key.encoding()).unwrap()
}

fn thumbprint(key: &TestKey) -> String {
    let jwk: Jwk = serde_json::from_value(key.jwk.clone()).unwrap();
    jwk.thumbprint(ThumbprintHash::SHA256).unwrap()
}

async fn take_with_proof(b: &TestApp, assertion: &str, proof: &str) -> reqwest::Response {
    b.http
        .post(format!("{}/token", b.url))
        .basic_auth("orders-svc", Some(ORDERS_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("DPoP", proof)
        .body(
            serde_urlencoded::to_string([("grant_type", JWT_BEARER), ("assertion", assertion)])
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_key_bound_grant_requires_proof_of_that_key() {
    let (a, b) = domains().await;
    let key = TestKey::generate(Algorithm::ES256, "client-key");
    // Bound at issuance: A binds the ID-JAG to the key of the request's DPoP proof.
    let id = id_token(&a, "orders-svc", json!({}));
    let body = serde_urlencoded::to_string([
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", id.as_str()),
        ("subject_token_type", ID_TOKEN),
        ("requested_token_type", ID_JAG),
        ("audience", AS_B),
        ("scope", "chat.read"),
    ])
    .unwrap();
    let resp = a
        .http
        .post(format!("{}/token", a.url))
        .basic_auth("orders-svc", Some(ORDERS_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("DPoP", dpop_proof(&key, &format!("{STS}/token")))
        .body(body)
        .send()
        .await
        .unwrap();
    let jag = granted(resp).await;
    let jag = jag["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims_of(&jag)["cnf"]["jkt"], thumbprint(&key));
    // Without a proof, or with another key's, the grant is refused.
    let desc = assert_error(take(&b, &jag, &[]).await, 400, "invalid_grant").await;
    assert!(desc.contains("proof of possession"), "{desc}");
    let other = TestKey::generate(Algorithm::ES256, "other-key");
    let resp = take_with_proof(&b, &jag, &dpop_proof(&other, &format!("{AS_B}/token"))).await;
    assert_error(resp, 400, "invalid_grant").await;
    // A grant bound to no key, with an invalid proof: the proof is validated all the same.
    let unbound = forged(&b, "oauth-id-jag+jwt", json!({}));
    let wrong_htu = dpop_proof(&key, &format!("{STS}/token"));
    assert_error(
        take_with_proof(&b, &unbound, &wrong_htu).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    // With the proof: a token bound to the same key.
    let resp = take_with_proof(&b, &jag, &dpop_proof(&key, &format!("{AS_B}/token"))).await;
    let body = granted(resp).await;
    assert_eq!(body["token_type"], "DPoP");
    let access = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(access["cnf"]["jkt"], thumbprint(&key));
}

#[tokio::test]
async fn metadata_says_what_each_domain_issues_and_takes() {
    let (a, b) = domains().await;
    let meta = |app: &TestApp| {
        let url = format!("{}/.well-known/oauth-authorization-server", app.url);
        let http = app.http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let a_meta = meta(&a).await;
    assert_eq!(
        a_meta["identity_chaining_requested_token_types_supported"],
        json!([JWT, ID_JAG])
    );
    assert!(
        a_meta["requested_token_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(ID_JAG))
    );
    let b_meta = meta(&b).await;
    assert!(
        b_meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(JWT_BEARER))
    );
    assert_eq!(
        b_meta["authorization_grant_profiles_supported"],
        json!(["urn:ietf:params:oauth:grant-profile:id-jag"])
    );
    // What is implemented, not whom it is trusted with: the same at both.
    assert_eq!(
        b_meta["identity_chaining_requested_token_types_supported"],
        json!([JWT, ID_JAG])
    );
    assert_eq!(
        a_meta["authorization_grant_profiles_supported"],
        json!(["urn:ietf:params:oauth:grant-profile:id-jag"])
    );
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn explain_covers_both_halves_and_spends_nothing() {
    let (a, b) = domains().await;
    let grant = grant_from_a(&a, &a.subject_token(json!({"email": "alice@a.example"}))).await;
    let file = b.dir.path().join("grant.jwt");
    std::fs::write(&file, &grant).unwrap();
    let out = b.cli(&[
        "explain",
        "--client",
        "orders-svc",
        "--assertion",
        file.to_str().unwrap(),
    ]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("grant (authorization_grant): alice@a.example (issuer domain-a)"),
        "{said}"
    );
    assert!(said.contains("request: jwt-bearer"), "{said}");
    assert!(said.contains("rule 1 \"from-domain-a\": applies"), "{said}");
    assert!(
        said.contains("result: granted by rule \"from-domain-a\""),
        "{said}"
    );
    granted(take(&b, &grant, &[]).await).await;
    // Spent at /token, the grant still explains (explain reads no replay memory): here the
    // request asks for more than the grant carries.
    let out = b.cli(&[
        "explain",
        "--client",
        "orders-svc",
        "--assertion",
        file.to_str().unwrap(),
        "--scope",
        "chat.history",
    ]);
    assert!(
        text(&out).contains("result: denied: invalid_scope"),
        "{}",
        text(&out)
    );
    // Issuing an ID-JAG, explained at A.
    let id_file = a.dir.path().join("id.jwt");
    std::fs::write(&id_file, id_token(&a, "orders-svc", json!({}))).unwrap();
    let out = a.cli(&[
        "explain",
        "--client",
        "orders-svc",
        "--subject-token",
        id_file.to_str().unwrap(),
        "--subject-token-type",
        "id_token",
        "--requested-token-type",
        "id-jag",
        "--audience",
        AS_B,
        "--scope",
        "chat.read",
    ]);
    let said = text(&out);
    assert!(
        said.contains("result: granted by rule \"chat-id-jag\""),
        "{said}"
    );
    assert!(said.contains("\"typ\": \"oauth-id-jag+jwt\""), "{said}");
    assert!(
        said.contains("mints access_token, and the request asks for id-jag"),
        "{said}"
    );
    assert!(a.records(&["--grant-kind", "id_jag"]).is_empty());
}

#[tokio::test]
async fn tessera_test_runs_cases_of_both_grant_types() {
    let (a, b) = domains().await;
    let cases_b = format!(
        r#"
[[cases]]
name = "a grant from domain A buys the grant's scope"
client = "orders-svc"
subject = {{ issuer = "domain-a", claims = {{ sub = "alice@a.example", scope = "chat.read", resource = "{CHAT_B}" }} }}
request = {{ grant_type = "jwt_bearer" }}
expect = {{ outcome = "granted", rule = "from-domain-a", scopes = ["chat.read"] }}

[[cases]]
name = "nothing beyond the grant's scope"
client = "orders-svc"
subject = {{ issuer = "domain-a", claims = {{ sub = "alice@a.example", scope = "chat.read" }} }}
request = {{ grant_type = "jwt_bearer", scope = "chat.history" }}
expect = {{ outcome = "denied", error = "invalid_scope" }}

[[cases]]
name = "a jwt-bearer request names no audience"
client = "orders-svc"
subject = {{ issuer = "domain-a", claims = {{ sub = "alice@a.example", scope = "chat.read" }} }}
request = {{ grant_type = "jwt_bearer", audiences = ["{CHAT_B}"] }}
expect = {{ outcome = "denied", error = "invalid_request" }}

[[cases]]
name = "an ID-JAG for another client is refused"
client = "orders-svc"
subject = {{ issuer = "domain-a", claims = {{ sub = "alice", scope = "chat.read", client_id = "billing-svc" }} }}
request = {{ grant_type = "jwt_bearer", grant_kind = "id_jag" }}
expect = {{ outcome = "denied", error = "invalid_grant" }}

[[cases]]
name = "nor beyond its resources"
client = "orders-svc"
subject = {{ issuer = "domain-a", claims = {{ sub = "alice@a.example", scope = "chat.read", resource = "{CHAT_B}" }} }}
request = {{ grant_type = "jwt_bearer", resources = ["{API_B}"] }}
expect = {{ outcome = "denied", error = "invalid_target" }}
"#
    );
    let file = b.dir.path().join("cases.toml");
    std::fs::write(&file, cases_b).unwrap();
    let out = b.cli(&["test", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("5 passed, 0 failed"), "{}", text(&out));
    let cases_a = format!(
        r#"
[[cases]]
name = "an ID-JAG for B's chat"
client = "orders-svc"
subject = {{ issuer = "corp", claims = {{ sub = "alice", aud = "orders-svc" }} }}
request = {{ token_type = "id-jag", audiences = ["{AS_B}"], scope = "chat.read" }}
expect = {{ outcome = "granted", rule = "chat-id-jag", scopes = ["chat.read"] }}

[[cases]]
name = "a jwt for B is an authorization grant"
client = "orders-svc"
subject = {{ issuer = "corp", claims = {{ sub = "alice", email = "alice@a.example", scope = "inventory:read" }} }}
request = {{ token_type = "jwt", audiences = ["{AS_B}"] }}
expect = {{ outcome = "granted", rule = "to-domain-b", scopes = ["inventory:read"] }}

[[cases]]
name = "a jwt for the inventory is an access token"
client = "orders-svc"
subject = {{ issuer = "corp", claims = {{ sub = "alice", scope = "inventory:read" }} }}
request = {{ token_type = "jwt", audiences = ["inventory-api"] }}
expect = {{ outcome = "granted", rule = "orders-to-inventory" }}
"#
    );
    let file = a.dir.path().join("cases.toml");
    std::fs::write(&file, cases_a).unwrap();
    let out = a.cli(&["test", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("3 passed, 0 failed"), "{}", text(&out));
}

#[tokio::test]
async fn revoking_the_user_of_domain_a_in_domain_b_reaches_what_the_grants_bought() {
    let (a, b) = domains().await;
    let subject = a.subject_token(json!({"email": "alice@a.example"}));
    let grant = grant_from_a(&a, &subject).await;
    let body = granted(take(&b, &grant, &[]).await).await;
    let token = body["access_token"].as_str().unwrap().to_string();
    let active = |token: String| {
        let b = &b;
        async move {
            let resp = b
                .post_form(
                    "/introspect",
                    &[("token", &token)],
                    ("orders-svc", ORDERS_SECRET),
                )
                .await;
            resp.json::<Value>().await.unwrap()["active"].clone()
        }
    };
    assert_eq!(active(token.clone()).await, json!(true));
    let older = grant_from_a(&a, &subject).await;
    let resp = b
        .admin_revoke(json!({"issuer": "domain-a", "subject": "alice@a.example"}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(active(token).await, json!(false));
    // A grant A issued before the revocation is refused as the grant's own fault.
    let desc = assert_error(take(&b, &older, &[]).await, 400, "invalid_grant").await;
    assert!(desc.contains("revoked"), "{desc}");
    let refused = b.records(&["--error", "invalid_grant"]);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["grant_kind"], "authorization_grant");
}
