//! The cryptography of one exchange: verifying a subject token (RS256, ES256) through the real
//! issuer registry, and minting (ES256, EdDSA, RS256). `cargo bench --bench crypto`.

#![expect(clippy::unwrap_used, reason = "a benchmark stops at the first failure")]

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, json};
use tessera::config::{IssuerConfig, KeySource, TokenKind};
use tessera::issuers::{Fetcher, Issuers};
use tessera::keys::{SigningKey, SigningKeys, generate_pkcs8_pem, public_jwk_of};
use tessera::oauth::TokenType;
use tessera::tokens::mint::{Grant, mint};
use tessera::tokens::verify;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn bench(c: &mut Criterion) {
    tessera::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("exchange cryptography");
    group.measurement_time(Duration::from_secs(3));

    for alg in [Algorithm::RS256, Algorithm::ES256] {
        let pem = generate_pkcs8_pem(alg).unwrap();
        let mut jwk = public_jwk_of(alg, pem.as_bytes()).unwrap();
        jwk.common.key_id = Some("k".into());
        let jwks = dir.path().join(format!("{alg:?}.json"));
        std::fs::write(&jwks, json!({"keys": [jwk]}).to_string()).unwrap();
        let issuer = IssuerConfig {
            id: "corp".into(),
            issuer: "https://idp".into(),
            keys: KeySource::File(jwks),
            algorithms: vec![alg],
            audiences: vec!["https://sts".into()],
            accept: vec![TokenKind::AccessToken],
            leeway: Duration::from_secs(30),
            max_age: Some(Duration::from_secs(86_400)),
            jwks_refresh: Duration::from_secs(600),
            jwks_min_refetch: Duration::from_secs(30),
            access_token_typ: None,
            introspection: None,
        };
        let key_file = dir.path().join("sts.pem");
        std::fs::write(&key_file, generate_pkcs8_pem(Algorithm::ES256).unwrap()).unwrap();
        let signing = SigningKeys::load(&tessera::config::SigningConfig {
            default_ttl: Duration::from_secs(300),
            max_ttl: Duration::from_secs(3600),
            keys: vec![tessera::config::SigningKeyConfig {
                kid: "s".into(),
                alg: Algorithm::ES256,
                private_key_file: key_file,
            }],
        })
        .unwrap();
        let fetcher = Fetcher::new(Duration::from_secs(5), Default::default()).unwrap();
        let issuers = runtime.block_on(Issuers::new(
            &[issuer],
            &signing,
            fetcher,
            runtime.handle().clone(),
        ));
        let encoding = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            _ => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        };
        let mut header = Header::new(alg);
        header.kid = Some("k".into());
        let token = jsonwebtoken::encode(
            &header,
            &json!({"iss": "https://idp", "sub": "alice", "aud": "https://sts", "iat": now(), "exp": now() + 3600, "scope": "a b", "jti": "j"}),
            &encoding,
        )
        .unwrap();
        group.bench_function(format!("verify a {alg:?} subject token"), |b| {
            b.iter(|| {
                runtime
                    .block_on(verify::verify(
                        black_box(&token),
                        TokenType::AccessToken,
                        &issuers,
                        now(),
                        "subject token",
                        &|_| false,
                    ))
                    .unwrap()
            })
        });
    }

    let grant = Grant {
        subject: "alice".into(),
        audiences: vec!["inventory-api".into()],
        client_id: "orders-svc".into(),
        scopes: tessera::oauth::Scopes::parse("inventory:read").expect("scope"),
        issued_at: now(),
        expires_at: now() + 300,
        act: Some(json!({"sub": "orders-svc"})),
        copied: Map::new(),
        cnf_jkt: None,
    };
    for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
        let key =
            SigningKey::from_pem("k", alg, generate_pkcs8_pem(alg).unwrap().as_bytes()).unwrap();
        group.bench_function(format!("mint with {alg:?}"), |b| {
            b.iter(|| mint(black_box(&key), "https://sts", black_box(&grant)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
