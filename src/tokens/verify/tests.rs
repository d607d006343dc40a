use std::time::Duration;

use serde_json::json;

use super::*;
use crate::config::KeySource;

const NOW: i64 = 1_800_000_000;

fn issuer() -> IssuerConfig {
    IssuerConfig {
        id: "corp".into(),
        issuer: "https://idp".into(),
        keys: KeySource::Local,
        algorithms: vec![Algorithm::RS256],
        audiences: vec!["https://sts".into()],
        accept: vec![TokenKind::AccessToken],
        leeway: Duration::from_secs(30),
        max_age: Some(Duration::from_secs(3600)),
        jwks_refresh: Duration::from_secs(600),
        jwks_min_refetch: Duration::from_secs(30),
        access_token_typ: None,
        introspection: None,
    }
}

fn claims(extra: Value) -> Map<String, Value> {
    let mut base = json!({"iss": "https://idp", "sub": "alice", "aud": "https://sts", "exp": NOW + 300, "iat": NOW - 10, "scope": "a b"});
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    match base {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn check(
    issuer: &IssuerConfig,
    declared: TokenType,
    typ: Option<&str>,
    extra: Value,
) -> Result<VerifiedToken, String> {
    check_claims(issuer, declared, typ, claims(extra), NOW, &issuer.audiences)
}

#[test]
fn a_good_access_token_passes_with_its_scopes() {
    let token = check(&issuer(), TokenType::AccessToken, None, json!({})).expect("valid");
    assert_eq!(token.sub, "alice");
    assert_eq!(token.scopes.names(), vec!["a", "b"]);
    assert_eq!(token.issuer_id, "corp");
}

#[test]
fn lifetime_claims_are_checked_with_leeway() {
    let i = issuer();
    assert!(
        check(&i, TokenType::AccessToken, None, json!({"exp": NOW - 10})).is_ok(),
        "within leeway"
    );
    assert!(check(&i, TokenType::AccessToken, None, json!({"exp": NOW - 31})).is_err());
    assert!(check(&i, TokenType::AccessToken, None, json!({"nbf": NOW + 20})).is_ok());
    assert!(check(&i, TokenType::AccessToken, None, json!({"nbf": NOW + 60})).is_err());
    assert!(check(&i, TokenType::AccessToken, None, json!({"iat": NOW + 60})).is_err());
    assert!(
        check(&i, TokenType::AccessToken, None, json!({"iat": NOW - 4000})).is_err(),
        "beyond max_age"
    );
    assert!(check(&i, TokenType::AccessToken, None, json!({"exp": "tomorrow"})).is_err());
    let mut no_exp = claims(json!({}));
    no_exp.remove("exp");
    assert!(check_claims(&i, TokenType::AccessToken, None, no_exp, NOW, &i.audiences).is_err());
}

#[test]
fn the_audience_must_name_one_of_the_issuers_audiences() {
    let i = issuer();
    assert!(
        check(
            &i,
            TokenType::AccessToken,
            None,
            json!({"aud": ["x", "https://sts"]})
        )
        .is_ok()
    );
    assert!(
        check(
            &i,
            TokenType::AccessToken,
            None,
            json!({"aud": "https://other"})
        )
        .is_err()
    );
    assert!(check(&i, TokenType::AccessToken, None, json!({"aud": []})).is_err());
}

#[test]
fn id_tokens_are_refused_unless_accepted() {
    let mut i = issuer();
    assert!(check(&i, TokenType::IdToken, None, json!({})).is_err());
    for claim in ["nonce", "at_hash", "c_hash"] {
        let err = check(&i, TokenType::AccessToken, None, json!({ claim: "x" })).expect_err(claim);
        assert!(err.contains("ID token"), "{err}");
    }
    i.accept.push(TokenKind::IdToken);
    assert!(check(&i, TokenType::IdToken, None, json!({"nonce": "n"})).is_ok());
}

#[test]
fn access_token_typ_is_compared_loosely_when_set() {
    let mut i = issuer();
    i.access_token_typ = Some("at+jwt".into());
    assert!(check(&i, TokenType::AccessToken, Some("at+JWT"), json!({})).is_ok());
    assert!(
        check(
            &i,
            TokenType::AccessToken,
            Some("application/at+jwt"),
            json!({})
        )
        .is_ok()
    );
    assert!(check(&i, TokenType::AccessToken, Some("JWT"), json!({})).is_err());
    assert!(check(&i, TokenType::AccessToken, None, json!({})).is_err());
}

#[test]
fn jwt_kind_needs_to_be_accepted() {
    let mut i = issuer();
    assert!(check(&i, TokenType::Jwt, None, json!({})).is_err());
    i.accept.push(TokenKind::Jwt);
    assert!(check(&i, TokenType::Jwt, None, json!({})).is_ok());
}

#[test]
fn scopes_come_from_scope_or_scp() {
    assert_eq!(scopes_of(&claims(json!({}))).names(), vec!["a", "b"]);
    let mut c = claims(json!({"scp": ["x", "y"]}));
    c.remove("scope");
    assert_eq!(scopes_of(&c).names(), vec!["x", "y"]);
}

#[test]
fn scopes_split_on_the_space_character_only() {
    for (scope, expected) in [
        ("exchange\tinventory:write", vec![]),
        ("exchange\ninventory:write read", vec!["read"]),
        ("exchange\u{a0}inventory:write", vec![]),
        ("exchange\u{3000}inventory:write", vec![]),
        ("a  b", vec!["a", "b"]),
        ("caf\u{e9} \"q\" back\\slash ok", vec!["ok"]),
    ] {
        let c = claims(json!({ "scope": scope }));
        assert_eq!(scopes_of(&c).names(), expected, "{scope:?}");
    }
    let mut c = claims(json!({"scp": "x y\tz"}));
    c.remove("scope");
    assert_eq!(scopes_of(&c).names(), vec!["x"], "scp as a string");
    let mut c = claims(json!({"scp": ["x", "y z", "w\u{a0}", 5]}));
    c.remove("scope");
    assert_eq!(scopes_of(&c).names(), vec!["x"], "scp as an array");
}

#[test]
fn typ_values_compare_as_media_types() {
    assert!(same_typ("at+jwt", "AT+JWT"));
    assert!(same_typ("application/at+jwt", "at+jwt"));
    assert!(same_typ("Application/TxnToken+JWT", "txntoken+jwt"));
    assert!(!same_typ("at+jwt", "jwt"));
    assert!(!same_typ("application/", "at+jwt"));
    assert!(
        !same_typ("applicatioé/at+jwt", "at+jwt"),
        "no panic on a char boundary"
    );
}
