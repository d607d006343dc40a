//! `Served`: the real `tessera serve` in a child process, and exchanges driven against it.

use super::*;

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

    pub(super) fn launch(
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
