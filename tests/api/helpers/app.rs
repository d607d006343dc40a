//! `TestApp`: the real server in this process, on port 0, with its own database and the
//! default test configuration.

use super::*;

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
        Self::spawn_with(|_| {}).await
    }

    /// Starts with the default configuration as `edit` changes it, and waits until ready. The
    /// server gets a fresh database (`Database::fresh`) unless `edit` sets `storage.url`.
    pub async fn spawn_with(edit: impl FnOnce(&mut RawConfig)) -> Self {
        let app = Self::start(edit).await;
        app.wait_ready().await;
        app
    }

    /// Starts without waiting for readiness.
    pub async fn start(edit: impl FnOnce(&mut RawConfig)) -> Self {
        Self::start_with_clock(tessera::clock::Clock::system(), edit).await
    }

    /// Starts on `clock`, without waiting for readiness.
    pub async fn start_with_clock(
        clock: tessera::clock::Clock,
        edit: impl FnOnce(&mut RawConfig),
    ) -> Self {
        Self::start_on(clock, |_| {}, edit).await
    }

    /// As `spawn_with`, the test identity provider set up by `prepare` before the server
    /// first asks it for keys.
    pub async fn spawn_with_idp(
        prepare: impl FnOnce(&TestIdp),
        edit: impl FnOnce(&mut RawConfig),
    ) -> Self {
        let app = Self::start_on(tessera::clock::Clock::system(), prepare, edit).await;
        app.wait_ready().await;
        app
    }

    async fn start_on(
        clock: tessera::clock::Clock,
        prepare: impl FnOnce(&TestIdp),
        edit: impl FnOnce(&mut RawConfig),
    ) -> Self {
        let key = TestKey::rsa();
        let idp = TestIdp::start(&[&key]).await;
        prepare(&idp);
        let dir = tempfile::tempdir().unwrap();
        let signing = generate_pkcs8_pem(Algorithm::ES256).unwrap();
        std::fs::write(dir.path().join("signing.pem"), signing).unwrap();
        let config_path = dir.path().join("tessera.toml");
        let mut config = default_config(&idp.url);
        edit(&mut config);
        let database = match &config.storage.url {
            Some(url) => Database::given(url),
            None => Database::fresh("tessera"),
        };
        config.storage.url = Some(database.url.clone());
        write_config(&config_path, &config);
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
            // Idle connections are dropped before the server's keep-alive (5 s) closes them: a
            // request sent on one the server is closing at that moment fails (IncompleteMessage).
            http: reqwest::Client::builder()
                .pool_idle_timeout(std::time::Duration::from_secs(4))
                .build()
                .unwrap(),
            admin_url,
            database,
            handle,
        }
    }

    /// The real `tessera serve` on a copy of this app's configuration (as `edit` changes it)
    /// with its own database (`<name>.db`, or a fresh PostgreSQL database when this app's is
    /// one), logging at `log_level`; ready when this returns.
    /// Also returns the copy's path and configuration, for tests that change it.
    pub async fn serve_copy(
        &self,
        name: &str,
        log_level: &str,
        edit: impl FnOnce(&mut RawConfig),
    ) -> (Served, PathBuf, RawConfig) {
        self.serve_copy_with_env(name, log_level, &[], edit).await
    }

    /// As `serve_copy`, the process given the environment variables `env` too.
    pub async fn serve_copy_with_env(
        &self,
        name: &str,
        log_level: &str,
        env: &[(&str, &str)],
        edit: impl FnOnce(&mut RawConfig),
    ) -> (Served, PathBuf, RawConfig) {
        let database = self.database.another(name);
        let path = self.config_copy(&format!("{name}.toml"), |c| {
            c.storage.url = Some(database.url.clone());
            edit(c);
        });
        let config = read_config(&path);
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

    /// This app's configuration, as its file holds it.
    pub fn config(&self) -> RawConfig {
        read_config(&self.config_path)
    }

    /// Writes this app's configuration, as `edit` changes it, to `file_name` in its folder, and
    /// returns the copy's path.
    pub fn config_copy(&self, file_name: &str, edit: impl FnOnce(&mut RawConfig)) -> PathBuf {
        let mut config = self.config();
        edit(&mut config);
        let path = self.dir.path().join(file_name);
        write_config(&path, &config);
        path
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
