//! `TestApp` (the real server on port 0 with its own database) and `TestIdp` (an identity
//! provider serving JWKS and discovery over HTTP).

#![allow(dead_code, reason = "each test uses a part of the helpers")]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tessera::keys::{generate_pkcs8_pem, public_jwk_of};

pub use crate::storage::Database;

pub const STS: &str = "https://sts.test.internal";
pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ORDERS_SECRET: &str = "orders-secret";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests";

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A private key of the test identity provider, and its public JWK.
#[derive(Clone)]
pub struct TestKey {
    pub alg: Algorithm,
    pub kid: String,
    pub pem: String,
    pub jwk: Value,
}

impl TestKey {
    pub fn generate(alg: Algorithm, kid: &str) -> Self {
        tessera::install_crypto_provider();
        let pem = generate_pkcs8_pem(alg).unwrap();
        let mut jwk: Jwk = public_jwk_of(alg, pem.as_bytes()).unwrap();
        jwk.common.key_id = Some(kid.to_string());
        Self {
            alg,
            kid: kid.into(),
            pem,
            jwk: serde_json::to_value(jwk).unwrap(),
        }
    }

    /// A JWT whose header names the algorithm `alg_name` (e.g. RFC 9864's `Ed25519`, which
    /// jsonwebtoken cannot write), signed with this key.
    pub fn sign_named(&self, alg_name: &str, header: Value, claims: &Value) -> String {
        let mut header = header;
        header["alg"] = Value::String(alg_name.into());
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        let input = format!("{}.{}", part(&header), part(claims));
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding(), self.alg).unwrap();
        format!("{input}.{signature}")
    }

    /// One RSA key for the whole run: generating RSA keys is slow.
    pub fn rsa() -> Self {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(|| Self::generate(Algorithm::RS256, "rsa-1"))
            .clone()
    }

    pub fn encoding(&self) -> EncodingKey {
        match self.alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(self.pem.as_bytes()).unwrap(),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(self.pem.as_bytes()).unwrap(),
            _ => EncodingKey::from_rsa_pem(self.pem.as_bytes()).unwrap(),
        }
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.alg, Some(&self.kid), claims)
    }

    pub fn sign_as(&self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &self.encoding()).unwrap()
    }
}

/// How the test identity provider answers a JWKS request.
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Behaviour {
    #[default]
    Normal,
    Down,
    Hang,
    Huge,
    Malformed,
    Redirect,
}

#[derive(Default)]
struct IdpState {
    keys: Vec<Value>,
    issuer: String,
    behaviour: Behaviour,
    fetches: usize,
    /// Opaque tokens this provider says are active, with their introspection answers.
    opaque: std::collections::HashMap<String, Value>,
    introspections: usize,
}

/// An identity provider on loopback: `/jwks`, `/.well-known/openid-configuration`.
pub struct TestIdp {
    pub url: String,
    state: Arc<Mutex<IdpState>>,
}

impl TestIdp {
    pub async fn start(keys: &[&TestKey]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let state = Arc::new(Mutex::new(IdpState {
            keys: keys.iter().map(|k| k.jwk.clone()).collect(),
            issuer: url.clone(),
            ..Default::default()
        }));
        let shared = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/jwks", web::get().to(jwks))
                .route("/introspect", web::post().to(introspect))
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { url, state }
    }

    pub fn publish(&self, keys: &[&TestKey]) {
        self.state.lock().unwrap().keys = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    pub fn set_down(&self, down: bool) {
        self.behave(if down {
            Behaviour::Down
        } else {
            Behaviour::Normal
        });
    }

    pub fn behave(&self, behaviour: Behaviour) {
        self.state.lock().unwrap().behaviour = behaviour;
    }

    /// Makes `token` an active opaque token whose introspection answers `answer`.
    pub fn issue_opaque(&self, token: &str, answer: Value) {
        self.state
            .lock()
            .unwrap()
            .opaque
            .insert(token.into(), answer);
    }

    pub fn introspections(&self) -> usize {
        self.state.lock().unwrap().introspections
    }

    pub fn fetches(&self) -> usize {
        self.state.lock().unwrap().fetches
    }
}

async fn jwks(state: web::Data<Arc<Mutex<IdpState>>>) -> HttpResponse {
    let (behaviour, keys, issuer) = {
        let mut s = state.lock().unwrap();
        s.fetches += 1;
        (s.behaviour, s.keys.clone(), s.issuer.clone())
    };
    match behaviour {
        Behaviour::Normal => HttpResponse::Ok().json(json!({ "keys": keys })),
        Behaviour::Down => HttpResponse::ServiceUnavailable().finish(),
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            HttpResponse::Ok().json(json!({ "keys": keys }))
        }
        Behaviour::Huge => HttpResponse::Ok()
            .content_type("application/json")
            .body(format!(
                "{{\"keys\": [], \"padding\": \"{}\"}}",
                "x".repeat(1024 * 1024)
            )),
        Behaviour::Malformed => HttpResponse::Ok()
            .content_type("application/json")
            .body("{\"keys\": [ this is not json"),
        Behaviour::Redirect => HttpResponse::Found()
            .insert_header(("location", format!("{issuer}/elsewhere")))
            .finish(),
    }
}

/// RFC 7662, for the client `tessera` with secret `introspect-secret`.
async fn introspect(
    req: actix_web::HttpRequest,
    body: String,
    state: web::Data<Arc<Mutex<IdpState>>>,
) -> HttpResponse {
    let mut s = state.lock().unwrap();
    s.introspections += 1;
    if s.behaviour == Behaviour::Down {
        return HttpResponse::ServiceUnavailable().finish();
    }
    let expected = format!("Basic {}", STANDARD.encode("tessera:introspect-secret"));
    if req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return HttpResponse::Unauthorized().finish();
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let token = form
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    match s.opaque.get(&token) {
        Some(answer) => HttpResponse::Ok().json(answer),
        None => HttpResponse::Ok().json(json!({"active": false})),
    }
}

async fn discovery(state: web::Data<Arc<Mutex<IdpState>>>) -> HttpResponse {
    let s = state.lock().unwrap();
    HttpResponse::Ok().json(json!({ "issuer": s.issuer, "jwks_uri": format!("{}/jwks", s.issuer) }))
}

/// The test configuration: one trusted issuer (the test IdP), two clients, one rule.
pub fn default_config(idp: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
issuer = "{STS}"
max_body_bytes = 8192

[admin]
listen = "127.0.0.1:0"
token_sha256 = "{admin}"

[storage]
url = "sqlite://tessera.db"

[signing]
default_ttl = "5m"
max_ttl = "1h"
[[signing.keys]]
kid = "sts-1"
alg = "ES256"
private_key_file = "signing.pem"

[[issuers]]
id = "corp"
issuer = "{idp}"
jwks_uri = "{idp}/jwks"
algorithms = ["RS256", "ES256"]
audiences = ["{STS}"]
jwks_min_refetch = "0s"

[[clients]]
id = "orders-svc"
secret_sha256 = "{orders}"

[[clients]]
id = "billing-svc"
secret_sha256 = "{billing}"

[[rules]]
name = "orders-to-inventory"
clients = ["orders-svc"]
issuers = ["corp"]
audiences = ["inventory-api"]
resources = ["https://inventory.internal/"]
scopes = ["inventory:read", "inventory:write"]
default_scopes = ["inventory:read"]
actor = "client"
copy_claims = ["email"]
"#,
        orders = tessera::clients::sha256_hex(ORDERS_SECRET),
        billing = tessera::clients::sha256_hex("billing-secret"),
        admin = tessera::clients::sha256_hex(ADMIN_TOKEN),
    )
}

/// The test configuration with the corp issuer's `jwks_uri` line replaced by `source`.
pub fn with_key_source(config: String, source: &str) -> String {
    let line = config
        .lines()
        .find(|l| l.starts_with("jwks_uri = "))
        .unwrap()
        .to_string();
    config.replacen(&line, source, 1)
}

pub struct TestApp {
    pub url: String,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub idp: TestIdp,
    pub key: TestKey,
    pub http: reqwest::Client,
    pub admin_url: String,
    pub database: Database,
    handle: tessera::startup::AppHandle,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|c| c).await
    }

    /// Starts with the default configuration as `edit` changes it, and waits until ready.
    pub async fn spawn_with(edit: impl FnOnce(String) -> String) -> Self {
        let app = Self::start(edit).await;
        app.wait_ready().await;
        app
    }

    /// Starts without waiting for readiness.
    pub async fn start(edit: impl FnOnce(String) -> String) -> Self {
        Self::start_with_clock(tessera::clock::Clock::system(), edit).await
    }

    /// Starts on `clock`, without waiting for readiness.
    pub async fn start_with_clock(
        clock: tessera::clock::Clock,
        edit: impl FnOnce(String) -> String,
    ) -> Self {
        let key = TestKey::rsa();
        let idp = TestIdp::start(&[&key]).await;
        let dir = tempfile::tempdir().unwrap();
        let signing = generate_pkcs8_pem(Algorithm::ES256).unwrap();
        std::fs::write(dir.path().join("signing.pem"), signing).unwrap();
        let config_path = dir.path().join("tessera.toml");
        let database = Database::fresh("tessera");
        std::fs::write(
            &config_path,
            database.configure(&edit(default_config(&idp.url))),
        )
        .unwrap();
        let config = tessera::config::load(&config_path).unwrap();
        let app = tessera::startup::Application::build_with_clock(config, clock)
            .await
            .unwrap();
        let url = format!("http://127.0.0.1:{}", app.port());
        let admin_url = app
            .admin_port()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .unwrap_or_default();
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        Self {
            url,
            dir,
            config_path,
            idp,
            key,
            http: reqwest::Client::new(),
            admin_url,
            database,
            handle,
        }
    }

    /// The real `tessera serve` on a copy of this app's configuration (as `edit` changes it)
    /// with its own database (`<name>.db`, or a fresh PostgreSQL database), logging at
    /// `log_level`; ready when this returns.
    /// Also returns the copy's path and text, for tests that change it.
    pub async fn serve_copy(
        &self,
        name: &str,
        log_level: &str,
        edit: impl FnOnce(String) -> String,
    ) -> (Served, PathBuf, String) {
        self.serve_copy_with_env(name, log_level, &[], edit).await
    }

    /// As `serve_copy`, the process given the environment variables `env` too.
    pub async fn serve_copy_with_env(
        &self,
        name: &str,
        log_level: &str,
        env: &[(&str, &str)],
        edit: impl FnOnce(String) -> String,
    ) -> (Served, PathBuf, String) {
        let database = Database::fresh(name);
        let config = edit(
            std::fs::read_to_string(&self.config_path)
                .unwrap()
                .replace(&self.database.url, &database.url),
        );
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, &config).unwrap();
        let mut served = Served::launch(&path, log_level, None, env);
        served.database = Some(database);
        served.wait_ready(&self.http).await;
        (served, path, config)
    }

    /// A second instance: the real `tessera serve` on this app's configuration as it is,
    /// the same database and signing key included, as behind one load balancer.
    pub async fn serve_another_instance(&self) -> Served {
        let served = Served::start(&self.config_path);
        served.wait_ready(&self.http).await;
        served
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }

    pub async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.url)).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not become ready");
    }

    /// GET on the admin API with the admin token.
    pub async fn admin_get(&self, path_and_query: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path_and_query}", self.admin_url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
    }

    pub async fn admin_revoke(&self, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}/admin/revoke", self.admin_url))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// POST a form to a client-authenticated endpoint as orders-svc.
    pub async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        basic: (&str, &str),
    ) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.url))
            .basic_auth(basic.0, Some(basic.1))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
            .await
            .unwrap()
    }

    /// Exchanges a fresh subject token and returns the minted token.
    pub async fn minted(&self, extra: Value) -> String {
        let resp = self.exchange_subject(&self.subject_token(extra)).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    /// Runs SQL on this server's database behind its back, as an intruder or a fault would.
    pub fn sql(&self, statements: &str) {
        crate::storage::execute(&self.database.url, self.dir.path(), statements);
    }

    /// Everything this server's database holds, as text.
    pub fn database_contents(&self) -> String {
        crate::storage::contents(&self.database.url, self.dir.path())
    }

    /// Standard subject token claims, with `extra` merged over them.
    pub fn claims(&self, extra: Value) -> Value {
        let t = now();
        let mut claims = json!({
            "iss": self.idp.url, "sub": "alice", "aud": STS, "iat": t, "exp": t + 600,
            "scope": "inventory:read inventory:write", "jti": format!("subj-{}", uuid_like()),
            "email": "alice@example.com",
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
        claims
    }

    pub fn subject_token(&self, extra: Value) -> String {
        self.key.sign(&self.claims(extra))
    }

    /// POST /token with HTTP Basic as orders-svc and these form fields.
    pub async fn exchange(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_token(form, Some(("orders-svc", ORDERS_SECRET)))
            .await
    }

    pub async fn post_token(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> reqwest::Response {
        let body = serde_urlencoded::to_string(form).unwrap();
        let mut req = self
            .http
            .post(format!("{}/token", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some((id, secret)) = basic {
            req = req.header(
                "authorization",
                format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
            );
        }
        req.send().await.unwrap()
    }

    /// A standard exchange of `subject` for inventory-api.
    pub async fn exchange_subject(&self, subject: &str) -> reqwest::Response {
        self.exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "inventory-api"),
        ])
        .await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
    }

    /// `tessera ARGS --config <this app's file>`.
    pub fn cli(&self, args: &[&str]) -> Output {
        run_cli(args, Some(&self.config_path))
    }

    /// Records through `tessera audit --format json`, newest first.
    pub fn records(&self, filters: &[&str]) -> Vec<Value> {
        let mut args = vec!["audit", "--format", "json"];
        if !filters.contains(&"--limit") {
            args.extend(["--limit", "10000"]);
        }
        args.extend_from_slice(filters);
        let out = self.cli(&args);
        assert!(
            out.status.success(),
            "audit failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

pub fn run_cli(args: &[&str], config: Option<&Path>) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(args).env_remove("TESSERA_CONFIG");
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    cmd.output().unwrap()
}

pub fn uuid_like() -> String {
    let mut b = [0u8; 12];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    URL_SAFE_NO_PAD.encode(b)
}

/// Asserts an OAuth error response and returns its description.
pub async fn assert_error(resp: reqwest::Response, status: u16, code: &str) -> String {
    let got = resp.status().as_u16();
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (got, body["error"].as_str().unwrap_or("")),
        (status, code),
        "body: {body}"
    );
    body["error_description"].as_str().unwrap().to_string()
}

/// The claims of a JWT, unverified (for reading what the server minted).
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

pub fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// `tessera serve` in a child process; its stderr is collected.
pub struct Served {
    pub child: Child,
    pub url: String,
    pub admin_url: Option<String>,
    /// Dropped after the process is killed.
    pub database: Option<Database>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Served {
    pub fn start(config: &std::path::Path) -> Self {
        Self::start_with_log(config, "info")
    }

    /// Starts with `TESSERA_LOG=level`; stderr is kept in memory and in `<name>.log` beside
    /// the configuration.
    pub fn start_with_log(config: &std::path::Path, level: &str) -> Self {
        Self::launch(config, level, None, &[])
    }

    /// Starts as another (unprivileged) user: root writes whatever the permissions say.
    pub fn start_as(config: &std::path::Path, uid: u32) -> Self {
        Self::launch(config, "info", Some(uid), &[])
    }

    fn launch(
        config: &std::path::Path,
        level: &str,
        uid: Option<u32>,
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        command
            .args(["serve", "--config"])
            .arg(config)
            .env("TESSERA_LOG", level)
            .envs(env.iter().copied())
            .stderr(Stdio::piped());
        if let Some(uid) = uid {
            std::os::unix::process::CommandExt::uid(&mut command, uid);
            std::os::unix::process::CommandExt::gid(&mut command, uid);
        }
        let mut child = command.spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let lines = log.clone();
        let log_file = config.with_extension("log");
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(log_file).ok();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let port = |l: &str| {
                    l.split("port=")
                        .nth(1)
                        .and_then(|p| p.split_whitespace().next())
                        .map(str::to_string)
                };
                if line.contains("admin API is listening") {
                    let _ = port_tx.send(("admin", port(&line)));
                } else if line.contains("tessera is listening") {
                    let _ = port_tx.send(("public", port(&line)));
                }
                if let Some(f) = file.as_mut() {
                    let _ = std::io::Write::write_all(f, format!("{line}\n").as_bytes());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let (mut url, mut admin_url) = (None, None);
        while url.is_none()
            || (admin_url.is_none()
                && std::fs::read_to_string(config)
                    .unwrap_or_default()
                    .contains("[admin]"))
        {
            match port_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the server did not start")
            {
                ("admin", Some(p)) => admin_url = Some(format!("http://127.0.0.1:{p}")),
                (_, Some(p)) => url = Some(format!("http://127.0.0.1:{p}")),
                _ => {}
            }
        }
        Self {
            child,
            url: url.unwrap(),
            admin_url,
            database: None,
            log,
        }
    }

    pub fn hangup(&self) {
        self.signal("-HUP");
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, http: &reqwest::Client) {
        for _ in 0..200 {
            if http
                .get(format!("{}/readyz", self.url))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the served binary did not become ready");
    }

    pub fn logged(&self, text: &str) -> bool {
        self.count_logged(text) > 0
    }

    /// The lines logged so far that hold `text`.
    pub fn lines_with(&self, text: &str) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .cloned()
            .collect()
    }

    pub fn count_logged(&self, text: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `clients` tasks exchanging `subject` at `url` in a loop until an answer is not a token (the
/// server stopped or died); each returns the `jti`s of the tokens it received.
pub fn exchange_until_gone(
    url: &str,
    subject: &str,
    clients: usize,
) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    let http = reqwest::Client::new();
    let body = serde_urlencoded::to_string([
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "inventory-api"),
    ])
    .unwrap();
    (0..clients)
        .map(|_| {
            let (http, url, body) = (http.clone(), url.to_string(), body.clone());
            tokio::spawn(async move {
                let mut jtis = Vec::new();
                loop {
                    let sent = http
                        .post(format!("{url}/token"))
                        .basic_auth("orders-svc", Some(ORDERS_SECRET))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body.clone())
                        .send()
                        .await;
                    let Ok(resp) = sent else { break };
                    let Ok(answer) = resp.json::<Value>().await else {
                        break;
                    };
                    let Some(token) = answer["access_token"].as_str() else {
                        break;
                    };
                    jtis.push(claims_of(token)["jti"].as_str().unwrap().to_string());
                }
                jtis
            })
        })
        .collect()
}

/// The `token_jti`s of the granted records in the database of `config`, through the CLI.
pub fn granted_jtis(config: &Path) -> std::collections::HashSet<String> {
    let out = run_cli(
        &[
            "audit",
            "--format",
            "json",
            "--limit",
            "1000000",
            "--outcome",
            "granted",
        ],
        Some(config),
    );
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["token_jti"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// One exchange of `subject` for `audience` at `url` as orders-svc; the status, or 0 when the
/// request could not be sent.
pub async fn exchange_at(http: &reqwest::Client, url: &str, subject: &str, audience: &str) -> u16 {
    exchange_request(http, url, subject, audience)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// The token request of `exchange_at`, for callers that add headers or read the answer.
pub fn exchange_request(
    http: &reqwest::Client,
    url: &str,
    subject: &str,
    audience: &str,
) -> reqwest::RequestBuilder {
    let body = serde_urlencoded::to_string([
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", audience),
    ])
    .unwrap();
    http.post(format!("{url}/token"))
        .basic_auth("orders-svc", Some(ORDERS_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
}
