//! Browser tests of the console: `Browser`, headless Chromium driven over W3C WebDriver
//! (chromedriver), and `OidcProvider`, a real OpenID provider (panva's oidc-provider running
//! `tests/browser/provider.mjs`) for the console to sign in at.
//!
//! Both come from `bash tests/browser/install.sh DIR`, found through `TESSERA_BROWSER_DIR=DIR`.
//! Without the variable `Browser::start` says so and returns `None`, and the test returns: a
//! plain `cargo test` needs nothing outside the build. `browser_smoke.rs` shows the whole flow.

use std::io::{Read, Write};

use reqwest::Method;

use super::*;

pub const BROWSER_DIR_VAR: &str = "TESSERA_BROWSER_DIR";

/// How long a wait lasts: the tests share a loaded two-core machine with a browser in it.
pub const BROWSER_WAIT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `TESSERA_BROWSER_DIR`, relative to the repository root unless absolute.
pub fn browser_dir() -> Option<PathBuf> {
    std::env::var_os(BROWSER_DIR_VAR).map(|dir| Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
}

fn install_hint(dir: &Path) -> String {
    format!("run `bash tests/browser/install.sh {}`", dir.display())
}

/// A loopback port free now: for a listener whose URL must be known before it starts, as the
/// console's redirect URI is when the provider is started first.
pub fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Headless Chromium in a fresh profile, through a chromedriver of its own.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`, once the session exists.
    session: String,
    driver_port: u16,
    driver: Child,
    /// Removed after the browser is gone.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// `None` when `TESSERA_BROWSER_DIR` is unset, after saying so.
    pub async fn start() -> Option<Self> {
        let Some(dir) = browser_dir() else {
            eprintln!(
                "skipping: {BROWSER_DIR_VAR} is not set; run bash tests/browser/install.sh \
                 target/browser and set it"
            );
            return None;
        };
        let from_env = |var, default: &str| std::env::var(var).unwrap_or_else(|_| default.into());
        let chromedriver = from_env("CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = from_env("CHROMIUM", "/usr/bin/chromium");
        for needed in [&chromedriver, &chromium] {
            assert!(
                Path::new(needed).exists(),
                "{needed} is missing: {}",
                install_hint(&dir)
            );
        }
        let profile = tempfile::tempdir().unwrap();
        let driver_port = unused_port();
        let mut command = Command::new(&chromedriver);
        command
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group, so that Drop also ends the browsers it started.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {chromedriver}: {e}"));
        let mut browser = Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
            session: String::new(),
            driver_port,
            driver,
            _profile: profile,
        };
        let driver_url = format!("http://127.0.0.1:{driver_port}");
        browser.wait_for_driver(&driver_url).await;
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--window-size=1280,1024",
                    format!("--user-data-dir={}", browser._profile.path().display()),
                ],
            },
            "timeouts": { "implicit": 0, "pageLoad": 60_000, "script": 30_000 },
        }}});
        let answer: Value = browser
            .http
            .post(format!("{driver_url}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap_or_else(|e| panic!("chromedriver did not answer the new session: {e}"))
            .json()
            .await
            .unwrap();
        let Some(id) = answer["value"]["sessionId"].as_str() else {
            panic!("chromedriver started no browser session: {answer}");
        };
        browser.session = format!("{driver_url}/session/{id}");
        Some(browser)
    }

    async fn wait_for_driver(&mut self, driver_url: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.driver.try_wait() {
                panic!("chromedriver exited at start: {status}");
            }
            let ready = match self.http.get(format!("{driver_url}/status")).send().await {
                Ok(response) => response
                    .json::<Value>()
                    .await
                    .is_ok_and(|s| s["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver was not ready within 30 s"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// One WebDriver command of this session: its `value`, or the error WebDriver named.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let ok = response.status().is_success();
        let mut answer: Value = response
            .json()
            .await
            .map_err(|e| format!("{method} {path}: no JSON answer: {e}"))?;
        let value = answer["value"].take();
        if ok {
            Ok(value)
        } else {
            Err(format!("{}: {}", value["error"], value["message"]))
        }
    }

    /// The value of a command that has to succeed.
    async fn must(&self, what: &str, result: Result<Value, String>) -> Value {
        match result {
            Ok(value) => value,
            Err(error) => panic!("{what}: {error}{}", self.context().await),
        }
    }

    /// Where the browser is and what it shows, for a failure's message.
    async fn context(&self) -> String {
        let url = self.call(Method::GET, "/url", None).await;
        let source = self.call(Method::GET, "/source", None).await;
        let text = |r: Result<Value, String>| match r {
            Ok(Value::String(s)) => s,
            Ok(other) => other.to_string(),
            Err(e) => format!("(unavailable: {e})"),
        };
        let source = text(source);
        let cut = source
            .char_indices()
            .nth(3000)
            .map_or(source.len(), |(i, _)| i);
        format!(
            "\n  at {}\n  page source{}:\n{}",
            text(url),
            if cut < source.len() { ", start" } else { "" },
            &source[..cut]
        )
    }

    pub async fn goto(&self, url: &str) {
        let result = self
            .call(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
        self.must(&format!("going to {url}"), result).await;
    }

    pub async fn url(&self) -> String {
        let result = self.call(Method::GET, "/url", None).await;
        let url = self.must("reading the URL", result).await;
        url.as_str().unwrap_or_default().to_string()
    }

    pub async fn source(&self) -> String {
        let result = self.call(Method::GET, "/source", None).await;
        let source = self.must("reading the page source", result).await;
        source.as_str().unwrap_or_default().to_string()
    }

    /// The element `css` selects now, if any.
    async fn find_now(&self, css: &str) -> Result<Option<String>, String> {
        let body = json!({ "using": "css selector", "value": css });
        let found = self.call(Method::POST, "/elements", Some(body)).await?;
        Ok(found[0][ELEMENT].as_str().map(str::to_string))
    }

    /// Whether `css` selects anything now (no waiting).
    pub async fn exists(&self, css: &str) -> bool {
        match self.find_now(css).await {
            Ok(found) => found.is_some(),
            Err(e) => panic!("looking for {css}: {e}{}", self.context().await),
        }
    }

    /// The first element `css` selects, waiting up to `BROWSER_WAIT` for one.
    pub async fn find(&self, css: &str) -> String {
        let deadline = tokio::time::Instant::now() + BROWSER_WAIT;
        loop {
            match self.find_now(css).await {
                Ok(Some(element)) => return element,
                Ok(None) if tokio::time::Instant::now() < deadline => {}
                Ok(None) => panic!(
                    "nothing matches {css} after {BROWSER_WAIT:?}{}",
                    self.context().await
                ),
                Err(e) => panic!("looking for {css}: {e}{}", self.context().await),
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn wait_for(&self, css: &str) {
        self.find(css).await;
    }

    /// The command `path` (e.g. `/click`) on the element `css` selects, found again when the
    /// page replaced it in between (a navigation, a re-render).
    async fn on_element(
        &self,
        css: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + BROWSER_WAIT;
        loop {
            let element = self.find(css).await;
            let result = self
                .call(
                    method.clone(),
                    &format!("/element/{element}{path}"),
                    body.clone(),
                )
                .await;
            match result {
                Err(e)
                    if (e.contains("stale element") || e.contains("no such element"))
                        && tokio::time::Instant::now() < deadline => {}
                result => return self.must(&format!("{path} on {css}"), result).await,
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Empties the field `css` selects and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        self.on_element(css, Method::POST, "/clear", Some(json!({})))
            .await;
        let keys = json!({ "text": text });
        self.on_element(css, Method::POST, "/value", Some(keys))
            .await;
    }

    pub async fn click(&self, css: &str) {
        self.on_element(css, Method::POST, "/click", Some(json!({})))
            .await;
    }

    /// The rendered text of the element `css` selects (waiting for one). Right after a click
    /// that navigates, that may still be the old page's: `wait_for_text` waits for the new.
    pub async fn text(&self, css: &str) -> String {
        let text = self.on_element(css, Method::GET, "/text", None).await;
        text.as_str().unwrap_or_default().to_string()
    }

    /// Waits up to `BROWSER_WAIT` for the element `css` selects to show `wanted` in its text.
    pub async fn wait_for_text(&self, css: &str, wanted: &str) -> String {
        let deadline = tokio::time::Instant::now() + BROWSER_WAIT;
        loop {
            let text = self.text(css).await;
            if text.contains(wanted) {
                return text;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "{css} shows {text:?}, not {wanted:?}, after {BROWSER_WAIT:?}{}",
                    self.context().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits up to `BROWSER_WAIT` for a URL `wanted` accepts, and returns it.
    pub async fn wait_for_url(&self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + BROWSER_WAIT;
        loop {
            let url = self.url().await;
            if wanted(&url) {
                return url;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "the URL is still {url} after {BROWSER_WAIT:?}{}",
                    self.context().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn wait_for_url_containing(&self, part: &str) -> String {
        self.wait_for_url(|url| url.contains(part)).await
    }

    /// The cookies the current page's site holds, as WebDriver describes them (`name`, `value`,
    /// `domain`, `path`, `secure`, `httpOnly`, `sameSite`, `expiry`).
    pub async fn cookies(&self) -> Vec<Value> {
        let result = self.call(Method::GET, "/cookie", None).await;
        match self.must("reading the cookies", result).await {
            Value::Array(cookies) => cookies,
            other => panic!("cookies are not a list: {other}"),
        }
    }
}

impl Drop for Browser {
    /// Ends the session (the browser quits cleanly), then chromedriver and whatever is left of
    /// its process group. Plain blocking HTTP: no runtime is at hand in a destructor.
    fn drop(&mut self) {
        if let Some(path) = self.session.find("/session/").map(|i| &self.session[i..])
            && let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.driver_port))
        {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
            let request = format!(
                "DELETE {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                self.driver_port
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read(&mut [0; 512]);
            }
        }
        // SAFETY: kill(2) on our own child's process group.
        unsafe {
            libc::kill(-(self.driver.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.driver.wait();
    }
}

/// oidc-provider on loopback, issuer `http://localhost:<port>` (another site than the console
/// on 127.0.0.1), with the client `tessera-console` (secret `console-secret`, redirect URI as
/// given, PKCE S256 required) and the accounts `alice` (group tessera-auditors), `olga`
/// (tessera-operators) and `mallory` (no group). `tests/browser/provider.mjs` says which
/// fields and buttons its sign-in and consent pages have.
pub struct OidcProvider {
    /// The issuer, also the base of every endpoint (`/.well-known/openid-configuration`).
    pub url: String,
    child: Child,
    /// The copy of the script run, removed on drop.
    script: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl OidcProvider {
    pub const CLIENT_ID: &str = "tessera-console";
    pub const CLIENT_SECRET: &str = "console-secret";

    /// Starts the provider, its client redirecting to `redirect_uri` only. Needs
    /// `TESSERA_BROWSER_DIR` (test with `Browser::start` first).
    pub async fn start(redirect_uri: &str) -> Self {
        let dir = browser_dir()
            .unwrap_or_else(|| panic!("{BROWSER_DIR_VAR} is not set"))
            .join("node");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "oidc-provider is missing in {}: {}",
            dir.display(),
            install_hint(dir.parent().unwrap())
        );
        // Node resolves an ES module's imports from the module's own folder: run a copy beside
        // node_modules, fresh so that edits to the script count and parallel tests do not race.
        let script = dir.join(format!("provider-{}.mjs", uuid_like()));
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/provider.mjs");
        std::fs::copy(&source, &script).unwrap();
        let spawned = Command::new(std::env::var("NODE").unwrap_or_else(|_| "node".into()))
            .arg(&script)
            .current_dir(&dir)
            .env("PROVIDER_PORT", "0")
            .env("REDIRECT_URI", redirect_uri)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_file(&script);
                panic!("cannot run node: {e}");
            }
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let lines = log.clone();
        let stderr_read = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("ready ")
                    && let Some(tx) = ready_tx.take()
                {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let mut provider = Self {
            url: String::new(),
            child,
            script,
            log,
        };
        match tokio::time::timeout(Duration::from_secs(30), ready_rx).await {
            Ok(Ok(url)) => provider.url = url,
            outcome => {
                let _ = provider.child.kill();
                let _ = provider.child.wait();
                let _ = stderr_read.join();
                panic!(
                    "the OpenID provider did not start ({}):\n{}",
                    if outcome.is_err() {
                        "no `ready` line within 30 s"
                    } else {
                        "it exited"
                    },
                    provider.log().join("\n")
                );
            }
        }
        provider
    }

    /// What the provider wrote to stderr so far: the library's warnings and the errors it met.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.script);
    }
}
