//! The client libraries platform teams already use, driving the real server: Python's
//! google-auth, Authlib and PyJWT, Node's jose and openid-client 6. Each scenario is a script
//! beside this file that exits non-zero on anything unexpected and prints, last, a JSON line of
//! what it obtained; the test then checks that against the audit records.
//!
//! The libraries come from `tests/interop/install.sh DIR` (pinned versions) and are found through
//! `TESSERA_INTEROP_DIR=DIR`. Without the variable these tests return at once, so a plain
//! `cargo test` needs nothing outside the build; with it, a missing library fails them.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it does not expect"
)]

#[path = "../api/helpers/mod.rs"]
mod helpers;
#[path = "../api/storage.rs"]
#[allow(
    dead_code,
    reason = "the suites share the storage helpers; interop uses a part"
)]
mod storage;

/// Interop runs on SQLite: the libraries see HTTP, not the store.
fn on_postgres() -> bool {
    false
}

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use helpers::*;

const LIBRARIES_VAR: &str = "TESSERA_INTEROP_DIR";

/// Where `install.sh` put the libraries, `None` when this run is not asked for them.
struct Libraries {
    python: PathBuf,
    node_dir: PathBuf,
}

fn libraries() -> Option<Libraries> {
    let Some(dir) = std::env::var_os(LIBRARIES_VAR) else {
        eprintln!("interop libraries not asked for ({LIBRARIES_VAR} unset): nothing run");
        return None;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let libraries = Libraries {
        python: dir.join("venv/bin/python"),
        node_dir: dir.join("node"),
    };
    for needed in [
        libraries.python.clone(),
        libraries.node_dir.join("node_modules/openid-client"),
        libraries.node_dir.join("node_modules/jose"),
    ] {
        assert!(
            needed.exists(),
            "{} is missing: run `bash tests/interop/install.sh {}`",
            needed.display(),
            dir.display()
        );
    }
    Some(libraries)
}

/// Runs `script` with `env` and returns the JSON of its last line, failing with everything it
/// printed when it exits non-zero.
async fn run(libraries: &Libraries, script: &str, env: Vec<(&str, String)>) -> Value {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(script);
    let (mut command, copy) = if script.ends_with(".py") {
        let mut command = Command::new(&libraries.python);
        command.arg(&source);
        (command, None)
    } else {
        // Node resolves packages from the script's folder: run a copy beside node_modules.
        let copy = libraries
            .node_dir
            .join(format!("{}-{script}", uuid_like().replace(['-', '_'], "")));
        std::fs::copy(&source, &copy).unwrap();
        let mut command = Command::new("node");
        command.arg(&copy);
        (command, Some(copy))
    };
    command.envs(env).env("PYTHONDONTWRITEBYTECODE", "1");
    // The server under test runs on this test's runtime: wait for the script off it.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    if let Some(copy) = copy {
        std::fs::remove_file(copy).unwrap();
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{script} printed no JSON last ({e}):\n{stdout}"))
}

/// A server whose issuer is its own loopback URL, as discovery needs; signing with `alg`; with
/// a client `keyed-svc` authenticating by `private_key_jwt` with the keys `client_keys` serves;
/// allowing assertions an hour ahead, as Authlib signs them.
struct Interop {
    app: TestApp,
    client_keys: Vec<TestKey>,
    _client_idp: TestIdp,
    files: tempfile::TempDir,
}

impl Interop {
    async fn start(alg: Algorithm) -> Self {
        let files = tempfile::tempdir().unwrap();
        let signing = files.path().join("signing.pem");
        std::fs::write(&signing, tessera::keys::generate_pkcs8_pem(alg).unwrap()).unwrap();
        let client_keys = vec![
            TestKey::rsa(),
            TestKey::generate(Algorithm::ES256, "client-es256"),
            TestKey::generate(Algorithm::EdDSA, "client-ed25519"),
        ];
        for key in &client_keys {
            std::fs::write(files.path().join(format!("{}.pem", key.kid)), &key.pem).unwrap();
        }
        let client_idp = TestIdp::start(&client_keys.iter().collect::<Vec<_>>()).await;
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let keyed = format!(
            r#"
id = "keyed-svc"
jwks_uri = "{}/jwks"
"#,
            client_idp.url
        );
        let app = TestApp::spawn_with(|c| {
            c.server.listen = Some(format!("127.0.0.1:{port}"));
            c.server.issuer = url.clone();
            c.issuer_mut("corp").audiences = Some(vec![url.clone()]);
            c.server.max_assertion_lifetime = Some("1h".into());
            let key = &mut c.signing.keys[0];
            key.alg = tessera::oauth::algorithm::names(alg)[0].clone();
            key.private_key_file = signing.display().to_string();
            c.clients.insert(0, entry(&keyed));
            c.rule_mut("orders-to-inventory")
                .clients
                .push("keyed-svc".into());
        })
        .await;
        assert_eq!(app.url, url);
        let interop = Self {
            app,
            client_keys,
            _client_idp: client_idp,
            files,
        };
        interop.wait_for_client_keys().await;
        interop
    }

    /// A client's keys are fetched in the background, outside readiness.
    async fn wait_for_client_keys(&self) {
        let subject = self.subject_token();
        for _ in 0..200 {
            let key = &self.client_keys[0];
            let assertion = key.sign(&json!({
                "iss": "keyed-svc", "sub": "keyed-svc", "aud": format!("{}/token", self.app.url),
                "exp": now() + 60, "iat": now(), "jti": uuid_like(),
            }));
            let resp = self
                .app
                .post_token(
                    &[
                        ("grant_type", TOKEN_EXCHANGE),
                        ("subject_token", subject.as_str()),
                        ("subject_token_type", ACCESS_TOKEN),
                        ("audience", "inventory-api"),
                        ("client_id", "keyed-svc"),
                        (
                            "client_assertion_type",
                            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                        ),
                        ("client_assertion", assertion.as_str()),
                    ],
                    None,
                )
                .await;
            if resp.status() == 200 {
                return;
            }
            assert_eq!(resp.status(), 503, "{}", resp.text().await.unwrap());
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the keyed client's keys never arrived");
    }

    fn subject_token(&self) -> String {
        self.app
            .key
            .sign(&self.app.claims(json!({ "aud": self.app.url })))
    }

    /// What every script is told: where Tessera is, a subject token, the two clients.
    fn env(&self) -> Vec<(&'static str, String)> {
        let keys: Vec<Value> = self
            .client_keys
            .iter()
            .map(|k| {
                json!({
                    "alg": tessera::oauth::algorithm::names(k.alg)[0],
                    "kid": k.kid,
                    "pem_file": self.files.path().join(format!("{}.pem", k.kid)),
                })
            })
            .collect();
        vec![
            ("TESSERA_URL", self.app.url.clone()),
            ("ISSUER", self.app.url.clone()),
            ("SUBJECT_TOKEN", self.subject_token()),
            ("CLIENT_ID", "orders-svc".into()),
            ("CLIENT_SECRET", ORDERS_SECRET.into()),
            ("KEYED_CLIENT_ID", "keyed-svc".into()),
            ("CLIENT_KEYS", Value::from(keys).to_string()),
        ]
    }

    /// Each `jti` the script reported is a granted record of the audit trail.
    fn assert_recorded(&self, reported: &Value) {
        let records = self.app.records(&["--outcome", "granted"]);
        let jtis = reported["jtis"].as_array().unwrap();
        assert!(!jtis.is_empty());
        for jti in jtis {
            assert!(
                records.iter().any(|r| r["token_jti"] == *jti),
                "{jti} is not among the granted records"
            );
        }
    }
}

/// A loopback port nobody listens on now, for a server whose issuer must name its own port.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn authlib_validates_the_metadata_document() {
    let Some(libraries) = libraries() else { return };
    // The default test server: an https issuer, as deployed (Authlib insists on https).
    let app = TestApp::spawn().await;
    let reported = run(
        &libraries,
        "authlib_metadata.py",
        vec![("TESSERA_URL", app.url.clone()), ("ISSUER", STS.into())],
    )
    .await;
    assert!(
        reported["validated"]
            .as_array()
            .unwrap()
            .contains(&json!("response_types_supported"))
    );
}

#[tokio::test]
async fn google_auth_sts_client_exchanges_and_reads_a_refusal() {
    let Some(libraries) = libraries() else { return };
    let interop = Interop::start(Algorithm::ES256).await;
    let reported = run(&libraries, "google_auth_sts.py", interop.env()).await;
    interop.assert_recorded(&reported);
    let denied = interop.app.records(&["--outcome", "denied"]);
    assert!(denied.iter().any(|r| r["error"] == "invalid_target"));
}

#[tokio::test]
async fn authlib_session_exchanges_with_a_secret_and_with_private_key_jwt() {
    let Some(libraries) = libraries() else { return };
    let interop = Interop::start(Algorithm::ES256).await;
    let mut env = interop.env();
    // Authlib refuses plain http; Tessera is on loopback here.
    env.push(("AUTHLIB_INSECURE_TRANSPORT", "1".into()));
    let reported = run(&libraries, "authlib_session.py", env).await;
    assert_eq!(reported["jtis"].as_array().unwrap().len(), 4);
    interop.assert_recorded(&reported);
}

#[tokio::test]
async fn openid_client_discovers_exchanges_with_dpop_introspects_and_revokes() {
    let Some(libraries) = libraries() else { return };
    let interop = Interop::start(Algorithm::ES256).await;
    let reported = run(&libraries, "openid_client.mjs", interop.env()).await;
    assert_eq!(reported["jtis"].as_array().unwrap().len(), 6);
    interop.assert_recorded(&reported);
    let revoked = &reported["revoked"];
    let record = interop
        .app
        .records(&["--jti", revoked.as_str().unwrap()])
        .pop()
        .unwrap();
    assert!(record["revoked_at"].is_string(), "{record}");
}

/// A resource server verifying what Tessera minted, with each signing algorithm it offers.
#[tokio::test]
async fn pyjwt_and_jose_verify_tokens_of_every_signing_algorithm() {
    let Some(libraries) = libraries() else { return };
    for alg in [
        Algorithm::ES256,
        Algorithm::EdDSA,
        Algorithm::RS256,
        Algorithm::PS256,
    ] {
        let interop = Interop::start(alg).await;
        let resp = interop.app.exchange_subject(&interop.subject_token()).await;
        assert_eq!(resp.status(), 200);
        let token = resp.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let env = vec![
            ("JWKS_URI", format!("{}/jwks.json", interop.app.url)),
            ("ISSUER", interop.app.url.clone()),
            ("AUDIENCE", "inventory-api".into()),
            ("TOKEN", token.clone()),
        ];
        for script in ["pyjwt_verify.py", "jose_verify.mjs"] {
            let verified = run(&libraries, script, env.clone()).await;
            assert_eq!(verified["claims"], claims_of(&token), "{script}, {alg:?}");
            assert_eq!(
                verified["alg"],
                header_of(&token)["alg"],
                "{script}, {alg:?}"
            );
        }
    }
}

/// The README's client library snippets are lines of the scripts above, so what it shows is
/// what ran. This needs no library: it runs in every `cargo test`.
#[test]
fn the_readme_snippets_are_taken_from_the_scripts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    let mut checked = 0;
    for (at, line) in lines.iter().enumerate() {
        let Some(script) = line
            .strip_prefix("<!-- snippet: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines[at - 1],
            "```",
            "a snippet marker follows its code block"
        );
        let start = (0..at - 1)
            .rev()
            .find(|&i| lines[i].starts_with("```"))
            .unwrap();
        let source = std::fs::read_to_string(root.join(script)).unwrap();
        let source: Vec<&str> = source.lines().map(str::trim).collect();
        for shown in &lines[start + 1..at - 1] {
            assert!(
                shown.trim().is_empty() || source.contains(&shown.trim()),
                "README line `{shown}` is not in {script}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 6, "{checked} snippets found");
}

/// Enterprise-managed authorization of an AI agent (ID-JAG): Authlib as the agent, PyJWT as the
/// resource authorization server's check of the grant, between two Tessera instances.
#[tokio::test]
async fn authlib_obtains_an_id_jag_and_presents_it_with_jwt_bearer() {
    let Some(libraries) = libraries() else { return };
    const RAS: &str = "https://as.chat.example";
    const MCP: &str = "https://mcp.chat.example/";
    let idp = TestApp::spawn_with(|c| {
        c.issuer_mut("corp").accept = Some(vec![
            tessera::config::TokenKind::AccessToken,
            tessera::config::TokenKind::IdToken,
        ]);
        c.append(&format!(
            r#"
[[rules]]
name = "agent-to-chat"
mints = "id_jag"
clients = ["orders-svc"]
issuers = ["corp"]
audiences = ["{RAS}"]
resources = ["{MCP}"]
scopes = ["chat.read"]
"#
        ));
    })
    .await;
    let ras = TestApp::spawn_with(|c| {
        c.server.issuer = RAS.into();
        c.rules.clear();
        c.append(&format!(
            r#"
[[issuers]]
id = "enterprise-idp"
issuer = "{STS}"
jwks_uri = "{}/jwks.json"
accept = ["id_jag"]

[[rules]]
name = "agents"
clients = ["orders-svc"]
issuers = ["enterprise-idp"]
resources = ["{MCP}"]
scopes = ["chat.read"]
"#,
            idp.url
        ));
    })
    .await;
    let id_token = idp.key.sign(&idp.claims(json!({
        "aud": "orders-svc", "nonce": "n", "auth_time": now(), "scope": null,
    })));
    let env = vec![
        ("IDP_URL", idp.url.clone()),
        ("RAS_URL", ras.url.clone()),
        ("RAS_ISSUER", RAS.to_string()),
        ("RESOURCE", MCP.to_string()),
        ("CLIENT_ID", "orders-svc".to_string()),
        ("CLIENT_SECRET", ORDERS_SECRET.to_string()),
        ("ID_TOKEN", id_token),
        ("AUTHLIB_INSECURE_TRANSPORT", "1".to_string()),
    ];
    let reported = run(&libraries, "authlib_id_jag.py", env).await;
    let issued = idp.records(&["--grant-kind", "id_jag"]);
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["token_jti"], reported["id_jag_jti"]);
    let taken = ras.records(&["--grant-type", "jwt-bearer"]);
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0]["subject_jti"], reported["id_jag_jti"]);
    assert_eq!(taken[0]["token_jti"], reported["token_jti"]);
}
