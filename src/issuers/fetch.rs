//! Getting an issuer's keys: from a file, a JWKS URL, or OIDC discovery / RFC 8414 metadata.
//! Every network read is bounded in time and size, and redirects are not followed, so one slow
//! or hostile identity provider cannot stall anything but its own refresh.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use super::jwks::{self, KeyDocument};
use crate::config::KeySource;
use crate::metrics::Metrics;

const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// Why keys or an introspection answer could not be had. Each says which request or file,
/// and what went wrong in words that show no internals of the HTTP client.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("{request} failed: {why}")]
    Send { request: String, why: String },
    #[error("{request} answered {status}")]
    Status {
        request: String,
        status: reqwest::StatusCode,
    },
    #[error("{request}: the document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { request: String },
    #[error("{request}: reading the body failed: {why}")]
    Body { request: String, why: String },
    #[error("{request}: the answer is not JSON")]
    NotJson { request: String },
    #[error("{}: {why}", .path.display())]
    File {
        path: std::path::PathBuf,
        why: String,
    },
    #[error("{}: larger than {MAX_DOCUMENT_BYTES} bytes", .path.display())]
    FileTooLarge { path: std::path::PathBuf },
    #[error("this issuer has no keys to fetch")]
    NoKeys,
    /// A discovery document that cannot lead to keys.
    #[error("{0}")]
    Discovery(String),
    /// A key set that is not one.
    #[error("{0}")]
    Jwks(String),
}

impl From<Error> for String {
    fn from(e: Error) -> Self {
        e.to_string()
    }
}

#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    /// For URLs a remote party chose (a discovered `jwks_uri`): never connects inward.
    outward: reqwest::Client,
    metrics: Arc<Metrics>,
}

impl Fetcher {
    pub fn new(timeout: Duration, metrics: Arc<Metrics>) -> Result<Self, Error> {
        let builder = || {
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
        };
        let built = |b: reqwest::ClientBuilder| b.build().map_err(|e| Error::Client(e.to_string()));
        Ok(Self {
            client: built(builder())?,
            // No proxy either: a proxy would resolve the name itself, past the resolver.
            outward: built(
                builder()
                    .no_proxy()
                    .dns_resolver(super::outbound::PublicOnly),
            )?,
            metrics,
        })
    }

    /// Counts a fetch of `id`'s keys in the metrics.
    pub fn record(&self, id: &str, ok: bool) {
        self.metrics.jwks_fetch(id, ok);
    }

    /// The keys an issuer publishes now, with notes on keys it published but we skipped.
    pub async fn keys(&self, source: &KeySource, issuer: &str) -> Result<KeyDocument, Error> {
        let bytes = match source {
            KeySource::File(path) => read_file(path)?,
            KeySource::Uri(url) => self.get(url.clone()).await?,
            KeySource::Discovery(issuer_url) => {
                let jwks_uri = self.discover(issuer_url, issuer).await?;
                // On the issuer's own host, or the issuer itself inside (by its configured URL,
                // not by what its DNS says today): fetched as the issuer was.
                let client = self.client_for(issuer_url, &jwks_uri)?;
                read_limited(
                    client
                        .get(jwks_uri.clone())
                        .header("accept", "application/json"),
                    &format!("GET {jwks_uri}"),
                )
                .await?
            }
            KeySource::Local | KeySource::None => {
                return Err(Error::NoKeys);
            }
        };
        jwks::parse(&bytes, jwks::Profile::of_issuer(issuer)).map_err(Error::Jwks)
    }

    async fn discover(&self, issuer_url: &Url, issuer: &str) -> Result<Url, Error> {
        let metadata = self.provider(issuer_url, issuer).await?;
        let jwks_uri = metadata
            .jwks_uri
            .ok_or_else(|| Error::Discovery("the discovery document has no jwks_uri".into()))?;
        endpoint(&jwks_uri, "jwks_uri")
    }

    /// The issuer's discovery document (OIDC, else RFC 8414), once it names that issuer.
    pub async fn provider(&self, issuer_url: &Url, issuer: &str) -> Result<Provider, Error> {
        let mut last_error = Error::Discovery(String::new());
        for url in discovery_urls(issuer_url) {
            let bytes = match self.get(url).await {
                Ok(b) => b,
                Err(e) => {
                    last_error = e;
                    continue;
                }
            };
            let metadata: Provider = serde_json::from_slice(&bytes).map_err(|e| {
                Error::Discovery(format!("the discovery document is not valid metadata: {e}"))
            })?;
            if metadata.issuer != issuer {
                return Err(Error::Discovery(format!(
                    "the discovery document names issuer \"{}\", not \"{issuer}\"",
                    metadata.issuer
                )));
            }
            return Ok(metadata);
        }
        Err(last_error)
    }

    /// The client for a URL an issuer's discovery document chose: on the issuer's own host,
    /// or for an issuer configured inside, as the issuer was reached; elsewhere, never inward.
    fn client_for(&self, issuer_url: &Url, url: &Url) -> Result<&reqwest::Client, Error> {
        let same_host = url.host_str() == issuer_url.host_str();
        if same_host || super::outbound::names_internal_host(issuer_url) {
            Ok(&self.client)
        } else if super::outbound::names_internal_host(url) {
            Err(Error::Discovery(format!(
                "the discovered \"{url}\" points at an internal address, and the issuer is not \
                 on one"
            )))
        } else {
            Ok(&self.outward)
        }
    }

    /// RFC 6749 §4.1.3 with PKCE: redeems an authorization code at the discovered token
    /// endpoint, authenticating with HTTP Basic when the client has a secret. The answer's
    /// JSON, success or OAuth error alike.
    pub async fn redeem_code(
        &self,
        issuer_url: &Url,
        token_endpoint: &Url,
        client: (&str, Option<&str>),
        form: &[(&str, &str)],
    ) -> Result<(reqwest::StatusCode, serde_json::Value), Error> {
        let shown = format!("POST {token_endpoint}");
        let (client_id, secret) = client;
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let mut request = self
            .client_for(issuer_url, token_endpoint)?
            .post(token_endpoint.clone())
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded");
        match secret {
            Some(secret) => {
                let encode = |s: &str| form_urlencoded_component(s);
                request = request.basic_auth(encode(client_id), Some(encode(secret)));
            }
            None => fields.push(("client_id", client_id)),
        }
        let body = serde_urlencoded::to_string(&fields).map_err(|e| Error::Send {
            request: shown.clone(),
            why: e.to_string(),
        })?;
        let response = request.body(body).send().await.map_err(|e| Error::Send {
            request: shown.clone(),
            why: describe(&e),
        })?;
        let status = response.status();
        let bytes = read_body(response, &shown).await?;
        let json = serde_json::from_slice(&bytes).map_err(|_| Error::NotJson { request: shown })?;
        Ok((status, json))
    }

    async fn get(&self, url: Url) -> Result<Vec<u8>, Error> {
        let shown = url.to_string();
        let request = self.client.get(url).header("accept", "application/json");
        read_limited(request, &format!("GET {shown}")).await
    }

    /// RFC 7662: asks the endpoint about `token`, authenticating with HTTP Basic.
    pub async fn introspect(
        &self,
        introspection: &crate::config::Introspection,
        token: &str,
    ) -> Result<serde_json::Value, Error> {
        let shown = format!("POST {}", introspection.endpoint);
        let encode = |s: &str| form_urlencoded_component(s);
        let request = self
            .client
            .post(introspection.endpoint.clone())
            .basic_auth(
                encode(&introspection.client_id),
                Some(encode(&introspection.client_secret)),
            )
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "token={}&token_type_hint=access_token",
                encode(token)
            ));
        let body = read_limited(request, &shown).await?;
        serde_json::from_slice(&body).map_err(|_| Error::NotJson { request: shown })
    }
}

/// Sends the request and reads a successful answer of at most `MAX_DOCUMENT_BYTES`.
async fn read_limited(request: reqwest::RequestBuilder, shown: &str) -> Result<Vec<u8>, Error> {
    let response = request.send().await.map_err(|e| Error::Send {
        request: shown.to_string(),
        why: describe(&e),
    })?;
    if !response.status().is_success() {
        return Err(Error::Status {
            request: shown.to_string(),
            status: response.status(),
        });
    }
    read_body(response, shown).await
}

/// An answer's body, at most `MAX_DOCUMENT_BYTES`.
async fn read_body(mut response: reqwest::Response, shown: &str) -> Result<Vec<u8>, Error> {
    let request_named = || shown.to_string();
    if response
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(Error::TooLarge {
            request: request_named(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Error::Body {
        request: request_named(),
        why: describe(&e),
    })? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(Error::TooLarge {
                request: request_named(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A URL a discovery document names, which must be https (http on loopback).
pub fn endpoint(value: &str, name: &str) -> Result<Url, Error> {
    let url = Url::parse(value)
        .map_err(|e| Error::Discovery(format!("the discovered {name} is not a URL: {e}")))?;
    if !crate::config::is_allowed_web_url(&url) {
        return Err(Error::Discovery(format!(
            "the discovered {name} \"{value}\" does not use https"
        )));
    }
    Ok(url)
}

/// What an issuer's discovery document says, as far as this server reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct Provider {
    pub issuer: String,
    pub jwks_uri: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

/// One form-urlencoded value (RFC 6749 §2.3.1 asks it of Basic credentials too).
fn form_urlencoded_component(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)])
        .map(|e| e.trim_start_matches("v=").to_string())
        .unwrap_or_default()
}

/// OIDC discovery first, then RFC 8414 (which puts the well-known segment before the path).
fn discovery_urls(issuer: &Url) -> Vec<Url> {
    let base = issuer.as_str().trim_end_matches('/');
    let mut urls = Vec::new();
    if let Ok(u) = Url::parse(&format!("{base}/.well-known/openid-configuration")) {
        urls.push(u);
    }
    let path = issuer.path().trim_end_matches('/');
    let mut rfc8414 = issuer.clone();
    rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    urls.push(rfc8414);
    urls
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, Error> {
    let unreadable = |e: std::io::Error| Error::File {
        path: path.to_path_buf(),
        why: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if meta.len() > MAX_DOCUMENT_BYTES as u64 {
        return Err(Error::FileTooLarge {
            path: path.to_path_buf(),
        });
    }
    std::fs::read(path).map_err(unreadable)
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else if e.is_redirect() {
        "redirects are not followed".into()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_tries_oidc_then_rfc8414() {
        let urls = discovery_urls(&Url::parse("https://idp.example.com/realms/a").expect("url"));
        let urls: Vec<String> = urls.iter().map(Url::to_string).collect();
        assert_eq!(
            urls,
            vec![
                "https://idp.example.com/realms/a/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/oauth-authorization-server/realms/a",
            ]
        );
    }
}
