//! What the integration tests share: `TestApp` (the real server on port 0 with its own
//! database, `app.rs`), its configuration as a value tests edit (`config.rs`), `TestIdp` (an
//! identity provider over loopback HTTP, `idp.rs`), their keys (`keys.rs`), `Served` (the real
//! `tessera serve` in a child process, `served.rs`), `Browser` and `OidcProvider` (headless
//! Chromium and a real OpenID provider, for the console, `browser.rs`), and the small helpers
//! below.

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

mod app;
mod browser;
mod config;
mod idp;
mod keys;
mod served;

pub use app::*;
#[allow(unused_imports, reason = "the interop suite drives no browser")]
pub use browser::*;
pub use config::*;
pub use idp::*;
pub use keys::*;
pub use served::*;

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
