use super::*;

const BASE: &str = r#"
[server]
issuer = "https://sts.example.internal"
[signing]
[[signing.keys]]
kid = "k1"
alg = "ES256"
private_key_file = "keys/k1.pem"
[[issuers]]
id = "corp"
issuer = "https://idp.example.com"
jwks_uri = "https://idp.example.com/jwks"
audiences = ["https://sts.example.internal"]
[[clients]]
id = "orders-svc"
secret_sha256 = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
[[rules]]
name = "r1"
clients = ["orders-svc"]
issuers = ["corp"]
audiences = ["inventory-api"]
scopes = ["inventory:read"]
"#;

fn parse(toml: &str) -> Result<Config, ConfigError> {
    parse_str(toml, Path::new("/etc/tessera/t.toml"))
}

fn error_of(toml: &str) -> String {
    parse(toml).err().map(|e| e.to_string()).unwrap_or_default()
}

#[test]
fn a_minimal_file_gets_the_documented_defaults() {
    let config = parse(BASE).expect("valid");
    assert_eq!(config.server.listen, "127.0.0.1:8080");
    assert_eq!(
        config.server.token_endpoint,
        "https://sts.example.internal/token"
    );
    assert_eq!(config.server.max_body_bytes, 65_536);
    assert_eq!(
        config.storage.url,
        StorageUrl::Sqlite("/etc/tessera/tessera.db".into())
    );
    assert_eq!(config.signing.default_ttl, Duration::from_secs(300));
    assert_eq!(
        config.signing.keys[0].private_key_file,
        PathBuf::from("/etc/tessera/keys/k1.pem")
    );
    let issuer = &config.issuers[0];
    assert_eq!(issuer.algorithms, vec![Algorithm::RS256, Algorithm::ES256]);
    assert_eq!(issuer.accept, vec![TokenKind::AccessToken]);
    assert_eq!(issuer.leeway, Duration::from_secs(30));
    let rule = &config.rules[0];
    assert_eq!(rule.scope_mode, ScopeMode::Intersect);
    assert_eq!(rule.actor, ActorMode::None);
    assert!(rule.default_scopes.is_empty());
}

#[test]
fn unknown_keys_are_errors() {
    let err = error_of(&BASE.replace("[server]", "[server]\nlisten_port = 1"));
    assert!(err.contains("listen_port"), "{err}");
}

#[test]
fn each_bad_value_is_named_by_its_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("alg = \"ES256\"", "alg = \"HS256\"", "signing.keys[0].alg"),
        (
            "audiences = [\"https://sts",
            "algorithms = [\"none\"]\naudiences = [\"https://sts",
            "issuers[0].algorithms",
        ),
        (
            "audiences = [\"https://sts",
            "algorithms = [\"HS256\"]\naudiences = [\"https://sts",
            "issuers[0].algorithms",
        ),
        (
            "jwks_uri = \"https://idp.example.com/jwks\"",
            "jwks_uri = \"http://idp.example.com/jwks\"",
            "issuers[0].jwks_uri",
        ),
        (
            "jwks_uri = \"https://idp.example.com/jwks\"",
            "jwks_uri = \"https://idp.example.com/jwks\"\ndiscovery = true",
            "issuers[0].jwks_uri",
        ),
        (
            "jwks_uri = \"https://idp.example.com/jwks\"",
            "",
            "issuers[0].jwks_uri",
        ),
        (
            "clients = [\"orders-svc\"]",
            "clients = [\"nobody\"]",
            "rules[0].clients",
        ),
        (
            "issuers = [\"corp\"]",
            "issuers = [\"elsewhere\"]",
            "rules[0].issuers",
        ),
        (
            "scopes = [\"inventory:read\"]",
            "scopes = [\"inventory:read\"]\ndefault_scopes = [\"x\"]",
            "rules[0].default_scopes",
        ),
        (
            "scopes = [\"inventory:read\"]",
            "scopes = [\"inventory:read\"]\ncondition = \"subject.\"",
            "rules[0].condition",
        ),
        (
            "scopes = [\"inventory:read\"]",
            "scopes = [\"inventory:read\"]\nactor = \"someone\"",
            "rules[0].actor",
        ),
        (
            "scopes = [\"inventory:read\"]",
            "scopes = [\"inventory:read\"]\nactors = [{ issuer = \"corp\", subject = \"gw\" }]",
            "rules[0].actors",
        ),
        (
            "scopes = [\"inventory:read\"]",
            "scopes = [\"inventory:read\"]\nactor = \"token\"\nactors = [{ issuer = \"nowhere\", subject = \"gw\" }]",
            "rules[0].actors",
        ),
        (
            "scopes = [\"inventory:read\"]",
            "scopes = [\"inventory:read\"]\nttl = \"2h\"",
            "rules[0].ttl",
        ),
        (
            "scopes = [\"inventory:read\"]",
            "scopes = [\"inventory:read\"]\ncopy_claims = [\"sub\"]",
            "rules[0].copy_claims",
        ),
        (
            "scopes = [\"inventory:read\"]",
            "scopes = [\"inventory:read\"]\ncopy_claims = [\"email\", \"scp\"]",
            "rules[0].copy_claims",
        ),
        (
            "scopes = [\"inventory:read\"]",
            "scopes = [\"inventory:read\"]\ncopy_claims = [\"email\", \"nonce\"]",
            "rules[0].copy_claims",
        ),
        (
            "scopes = [\"inventory:read\"]",
            "scopes = [\"inventory:read\"]\ncopy_claims = [\"email\", \"at_hash\"]",
            "rules[0].copy_claims",
        ),
        (
            "scopes = [\"inventory:read\"]",
            "scopes = [\"inventory:read\"]\ncopy_claims = [\"email\", \"c_hash\"]",
            "rules[0].copy_claims",
        ),
        (
            "scopes = [\"inventory:read\"]",
            "scopes = [\"inventory:read\"]\ncopy_claims = [\"email\", \"azp\"]",
            "rules[0].copy_claims",
        ),
        (
            "scopes = [\"inventory:read\"]",
            "scopes = [\"inventory:read\"]\ncopy_claims = [\"email\", \"typ\"]",
            "rules[0].copy_claims",
        ),
        (
            "audiences = [\"inventory-api\"]",
            "audiences = []",
            "rules[0].audiences",
        ),
        (
            "secret_sha256 = \"2bb8",
            "secret_sha256 = \"zz",
            "clients[0].secret_sha256",
        ),
        (
            "[signing]",
            "[signing]\nmax_ttl = \"1 hour\"",
            "signing.max_ttl",
        ),
        (
            "[server]",
            "[storage]\nurl = \"mysql://x\"\n[server]",
            "storage.url",
        ),
    ];
    for (from, to, key) in cases {
        let toml = BASE.replacen(from, to, 1);
        assert_ne!(toml, BASE, "case {key} did not change the file");
        let err = error_of(&toml);
        assert!(
            err.contains(key),
            "expected an error naming {key}, got {err:?}"
        );
        assert!(
            err.starts_with("/etc/tessera/t.toml") || err.starts_with("t.toml"),
            "{err}"
        );
    }
}

#[test]
fn subject_patterns_are_checked_and_kept() {
    let with = |subjects: &str| {
        BASE.replace(
            "audiences = [\"inventory-api\"]",
            &format!("subjects = {subjects}\naudiences = [\"inventory-api\"]"),
        )
    };
    let config = parse(&with(r#"["system:serviceaccount:payments:*", "/ns/a/*"]"#)).expect("valid");
    let patterns: Vec<&str> = config.rules[0]
        .subjects
        .iter()
        .map(|p| p.as_str())
        .collect();
    assert_eq!(patterns, ["system:serviceaccount:payments:*", "/ns/a/*"]);
    assert!(parse(BASE).expect("valid").rules[0].subjects.is_empty());
    for bad in [r#"[""]"#, "[\"a\\u0007b\"]"] {
        let error = error_of(&with(bad));
        assert!(error.contains("rules[0].subjects"), "{bad}: {error}");
    }
}

#[test]
fn a_spiffe_trust_domain_is_an_issuer_with_a_bundle() {
    let spiffe = |issuer: &str, keys: &str| {
        BASE.replace(
            "issuer = \"https://idp.example.com\"",
            &format!("issuer = \"{issuer}\""),
        )
        .replace("jwks_uri = \"https://idp.example.com/jwks\"", keys)
    };
    let config = parse(&spiffe(
        "spiffe://prod.example.org",
        "jwks_uri = \"https://bundle.prod.example.org\"",
    ))
    .expect("valid");
    assert_eq!(config.issuers[0].issuer, "spiffe://prod.example.org");
    parse(&spiffe(
        "spiffe://prod.example.org",
        "jwks_file = \"bundle.json\"",
    ))
    .expect("a bundle file");
    for (issuer, keys, key) in [
        (
            "spiffe://Prod.example.org",
            "jwks_file = \"b.json\"",
            "issuers[0].issuer",
        ),
        (
            "spiffe://prod.example.org/",
            "jwks_file = \"b.json\"",
            "issuers[0].issuer",
        ),
        (
            "spiffe://prod.example.org:8443",
            "jwks_file = \"b.json\"",
            "issuers[0].issuer",
        ),
        (
            "spiffe://prod.example.org",
            "discovery = true",
            "issuers[0].discovery",
        ),
        (
            "spiffe://prod.example.org",
            "jwks_file = \"b.json\"\nintrospection_endpoint = \"https://i.example/x\"\nintrospection_client_id = \"t\"\nintrospection_client_secret = \"s\"",
            "issuers[0].introspection_endpoint",
        ),
    ] {
        let error = error_of(&spiffe(issuer, keys));
        assert!(error.contains(key), "{issuer} {keys}: {error}");
    }
}

#[test]
fn rate_limits_have_a_default_and_per_client_overrides() {
    let toml = BASE
        .replace("[server]\n", "[server]\ndefault_rate_limit = { per_second = 50, burst = 100 }\n")
        .replace("[[clients]]\nid = \"orders-svc\"", "[[clients]]\nid = \"fast-svc\"\nsecret_sha256 = \"2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\"\nrate_limit = { per_second = 500, burst = 1000 }\n\n[[clients]]\nid = \"orders-svc\"");
    let config = parse(&toml).expect("valid");
    let limit = |id: &str| {
        config
            .clients
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.rate_limit)
    };
    assert_eq!(
        limit("fast-svc"),
        Some(RateLimit {
            per_second: 500,
            burst: 1000
        })
    );
    assert_eq!(
        limit("orders-svc"),
        Some(RateLimit {
            per_second: 50,
            burst: 100
        })
    );
    assert_eq!(
        parse(BASE).expect("valid").clients[0].rate_limit,
        None,
        "absent = unlimited"
    );
    let zero = BASE.replace(
        "[server]\n",
        "[server]\ndefault_rate_limit = { per_second = 0, burst = 1 }\n",
    );
    assert!(error_of(&zero).contains("server.default_rate_limit"));
}

#[test]
fn the_admin_listener_is_checked() {
    let hash = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
    let ok = BASE.replace(
        "[signing]",
        &format!("[admin]\nlisten = \"127.0.0.1:9090\"\ntoken_sha256 = \"{hash}\"\n[signing]"),
    );
    assert_eq!(
        parse(&ok).expect("valid").admin.map(|a| a.listen),
        Some("127.0.0.1:9090".into())
    );
    let same = ok.replace("127.0.0.1:9090", "127.0.0.1:8080");
    assert!(error_of(&same).contains("admin.listen"));
    let bad_hash = ok.replace(hash, "abc");
    assert!(error_of(&bad_hash).contains("admin.token_sha256"));
}

#[test]
fn an_issuer_that_is_this_server_needs_no_keys() {
    let toml = BASE.replace(
        "[[clients]]",
        "[[issuers]]\nid = \"self\"\nissuer = \"https://sts.example.internal\"\naudiences = [\"x\"]\n[[clients]]",
    );
    let config = parse(&toml).expect("valid");
    assert_eq!(config.issuers[1].keys, KeySource::Local);
}

#[test]
fn loopback_issuers_may_use_http() {
    let toml = BASE.replace("https://idp.example.com/jwks", "http://127.0.0.1:9999/jwks");
    assert!(parse(&toml).is_ok());
    let toml = BASE.replace("https://idp.example.com/jwks", "http://localhost:9999/jwks");
    assert!(parse(&toml).is_ok());
}

#[test]
fn an_unknown_key_set_from_the_environment_is_blamed_on_the_variable() {
    let e = ConfigError {
        file: "tessera.toml".into(),
        key: String::new(),
        message: "unknown field `listn`, expected one of `listen`, `issuer`".into(),
    };
    let vars = vec![
        ("HOME".to_string(), "/root".to_string()),
        (
            "TESSERA__SERVER__LISTN".to_string(),
            "0.0.0.0:1".to_string(),
        ),
    ];
    let blamed = super::blame_environment(e.clone(), vars.into_iter());
    assert!(
        blamed.message.contains("TESSERA__SERVER__LISTN"),
        "{blamed}"
    );
    let untouched = super::blame_environment(e.clone(), std::iter::empty());
    assert_eq!(untouched.message, e.message);
}

#[test]
fn a_value_the_file_cannot_hold_is_named_by_its_key() {
    let bad = BASE.replacen("[[rules]]\n", "[[rules]]\nscope_mode = \"widest\"\n", 1);
    let e = parse(&bad).expect_err("widest");
    assert_eq!(e.key, "rules[0].scope_mode");
    assert_eq!(e.message, "\"widest\" is not intersect or grant");
    let bad = BASE.replacen("[[rules]]\n", "[[rules]]\nactor = \"robot\"\n", 1);
    assert!(error_of(&bad).contains("rules[0].actor: \"robot\" is not none, client or token"));
}

#[test]
fn telemetry_is_off_unless_a_collector_is_named() {
    let config = parse(BASE).expect("valid");
    assert_eq!(config.telemetry.otlp_endpoint, None);
    assert_eq!(config.telemetry.service_name, "tessera");
    let on = parse(&format!(
        "{BASE}[telemetry]\notlp_endpoint = \"http://otel-collector:4318\"\nservice_name = \"sts-eu\"\n"
    ))
    .expect("valid");
    assert_eq!(
        on.telemetry.otlp_endpoint.map(String::from).as_deref(),
        Some("http://otel-collector:4318/")
    );
    assert_eq!(on.telemetry.service_name, "sts-eu");
    for bad in [
        "collector:4318",
        "grpc://collector:4317",
        "http://c:4318/?x=1",
    ] {
        let e = error_of(&format!("{BASE}[telemetry]\notlp_endpoint = \"{bad}\"\n"));
        assert!(e.contains("telemetry.otlp_endpoint"), "{bad}: {e}");
    }
    let empty = error_of(&format!("{BASE}[telemetry]\nservice_name = \" \"\n"));
    assert!(empty.contains("telemetry.service_name"), "{empty}");
    assert_eq!(config.telemetry.sample_ratio, 1.0);
    let tenth = parse(&format!("{BASE}[telemetry]\nsample_ratio = 0.1\n")).expect("valid");
    assert_eq!(tenth.telemetry.sample_ratio, 0.1);
    for bad in ["1.5", "-0.1", "nan"] {
        let e = error_of(&format!("{BASE}[telemetry]\nsample_ratio = {bad}\n"));
        assert!(e.contains("telemetry.sample_ratio"), "{bad}: {e}");
    }
}

/// Every key the file may hold, each set.
const EVERY_KEY: &str = r#"
[server]
listen = "127.0.0.1:8443"
issuer = "https://sts.example.internal"
max_body_bytes = 16384
default_rate_limit = { per_second = 50, burst = 100 }
request_header_timeout = "5s"
body_timeout = "10s"
keep_alive = "30s"
max_connections = 500
max_assertion_lifetime = "1h"
trusted_proxies = ["10.0.0.0/8", "::1"]
pre_auth_limit = { per_second = 5, burst = 20 }
[admin]
listen = "127.0.0.1:9090"
token_sha256 = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
[storage]
url = "postgres://tessera@db.internal/tessera"
retention = "30d"
audit_query_budget = "2s"
[signing]
default_ttl = "5m"
max_ttl = "1h"
[[signing.keys]]
kid = "k2"
alg = "EdDSA"
private_key_file = "keys/k2.pem"
[[signing.keys]]
kid = "k1"
alg = "ES256"
private_key_file = "keys/k1.pem"
[[issuers]]
id = "corp"
issuer = "https://idp.example.com"
jwks_uri = "https://idp.example.com/jwks"
algorithms = ["RS256"]
audiences = ["https://sts.example.internal"]
accept = ["access_token", "id_token", "jwt"]
leeway = "10s"
max_age = "1d"
jwks_refresh = "10m"
jwks_min_refetch = "30s"
access_token_typ = "at+jwt"
[[issuers]]
id = "files"
issuer = "https://files.example.com"
jwks_file = "keys/files.jwks.json"
audiences = ["https://sts.example.internal"]
[[issuers]]
id = "discovered"
issuer = "https://discovered.example.com"
discovery = true
audiences = ["https://sts.example.internal"]
[[issuers]]
id = "opaque"
issuer = "https://opaque.example.com"
introspection_endpoint = "https://opaque.example.com/introspect"
introspection_client_id = "tessera"
introspection_client_secret = "s3cret"
introspection_client_secret_file = "keys/introspection.secret"
introspection_cache = "1m"
opaque_token_prefix = "op_"
audiences = ["https://sts.example.internal"]
[[clients]]
id = "orders-svc"
secret_sha256 = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
rate_limit = { per_second = 1, burst = 2 }
[[clients]]
id = "keyed-svc"
jwks_uri = "https://keyed.example.com/jwks"
jwks_file = "keys/keyed.jwks.json"
algorithms = ["ES256", "EdDSA"]
[[rules]]
name = "r1"
clients = ["orders-svc", "keyed-svc"]
issuers = ["corp", "opaque"]
subjects = ["system:serviceaccount:payments:*", "alice"]
audiences = ["inventory-api"]
resources = ["https://inventory.internal/"]
scopes = ["inventory:read", "inventory:write"]
default_scopes = ["inventory:read"]
scope_mode = "grant"
require_scopes = ["exchange"]
condition = '"staff" in subject.groups'
actor = "token"
actors = [{ issuer = "corp", subject = "svc-batch" }, { issuer = "corp", subject = "svc-2" }]
ttl = "2m"
copy_claims = ["email", "tenant"]
[[rules]]
name = "r2"
actor = "none"
scope_mode = "intersect"
[[rules]]
name = "r3"
actor = "client"
[telemetry]
otlp_endpoint = "http://otel-collector:4318"
service_name = "sts-eu"
sample_ratio = 0.25
"#;

/// The file as `load` reads it, before any check.
fn raw_of(toml: &str) -> RawConfig {
    ::config::Config::builder()
        .add_source(::config::File::from_str(toml, ::config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .expect("a well-formed file")
}

#[test]
fn a_configuration_serializes_to_a_file_that_reads_back_the_same() {
    let every = raw_of(EVERY_KEY);
    let written = toml::to_string(&every).expect("serializable");
    assert_eq!(
        format!("{:?}", raw_of(&written)),
        format!("{every:?}"),
        "{written}"
    );
    let example = include_str!("../../deploy/tessera.toml");
    let written = toml::to_string(&raw_of(example)).expect("serializable");
    let example = parse(example).expect("the example is valid");
    let again = parse(&written).expect("the written example is valid");
    assert_eq!(format!("{again:?}"), format!("{example:?}"), "{written}");
    // Absent keys stay absent rather than written as empty values.
    let minimal = toml::to_string(&raw_of(BASE)).expect("serializable");
    assert!(!minimal.contains("listen"), "{minimal}");
    assert!(!minimal.contains("require_scopes"), "{minimal}");
}

const TXN_RULE: &str = r#"
[[rules]]
name = "gateway-txn"
mints = "txn_token"
clients = ["orders-svc"]
issuers = ["corp", "self_signed", "txn_token"]
scopes = ["trade.read"]
[rules.tctx]
action = "request.details.action"
"#;

#[test]
fn txn_token_rules_and_the_trust_domain_are_checked() {
    let tts = "[transaction_tokens]\ntrust_domain = \"td.example\"\n";
    let config = parse(&format!("{BASE}{TXN_RULE}{tts}")).expect("valid");
    let txn = config.transaction_tokens.as_ref().expect("a TTS");
    assert_eq!(
        (txn.default_ttl, txn.max_ttl, txn.max_replacements),
        (Duration::from_secs(60), Duration::from_secs(300), 8)
    );
    let rule = &config.rules[1];
    assert_eq!(rule.mints, Mints::TxnToken);
    assert_eq!(rule.tctx.len(), 1);
    assert!(
        error_of(&format!("{BASE}{TXN_RULE}"))
            .contains("rules[1].mints: Txn-Tokens need a [transaction_tokens] section"),
    );
    for (change, says) in [
        (
            "scopes = [\"trade.read\"]",
            "rules[1].scopes: must name the scopes",
        ),
        (
            "scopes = [\"trade.read\"]\naudiences = [\"x\"]",
            "rules[1].audiences: a Txn-Token's audience is transaction_tokens.trust_domain",
        ),
        (
            "scopes = [\"trade.read\"]\ndefault_scopes = [\"trade.read\"]",
            "rules[1].default_scopes",
        ),
        (
            "scopes = [\"trade.read\"]\nscope_mode = \"grant\"",
            "rules[1].scope_mode: must be intersect",
        ),
        (
            "scopes = [\"trade.read\"]\nactor = \"client\"",
            "rules[1].actor",
        ),
        (
            "scopes = [\"trade.read\"]\ncopy_claims = [\"email\"]",
            "rules[1].copy_claims",
        ),
        (
            "scopes = [\"trade.read\"]\nttl = \"10m\"",
            "rules[1].ttl: must be more than zero and at most transaction_tokens.max_ttl",
        ),
    ] {
        let replaced = if change.starts_with("scopes = [\"trade.read\"]\n") {
            TXN_RULE.replace("scopes = [\"trade.read\"]", change)
        } else {
            TXN_RULE.replace(change, "scopes = []")
        };
        let err = error_of(&format!("{BASE}{replaced}{tts}"));
        assert!(err.contains(says), "{change}: {err}");
    }
    let bad_cel = TXN_RULE.replace("request.details.action", "request.details.(");
    assert!(error_of(&format!("{BASE}{bad_cel}{tts}")).contains("rules[1].tctx.action"));
    // The subject sources are Txn-Token rules' alone, and no issuer may take their names.
    let access = BASE.replace(
        "issuers = [\"corp\"]",
        "issuers = [\"corp\", \"unsigned_json\"]",
    );
    assert!(
        error_of(&access).contains("rules[0].issuers: \"unsigned_json\" subjects are taken by")
    );
    let with_tctx = format!("{BASE}[rules.tctx]\na = \"1\"\n");
    assert!(error_of(&with_tctx).contains("rules[0].tctx: applies to mints = \"txn_token\""));
    let td_audience = BASE.replace(
        "audiences = [\"inventory-api\"]",
        "audiences = [\"td.example\"]",
    );
    assert!(
        error_of(&format!("{td_audience}{TXN_RULE}{tts}"))
            .contains("rules[0].audiences: \"td.example\" is the trust domain")
    );
    let reserved = BASE.replace("id = \"corp\"", "id = \"txn_token\"");
    assert!(error_of(&reserved).contains("issuers[0].id: \"txn_token\" is reserved"));
    let comma = format!(
        "{BASE}[[clients]]\nid = \"a,b\"\nsecret_sha256 = \"2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\"\n{}{tts}",
        TXN_RULE.replace("clients = [\"orders-svc\"]", "clients = [\"a,b\"]")
    );
    assert!(
        error_of(&comma).contains("separates the requesting workloads"),
        "{}",
        error_of(&comma)
    );
}

const GRANT_RULE: &str = r#"
[[rules]]
name = "to-partner"
mints = "authorization_grant"
clients = ["orders-svc"]
issuers = ["corp"]
audiences = ["https://as.partner.example"]
scopes = ["inventory:read"]
subject_claim = "email"
"#;

#[test]
fn grant_rules_are_checked() {
    let config = parse(&format!("{BASE}{GRANT_RULE}")).expect("valid");
    let rule = &config.rules[1];
    assert_eq!(rule.mints, Mints::AuthorizationGrant);
    assert_eq!(rule.subject_claim.as_deref(), Some("email"));
    assert_eq!(rule.scope_mode, ScopeMode::Intersect);
    for (change, says) in [
        (
            "ttl = \"6m\"",
            "rules[1].ttl: must be more than zero and at most 5m",
        ),
        (
            "actor = \"token\"",
            "rules[1].actor: a grant for another trust domain",
        ),
        (
            "audience_client_id = \"x\"",
            "rules[1].audience_client_id: applies to mints = \"id_jag\"",
        ),
        (
            "subject_claim = \"\"",
            "rules[1].subject_claim: must name a claim",
        ),
    ] {
        let rule = GRANT_RULE.replace("subject_claim = \"email\"", change);
        let err = error_of(&format!("{BASE}{rule}"));
        assert!(err.contains(says), "{change}: {err}");
    }
    let on_access = format!("{BASE}subject_claim = \"email\"\n");
    assert!(
        error_of(&on_access).contains("rules[0].subject_claim: applies to mints"),
        "{}",
        error_of(&on_access)
    );
    // An ID-JAG rule: its issuers accept ID tokens, it names audiences, its scope_mode is grant.
    let id_jag = GRANT_RULE
        .replace("authorization_grant", "id_jag")
        .replace("subject_claim = \"email\"", "audience_client_id = \"f53f\"");
    assert!(
        error_of(&format!("{BASE}{id_jag}")).contains("issuer \"corp\" does not accept id_token")
    );
    let accepting = BASE.replace(
        "audiences = [\"https://sts.example.internal\"]",
        "audiences = [\"https://sts.example.internal\"]\naccept = [\"access_token\", \"id_token\"]",
    );
    let config = parse(&format!("{accepting}{id_jag}")).expect("valid");
    assert_eq!(config.rules[1].scope_mode, ScopeMode::Grant);
    assert_eq!(config.rules[1].audience_client_id.as_deref(), Some("f53f"));
    let no_audience = id_jag.replace(
        "audiences = [\"https://as.partner.example\"]",
        "resources = [\"https://api.partner.example/\"]",
    );
    assert!(error_of(&format!("{accepting}{no_audience}")).contains("rules[1].audiences"));
    // An issuer of grants only needs no audiences; one of subject tokens does.
    let grants_only = BASE.replace(
        "audiences = [\"https://sts.example.internal\"]",
        "accept = [\"authorization_grant\", \"id_jag\"]",
    );
    parse(&grants_only).expect("a grant issuer without audiences");
    // Grants and subject tokens of one issuer are told apart by the access tokens' typ, and
    // never beside ID tokens.
    let mixed = BASE.replace(
        "audiences = [\"https://sts.example.internal\"]",
        "audiences = [\"https://sts.example.internal\"]\naccept = [\"access_token\", \"authorization_grant\"]",
    );
    assert!(error_of(&mixed).contains("issuers[0].accept: taking authorization_grant beside"));
    let typed = mixed.replace("accept = [", "access_token_typ = \"at+jwt\"\naccept = [");
    parse(&typed).expect("typed access tokens tell grants apart");
    let with_id = typed.replace("\"access_token\", ", "\"access_token\", \"id_token\", ");
    assert!(error_of(&with_id).contains("authorization_grant and id_token cannot both"));
    // What a grant grants is Tessera's to set.
    for claim in ["resource", "authorization_details"] {
        let copying = format!("{BASE}copy_claims = [\"{claim}\"]\n");
        assert!(
            error_of(&copying).contains("rules[0].copy_claims"),
            "{claim}"
        );
    }
    let neither = BASE.replace("audiences = [\"https://sts.example.internal\"]", "");
    assert!(error_of(&neither).contains("issuers[0].audiences"));
    assert!(
        error_of(&BASE.replace(
            "audiences = [\"https://sts.example.internal\"]",
            "audiences = [\"https://sts.example.internal\"]\naccept = [\"grant\"]",
        ))
        .contains("is not one of access_token, id_token, jwt, authorization_grant, id_jag")
    );
}
