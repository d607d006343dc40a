//! `tessera explain`: a dry run of one exchange against the configured rules, with the
//! issuers' real keys. Says which rule applies, why each other rule does not, and what token
//! would be minted. Mints nothing, signs nothing, writes no record.

use std::io::Write;

use std::sync::Arc;

use crate::clock;
use crate::config::{Config, KeySource};
use crate::error::OAuthError;
use crate::grants::{Conditions, Context, Decision, Learned, jwt_bearer, token_exchange};
use crate::issuers::Fetcher;
use crate::keys::SigningKeys;
use crate::oauth::TokenType;
use crate::rules::Granted;
use crate::rules::{self, Exchange};
use crate::state::Policy;
use crate::tokens::VerifiedToken;
use crate::tokens::{grant, mint, txn};

pub struct Request {
    pub client: String,
    /// A `jwt-bearer` request's grant (SPEC §9): the exchange is then that grant type's, with
    /// `resources` and `scopes` its parameters, and the subject and actor fields unused.
    pub assertion: Option<String>,
    pub subject_token: String,
    /// As `subject_token_type` declares it: workload tokens are `jwt`.
    pub subject_token_type: TokenType,
    /// With its type.
    pub actor_token: Option<(String, TokenType)>,
    pub audiences: Vec<String>,
    pub resources: Vec<crate::oauth::Resource>,
    pub scopes: Option<crate::oauth::Scopes>,
    pub requested_token_type: TokenType,
    /// A Txn-Token request's `request_context` and `request_details`, as sent (JSON text).
    pub request_context: Option<String>,
    pub request_details: Option<String>,
}

pub async fn explain(
    config: &Config,
    request: &Request,
    out: &mut impl Write,
) -> Result<(), String> {
    let (keys, policy) = load(config).await?;
    explain_with(config, &keys, &policy, request, out).await
}

/// As `explain`, with a policy already built and its keys fetched: the running server's, for
/// the console's "try it" form.
pub async fn explain_with(
    config: &Config,
    keys: &SigningKeys,
    policy: &Arc<Policy>,
    request: &Request,
    out: &mut impl Write,
) -> Result<(), String> {
    let w = |out: &mut dyn Write, line: String| writeln!(out, "{line}").map_err(|e| e.to_string());
    let denied = |e: &OAuthError| format!("result: denied: {}: {}", e.code, e.description);

    w(out, format!("client: {}", request.client))?;
    if !policy.clients.contains(&request.client) {
        return w(
            out,
            format!(
                "result: denied: invalid_client: client \"{}\" is not configured",
                request.client
            ),
        );
    }
    let ctx = Context {
        policy,
        now: clock::now().secs(),
        conditions: Conditions::Inline,
    };
    if let Some(assertion) = &request.assertion {
        return explain_jwt_bearer(config, keys, &ctx, request, assertion, out).await;
    }
    let exchange = match as_exchange(request) {
        Ok(exchange) => exchange,
        Err(e) => return w(out, denied(&e)),
    };
    let mut learned = Learned::default();
    let decided =
        token_exchange::decide(&ctx, &request.client, &exchange, None, &mut learned).await;
    for (role, token) in [("subject", &learned.subject), ("actor", &learned.actor)] {
        if let Some(token) = token {
            w(out, describe(role, token))?;
        }
    }
    // A token that did not verify ends the explanation before the rules.
    let subject = match (&learned.subject, &exchange.actor_token, &learned.actor) {
        (Some(subject), None, _) | (Some(subject), Some(_), Some(_)) => subject,
        _ => {
            return match &decided {
                Err(e) => w(out, denied(e)),
                Ok(_) => Err("a grant without verified tokens".into()),
            };
        }
    };
    w(out, request_line(request))?;
    let ex = exchange.exchange(
        &request.client,
        subject,
        learned.actor.as_ref(),
        ctx.now,
        None,
    );
    let verdict = Verdict {
        decided,
        rule: learned.rule,
        unspent: "",
    };
    conclude(config, keys, &request.client, &ex, verdict, out)
}

/// The dry run of a request whose subject is given as claims, taken as verified (as `tessera
/// test` cases are): what the rules make of such a token, whoever signs it.
pub fn explain_claims(
    config: &Config,
    keys: &SigningKeys,
    policy: &Policy,
    request: &Request,
    subject: &rules::cases::TokenClaims,
    out: &mut impl Write,
) -> Result<(), String> {
    let w = |out: &mut dyn Write, line: String| writeln!(out, "{line}").map_err(|e| e.to_string());
    let denied = |e: &OAuthError| format!("result: denied: {}: {}", e.code, e.description);
    w(out, format!("client: {}", request.client))?;
    if !policy.clients.contains(&request.client) {
        return w(
            out,
            format!(
                "result: denied: invalid_client: client \"{}\" is not configured",
                request.client
            ),
        );
    }
    let now = clock::now().secs();
    let subject = rules::cases::token(config, subject, now)
        .map_err(|e| format!("the subject's claims: {e}"))?;
    w(
        out,
        describe("subject (claims as given, unverified)", &subject),
    )?;
    let object = |name: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| crate::oauth::txn_params::object(name, t))
            .transpose()
    };
    let txn = match object("request_context", &request.request_context).and_then(|context| {
        Ok(crate::oauth::TxnParams {
            context,
            details: object("request_details", &request.request_details)?,
        })
    }) {
        Ok(txn) => txn,
        Err(e) => return w(out, denied(&e)),
    };
    let txn = (request.requested_token_type == TokenType::TxnToken).then_some(txn);
    w(out, request_line(request))?;
    let ex = Exchange {
        client_id: &request.client,
        subject: &subject,
        actor: None,
        targets: rules::Targets {
            audiences: &request.audiences,
            resources: &request.resources,
        },
        requested_scopes: request.scopes.as_ref(),
        now,
        proof_jkt: None,
        wants: crate::config::Wants::of(request.requested_token_type),
        presented_grant: false,
        txn: txn.as_ref(),
    };
    let planned = rules::plan(&policy.rules, policy.limits(), &ex);
    let rule = match &planned {
        Ok((rule, _)) => Some(rule.name.clone()),
        Err(_) => rules::choose(&policy.rules, &ex)
            .ok()
            .map(|r| r.name.clone()),
    };
    let verdict = Verdict {
        decided: planned.map(|(_, grant)| Decision {
            grant,
            issued_token_type: request.requested_token_type,
            single_use: None,
        }),
        rule,
        unspent: "; the claims were taken as given",
    };
    conclude(config, keys, &request.client, &ex, verdict, out)
}

/// How a dry run came out, and what it left undone.
struct Verdict {
    decided: Result<Decision, OAuthError>,
    rule: Option<String>,
    /// What `/token` would have spent and the dry run did not, said with the result.
    unspent: &'static str,
}

/// The end of every dry run: each rule's verdict on `ex`, then the result and the token that
/// would be minted.
fn conclude(
    config: &Config,
    keys: &SigningKeys,
    client: &str,
    ex: &Exchange<'_>,
    verdict: Verdict,
    out: &mut impl Write,
) -> Result<(), String> {
    let w = |out: &mut dyn Write, line: String| writeln!(out, "{line}").map_err(|e| e.to_string());
    w(out, String::new())?;
    for line in verdicts(config, client, ex) {
        w(out, line)?;
    }
    w(out, String::new())?;
    match verdict.decided {
        Err(e) => w(
            out,
            format!("result: denied: {}: {}", e.code, e.description),
        ),
        Ok(decision) => {
            let rule = verdict.rule.unwrap_or_default();
            w(
                out,
                format!(
                    "result: granted by rule \"{rule}\" (nothing was minted or recorded{})",
                    verdict.unspent
                ),
            )?;
            w(out, would_mint(config, keys, &decision)?)
        }
    }
}

/// The dry run of a `jwt-bearer` request: the grant verified as `/token` would (its `jti` is
/// not spent), then the rules' verdicts with the grant as the subject.
async fn explain_jwt_bearer(
    config: &Config,
    keys: &SigningKeys,
    ctx: &Context<'_>,
    request: &Request,
    assertion: &str,
    out: &mut impl Write,
) -> Result<(), String> {
    let w = |out: &mut dyn Write, line: String| writeln!(out, "{line}").map_err(|e| e.to_string());
    let denied = |e: &OAuthError| format!("result: denied: {}: {}", e.code, e.description);
    let mut form: Vec<(&str, String)> = vec![
        ("grant_type", jwt_bearer::GRANT_TYPE.into()),
        ("assertion", assertion.into()),
    ];
    form.extend(
        request
            .resources
            .iter()
            .map(|r| ("resource", r.to_string())),
    );
    form.extend(request.scopes.as_ref().map(|s| ("scope", s.to_string())));
    let parsed = serde_urlencoded::to_string(&form)
        .map_err(|e| OAuthError::invalid_request(format!("cannot form the request: {e}")))
        .and_then(|body| {
            jwt_bearer::Request::parse(&crate::oauth::Params::parse(body.as_bytes())?)
        });
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(e) => return w(out, denied(&e)),
    };
    let mut learned = Learned::default();
    let decided = jwt_bearer::decide(ctx, &request.client, &parsed, None, &mut learned).await;
    let Some(grant) = &learned.subject else {
        return match &decided {
            Err(e) => w(out, denied(e)),
            Ok(_) => Err("a grant without a verified assertion".into()),
        };
    };
    let kind = learned.grant_kind.map_or("grant", |k| k.as_str());
    w(out, describe(&format!("grant ({kind})"), grant))?;
    let resources = match jwt_bearer::targets(&parsed.resources, &grant.claims) {
        Ok(resources) => resources,
        Err(e) => return w(out, denied(&e)),
    };
    w(
        out,
        format!(
            "request: jwt-bearer; resources [{}]; scopes {}",
            resources
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            parsed.scopes.as_ref().map_or(
                "(none requested: the grant's apply)".to_string(),
                |s| format!("[{}]", s.names().join(", "))
            )
        ),
    )?;
    let ex = Exchange {
        client_id: &request.client,
        subject: grant,
        actor: None,
        targets: rules::Targets {
            audiences: &[],
            resources: &resources,
        },
        requested_scopes: parsed.scopes.as_ref(),
        now: ctx.now,
        proof_jkt: None,
        wants: crate::config::Wants::AccessToken,
        presented_grant: true,
        txn: None,
    };
    let verdict = Verdict {
        decided,
        rule: learned.rule,
        unspent: "; the grant's jti was not spent",
    };
    conclude(config, keys, &request.client, &ex, verdict, out)
}

/// The policy as the server would build it, with the remote issuers' keys fetched once.
async fn load(config: &Config) -> Result<(SigningKeys, Arc<Policy>), String> {
    let keys = SigningKeys::load(&config.signing)?;
    let fetcher = Fetcher::new(std::time::Duration::from_secs(5), Default::default())?;
    let policy = Arc::new(
        Policy::build(
            config,
            &keys,
            fetcher.clone(),
            tokio::runtime::Handle::current(),
            None,
        )
        .await,
    );
    let remote = policy
        .issuers
        .iter()
        .filter(|i| matches!(i.config.keys, KeySource::Uri(_) | KeySource::Discovery(_)));
    futures_util::future::join_all(remote.map(|i| i.refresh(&fetcher))).await;
    Ok((keys, policy))
}

/// The exchange `request` asks for, read from the form it would send: what `/token` refuses
/// as malformed, the dry run refuses alike.
fn as_exchange(request: &Request) -> Result<token_exchange::Request, OAuthError> {
    let mut form: Vec<(&str, String)> = vec![
        ("subject_token", request.subject_token.clone()),
        (
            "subject_token_type",
            request.subject_token_type.uri().into(),
        ),
        (
            "requested_token_type",
            request.requested_token_type.uri().into(),
        ),
    ];
    if let Some((token, token_type)) = &request.actor_token {
        form.push(("actor_token", token.clone()));
        form.push(("actor_token_type", token_type.uri().into()));
    }
    form.extend(request.audiences.iter().map(|a| ("audience", a.clone())));
    form.extend(
        request
            .resources
            .iter()
            .map(|r| ("resource", r.to_string())),
    );
    form.extend(request.scopes.as_ref().map(|s| ("scope", s.to_string())));
    form.extend(
        request
            .request_context
            .clone()
            .map(|c| ("request_context", c)),
    );
    form.extend(
        request
            .request_details
            .clone()
            .map(|d| ("request_details", d)),
    );
    let body = serde_urlencoded::to_string(&form)
        .map_err(|e| OAuthError::invalid_request(format!("cannot form the request: {e}")))?;
    token_exchange::Request::parse(&crate::oauth::Params::parse(body.as_bytes())?)
}

/// Each rule's verdict on the exchange, in file order.
fn verdicts(config: &Config, client: &str, ex: &Exchange<'_>) -> Vec<String> {
    config
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let verdict = if !rule.clients.iter().any(|c| c == client) {
                format!("does not name client \"{client}\"")
            } else if !rule.mints.serves(ex.wants) {
                format!(
                    "mints {}, and the request asks for {}",
                    rule.mints.as_str(),
                    ex.wants.as_str()
                )
            } else {
                match rules::misses(rule, ex) {
                    Ok(misses) if misses.is_empty() => "applies".to_string(),
                    Ok(misses) => format!("does not apply: {}", rules::miss::joined(&misses)),
                    Err(e) => format!("denies: {}", e.reason()),
                }
            };
            format!("rule {} \"{}\": {verdict}", i + 1, rule.name)
        })
        .collect()
}

fn request_line(request: &Request) -> String {
    format!(
        "request: {}; audiences [{}]; resources [{}]; scopes {}",
        request.requested_token_type.name(),
        request.audiences.join(", "),
        request
            .resources
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        request.scopes.as_ref().map_or(
            "(none requested: defaults apply)".to_string(),
            |s| format!("[{}]", s.names().join(", "))
        )
    )
}

/// The token the grant would be, header and claims, with a placeholder `jti`.
fn would_mint(config: &Config, keys: &SigningKeys, decision: &Decision) -> Result<String, String> {
    let (issuer, key, jti) = (&config.server.issuer, keys.current(), "<a new random jti>");
    let token = match &decision.grant {
        Granted::AccessToken(g) => {
            serde_json::json!({ "header": mint::header(key), "claims": mint::claims(issuer, g, jti) })
        }
        Granted::TxnToken(g) => {
            serde_json::json!({ "header": txn::header(key), "claims": txn::claims(issuer, g, jti) })
        }
        Granted::Grant(g) => serde_json::json!({
            "header": grant::header(key, g.typ()),
            "claims": grant::claims(issuer, g, jti),
        }),
    };
    serde_json::to_string_pretty(&token).map_err(|e| e.to_string())
}

fn describe(role: &str, t: &VerifiedToken) -> String {
    format!(
        "{role}: {} (issuer {}), jti {}, scopes [{}], expires in {} s",
        t.sub,
        t.issuer_id,
        t.jti.as_deref().unwrap_or("-"),
        t.scopes.names().join(", "),
        t.exp - clock::now().secs()
    )
}
