//! `tessera explain`: a dry run of one exchange against the configured rules, with the
//! issuers' real keys. Says which rule applies, why each other rule does not, and what token
//! would be minted. Mints nothing, signs nothing, writes no record.

use std::io::Write;

use crate::config::{Config, KeySource};
use crate::error::OAuthError;
use crate::issuers::{Fetcher, Issuers};
use crate::keys::SigningKeys;
use crate::rules::{self, Exchange, Targets};
use crate::tokens::mint;
use crate::tokens::{TokenType, VerifiedToken, verify};

pub struct Request {
    pub client: String,
    pub subject_token: String,
    pub actor_token: Option<String>,
    pub audiences: Vec<String>,
    pub resources: Vec<String>,
    pub scopes: Option<Vec<String>>,
}

pub async fn explain(
    config: &Config,
    request: &Request,
    out: &mut impl Write,
) -> Result<(), String> {
    let keys = SigningKeys::load(&config.signing)?;
    let fetcher = Fetcher::new(std::time::Duration::from_secs(5), Default::default())?;
    let issuers = Issuers::new(
        &config.issuers,
        &keys,
        fetcher.clone(),
        tokio::runtime::Handle::current(),
    )
    .await;
    let remote = issuers
        .iter()
        .filter(|i| matches!(i.config.keys, KeySource::Uri(_) | KeySource::Discovery(_)));
    futures_util::future::join_all(remote.map(|i| i.refresh(&fetcher))).await;
    let w = |out: &mut dyn Write, line: String| writeln!(out, "{line}").map_err(|e| e.to_string());

    w(out, format!("client: {}", request.client))?;
    if !config.clients.iter().any(|c| c.id == request.client) {
        return w(
            out,
            format!(
                "result: denied: invalid_client: client \"{}\" is not configured",
                request.client
            ),
        );
    }
    let now = crate::clock::now().secs();
    // Opaque tokens go only where the client's rules lead, as in an exchange.
    let may_introspect = |issuer: &str| {
        config
            .rules
            .iter()
            .any(|r| r.clients.contains(&request.client) && r.issuers.iter().any(|i| i == issuer))
    };
    let subject = match verify::verify(
        &request.subject_token,
        TokenType::AccessToken,
        &issuers,
        now,
        "subject token",
        &may_introspect,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            return w(
                out,
                format!("result: denied: {}: {}", e.code, e.description),
            );
        }
    };
    w(out, describe("subject", &subject))?;
    let actor = match &request.actor_token {
        None => None,
        Some(token) => {
            match verify::verify(
                token,
                TokenType::AccessToken,
                &issuers,
                now,
                "actor token",
                &may_introspect,
            )
            .await
            {
                Ok(a) => {
                    w(out, describe("actor", &a))?;
                    Some(a)
                }
                Err(e) => {
                    return w(
                        out,
                        format!("result: denied: {}: {}", e.code, e.description),
                    );
                }
            }
        }
    };
    let scopes = request.scopes.as_deref();
    w(
        out,
        format!(
            "request: audiences [{}]; resources [{}]; scopes {}",
            request.audiences.join(", "),
            request.resources.join(", "),
            scopes.map_or("(none requested: defaults apply)".to_string(), |s| format!(
                "[{}]",
                s.join(", ")
            ))
        ),
    )?;
    let ex = Exchange {
        client_id: &request.client,
        subject: &subject,
        actor: actor.as_ref(),
        targets: Targets {
            audiences: &request.audiences,
            resources: &request.resources,
        },
        requested_scopes: scopes,
        now,
        proof_jkt: None,
    };
    w(out, String::new())?;
    for (i, rule) in config.rules.iter().enumerate() {
        let verdict = if !rule.clients.contains(&request.client) {
            format!("does not name client \"{}\"", request.client)
        } else {
            match rules::misses(rule, &ex) {
                Ok(misses) if misses.is_empty() => "applies".to_string(),
                Ok(misses) => format!("does not apply: it {}", misses.join("; it ")),
                Err(e) => format!("denies: {}", e.reason()),
            }
        };
        w(out, format!("rule {} \"{}\": {verdict}", i + 1, rule.name))?;
    }
    w(out, String::new())?;
    match decide(config, &ex) {
        Err(e) => w(
            out,
            format!("result: denied: {}: {}", e.code, e.description),
        ),
        Ok((rule, grant)) => {
            w(
                out,
                format!("result: granted by rule \"{rule}\" (nothing was minted or recorded)"),
            )?;
            let key = keys.current();
            let claims = mint::claims(&config.server.issuer, &grant, "<a new random jti>");
            let token = serde_json::json!({ "header": mint::header(key), "claims": claims });
            w(
                out,
                serde_json::to_string_pretty(&token).map_err(|e| e.to_string())?,
            )
        }
    }
}

fn decide(
    config: &Config,
    ex: &Exchange<'_>,
) -> Result<(String, crate::tokens::mint::Grant), OAuthError> {
    let rules = rules::RuleSet::new(config.rules.clone());
    rules::plan(&rules, &config.signing, ex).map(|(rule, grant)| (rule.name.clone(), grant))
}

fn describe(role: &str, t: &VerifiedToken) -> String {
    format!(
        "{role}: {} (issuer {}), jti {}, scopes [{}], expires in {} s",
        t.sub,
        t.issuer_id,
        t.jti.as_deref().unwrap_or("-"),
        t.scopes.join(", "),
        t.exp - crate::clock::now().secs()
    )
}
