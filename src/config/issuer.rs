//! An `[[issuers]]` entry checked: where its keys are, its opaque-token introspection, the
//! algorithms, audiences and token kinds it may present.

use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::check::Ctx;
use super::raw::RawIssuer;
use super::*;

/// What an issuer's tokens may be.
struct Presented {
    algorithms: Vec<Algorithm>,
    audiences: Vec<String>,
    accept: Vec<TokenKind>,
}

impl Ctx<'_> {
    pub(super) fn issuer(
        &self,
        i: usize,
        raw: RawIssuer,
        server: &ServerConfig,
    ) -> Result<IssuerConfig, ConfigError> {
        let at = |k: &str| format!("issuers[{i}].{k}");
        if raw.id.trim().is_empty() {
            return Err(self.err(at("id"), "must not be empty"));
        }
        self.trust_domain(i, &raw)?;
        let keys = self.issuer_keys(i, &raw, server)?;
        let introspection = self.introspection(i, &raw)?;
        let Presented {
            algorithms,
            audiences,
            accept,
        } = self.presented(i, &raw)?;
        let jwks_refresh =
            self.duration(&at("jwks_refresh"), raw.jwks_refresh.as_deref(), "10m")?;
        if jwks_refresh < Duration::from_secs(1) {
            return Err(self.err(at("jwks_refresh"), "must be at least 1s"));
        }
        Ok(IssuerConfig {
            id: raw.id.clone(),
            issuer: raw.issuer.clone(),
            keys,
            algorithms,
            audiences,
            accept,
            leeway: self.duration(&at("leeway"), raw.leeway.as_deref(), "30s")?,
            max_age: Some(self.duration(&at("max_age"), raw.max_age.as_deref(), "24h")?),
            jwks_refresh,
            jwks_min_refetch: self.duration(
                &at("jwks_min_refetch"),
                raw.jwks_min_refetch.as_deref(),
                "30s",
            )?,
            access_token_typ: raw.access_token_typ.clone(),
            introspection,
        })
    }

    /// Where the issuer's keys are: exactly one source, none for this server's own issuer (its
    /// keys are the signing keys) or for an issuer of opaque tokens only.
    fn issuer_keys(
        &self,
        i: usize,
        raw: &RawIssuer,
        server: &ServerConfig,
    ) -> Result<KeySource, ConfigError> {
        let at = |k: &str| format!("issuers[{i}].{k}");
        let is_self = raw.issuer.trim_end_matches('/') == server.issuer;
        let chosen = [
            raw.jwks_uri.is_some(),
            raw.jwks_file.is_some(),
            raw.discovery == Some(true),
        ];
        let keys = match (is_self, chosen.iter().filter(|c| **c).count()) {
            (true, 0) => KeySource::Local,
            (true, _) => {
                return Err(self.err(at("issuer"), "is this server's own issuer, whose keys are the signing keys: remove jwks_uri, jwks_file and discovery"));
            }
            (false, 1) => {
                if let Some(uri) = &raw.jwks_uri {
                    KeySource::Uri(self.web_url(&at("jwks_uri"), uri)?)
                } else if let Some(path) = &raw.jwks_file {
                    KeySource::File(self.path(path))
                } else {
                    KeySource::Discovery(self.web_url(&at("issuer"), &raw.issuer)?)
                }
            }
            // Opaque tokens only: no keys, every token is introspected.
            (false, 0) if raw.introspection_endpoint.is_some() => KeySource::None,
            (false, _) => {
                return Err(self.err(
                    at("jwks_uri"),
                    "set exactly one of jwks_uri, jwks_file and discovery = true (or only introspection_endpoint, for opaque tokens)",
                ));
            }
        };
        Ok(keys)
    }

    /// A SPIFFE trust domain (`spiffe://example.org`) takes its keys from its bundle
    /// (`jwks_uri` or `jwks_file`): it has no discovery and no opaque tokens.
    fn trust_domain(&self, i: usize, raw: &RawIssuer) -> Result<(), ConfigError> {
        let at = |k: &str| format!("issuers[{i}].{k}");
        if !crate::spiffe::names_trust_domain(&raw.issuer) {
            return Ok(());
        }
        if !crate::spiffe::is_trust_domain(&raw.issuer) {
            return Err(self.err(
                at("issuer"),
                format!(
                    "\"{}\" is not a SPIFFE trust domain: spiffe:// then a name of lowercase \
                     letters, digits, '.', '-' and '_', with no path, port or trailing slash",
                    raw.issuer
                ),
            ));
        }
        if raw.discovery == Some(true) {
            return Err(self.err(
                at("discovery"),
                "a SPIFFE trust domain has no discovery: set jwks_uri to its bundle endpoint or \
                 jwks_file to its bundle",
            ));
        }
        if raw.introspection_endpoint.is_some() {
            return Err(self.err(
                at("introspection_endpoint"),
                "a SPIFFE trust domain issues JWT-SVIDs, not opaque tokens",
            ));
        }
        Ok(())
    }

    /// Its RFC 7662 endpoint for opaque tokens, with Tessera's credentials there.
    fn introspection(
        &self,
        i: usize,
        raw: &RawIssuer,
    ) -> Result<Option<Introspection>, ConfigError> {
        let at = |k: &str| format!("issuers[{i}].{k}");
        let introspection = match &raw.introspection_endpoint {
            None => None,
            Some(endpoint) => {
                let client_secret = match (
                    &raw.introspection_client_secret,
                    &raw.introspection_client_secret_file,
                ) {
                    (Some(secret), None) => secret.clone(),
                    (None, Some(file)) => std::fs::read_to_string(self.path(file))
                        .map(|s| s.trim().to_string())
                        .map_err(|e| {
                            self.err(
                                at("introspection_client_secret_file"),
                                format!("cannot be read: {e}"),
                            )
                        })?,
                    _ => {
                        return Err(self.err(
                            at("introspection_client_secret"),
                            "set exactly one of introspection_client_secret and introspection_client_secret_file",
                        ));
                    }
                };
                Some(Introspection {
                    endpoint: self.web_url(&at("introspection_endpoint"), endpoint)?,
                    client_id: raw.introspection_client_id.clone().ok_or_else(|| {
                        self.err(
                            at("introspection_client_id"),
                            "is required with introspection_endpoint",
                        )
                    })?,
                    client_secret,
                    cache: self.duration(
                        &at("introspection_cache"),
                        raw.introspection_cache.as_deref(),
                        "1m",
                    )?,
                    prefix: match raw.opaque_token_prefix.as_deref() {
                        Some("") => {
                            return Err(self.err(
                                at("opaque_token_prefix"),
                                "must not be empty (leave it out to match every opaque token)",
                            ));
                        }
                        prefix => prefix.map(str::to_string),
                    },
                })
            }
        };
        if raw.opaque_token_prefix.is_some() && introspection.is_none() {
            return Err(self.err(
                at("opaque_token_prefix"),
                "needs introspection_endpoint: only opaque tokens are routed by prefix",
            ));
        }
        Ok(introspection)
    }

    /// What its tokens may be: their algorithms, audiences and kinds.
    fn presented(&self, i: usize, raw: &RawIssuer) -> Result<Presented, ConfigError> {
        let at = |k: &str| format!("issuers[{i}].{k}");
        let algorithms = raw
            .algorithms
            .clone()
            .unwrap_or_else(|| vec!["RS256".into(), "ES256".into()]);
        if algorithms.is_empty() {
            return Err(self.err(at("algorithms"), "must list at least one algorithm"));
        }
        let algorithms = algorithms
            .iter()
            .map(|a| self.verify_algorithm(&at("algorithms"), a))
            .collect::<Result<Vec<_>, _>>()?;
        let accept = raw
            .accept
            .clone()
            .unwrap_or_else(|| vec![TokenKind::AccessToken]);
        if accept.is_empty() {
            return Err(self.err(at("accept"), "must list at least one token kind"));
        }
        // A grant's `aud` is always this server's issuer; subject tokens name the audiences.
        let subject_tokens = accept.iter().any(|k| !k.is_grant());
        // An ID-JAG is told apart by its typ; a JWT authorization grant only from what the
        // issuer's access tokens are typed, and from no ID token at all.
        if subject_tokens && accept.contains(&TokenKind::AuthorizationGrant) {
            if accept.contains(&TokenKind::IdToken) {
                return Err(self.err(
                    at("accept"),
                    "authorization_grant and id_token cannot both be taken from one issuer: \
                     both are plain JWTs naming this server, and nothing tells them apart",
                ));
            }
            if raw.access_token_typ.is_none() {
                return Err(self.err(
                    at("accept"),
                    "taking authorization_grant beside subject tokens needs access_token_typ \
                     (e.g. \"at+jwt\"): by it this issuer's access tokens and its grants are \
                     told apart",
                ));
            }
        }
        let audiences = raw.audiences.clone().unwrap_or_default();
        if (subject_tokens && audiences.is_empty()) || audiences.iter().any(|a| a.is_empty()) {
            return Err(self.err(at("audiences"), "must list the audience(s) subject tokens are issued for, e.g. this server's issuer URL"));
        }
        Ok(Presented {
            algorithms,
            audiences,
            accept,
        })
    }
}
