//! A `[[clients]]` entry checked: a secret's digest, or the keys of its `private_key_jwt`
//! assertions, and its rate limit.

use jsonwebtoken::Algorithm;

use super::check::Ctx;
use super::raw::RawClient;
use super::*;

impl Ctx<'_> {
    pub(super) fn client(
        &self,
        i: usize,
        raw: RawClient,
        default_rate_limit: Option<RateLimit>,
    ) -> Result<ClientConfig, ConfigError> {
        let at = |k: &str| format!("clients[{i}].{k}");
        if raw.id.trim().is_empty() {
            return Err(self.err(at("id"), "must not be empty"));
        }
        let rate_limit = match raw.rate_limit {
            Some(limit) => Some(self.rate_limit(&at("rate_limit"), limit)?),
            None => default_rate_limit,
        };
        let auth = match (raw.secret_sha256, raw.jwks_file, raw.jwks_uri) {
            (Some(hex), None, None) => {
                if raw.algorithms.is_some() {
                    return Err(self.err(
                        at("algorithms"),
                        "applies only to clients with jwks_file or jwks_uri",
                    ));
                }
                ClientAuth::Secret(decode_sha256_hex(&hex).ok_or_else(|| {
                    self.err(at("secret_sha256"), "must be 64 hexadecimal characters (a SHA-256 digest; see `tessera secret`)")
                })?)
            }
            (None, Some(file), None) => ClientAuth::PrivateKeyJwt {
                keys: KeySource::File(self.path(&file)),
                algorithms: self.client_algorithms(&at("algorithms"), raw.algorithms)?,
            },
            (None, None, Some(uri)) => ClientAuth::PrivateKeyJwt {
                keys: KeySource::Uri(self.web_url(&at("jwks_uri"), &uri)?),
                algorithms: self.client_algorithms(&at("algorithms"), raw.algorithms)?,
            },
            _ => {
                return Err(self.err(
                    at("secret_sha256"),
                    "set exactly one of secret_sha256 (client_secret_basic/post), jwks_file or jwks_uri (private_key_jwt)",
                ));
            }
        };
        Ok(ClientConfig {
            id: raw.id,
            auth,
            rate_limit,
        })
    }

    pub(super) fn client_algorithms(
        &self,
        key: &str,
        names: Option<Vec<String>>,
    ) -> Result<Vec<Algorithm>, ConfigError> {
        let names = names.unwrap_or_else(|| {
            ["RS256", "PS256", "ES256", "EdDSA"]
                .map(String::from)
                .to_vec()
        });
        if names.is_empty() {
            return Err(self.err(key, "must list at least one algorithm"));
        }
        names
            .iter()
            .map(|a| self.verify_algorithm(key, a))
            .collect()
    }
}
