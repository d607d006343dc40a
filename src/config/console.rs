//! `[console]` (SPEC §11): how people sign in to the web console on the admin listener.

use super::check::Ctx;
use super::raw::RawConsole;
use super::*;

/// How people sign in to the console.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleConfig {
    /// The console's base URL as browsers reach it (no trailing slash): the OpenID Connect
    /// redirect URI is `<url>/console/callback`, and cookies are `Secure` when it is https.
    pub url: Option<Url>,
    pub oidc: Option<ConsoleOidc>,
    /// Whether the admin bearer token signs in too (as an operator).
    pub admin_token_sign_in: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            url: None,
            oidc: None,
            admin_token_sign_in: true,
        }
    }
}

impl ConsoleConfig {
    /// Cookies go over https only.
    pub fn secure(&self) -> bool {
        self.url.as_ref().is_some_and(|u| u.scheme() == "https")
    }

    pub fn redirect_uri(&self) -> Option<String> {
        self.url
            .as_ref()
            .map(|u| format!("{}/console/callback", u.as_str().trim_end_matches('/')))
    }
}

/// Sign-in with the organisation's identity provider: the authorization code flow with PKCE.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleOidc {
    /// The `[[issuers]]` entry whose keys verify the ID tokens, and whose `issuer` URL is
    /// where discovery starts.
    pub issuer: String,
    pub client_id: String,
    /// `None`: a public client, PKCE alone.
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    /// The ID token claim holding the role values: a string or an array of strings, found
    /// through objects by a dotted path (`realm_access.roles`).
    pub roles_claim: String,
    pub auditors: Vec<String>,
    pub operators: Vec<String>,
    /// The claim that names a person in the console and beside what they change (else `sub`).
    pub name_claim: String,
}

impl Ctx<'_> {
    pub(super) fn console(
        &self,
        raw: RawConsole,
        admin: Option<&AdminConfig>,
        issuers: &[IssuerConfig],
        server: &ServerConfig,
    ) -> Result<ConsoleConfig, ConfigError> {
        if admin.is_none() {
            return Err(self.err(
                "console",
                "needs [admin]: the console is served on the admin listener",
            ));
        }
        let url = match &raw.url {
            None => None,
            Some(u) => {
                let url = self.web_url("console.url", u)?;
                if url.query().is_some() || url.fragment().is_some() || url.path() != "/" {
                    return Err(self.err(
                        "console.url",
                        "must be an origin (scheme, host, port) with no path: the console is \
                         served at /console/ of it, and its cookies are scoped to that path",
                    ));
                }
                Some(url)
            }
        };
        let admin_token_sign_in = raw.admin_token_sign_in.unwrap_or(true);
        let oidc = match &raw.issuer {
            None => {
                let stray = [
                    ("client_id", raw.client_id.is_some()),
                    ("client_secret", raw.client_secret.is_some()),
                    ("client_secret_file", raw.client_secret_file.is_some()),
                    ("scopes", raw.scopes.is_some()),
                    ("roles_claim", raw.roles_claim.is_some()),
                    ("auditors", raw.auditors.is_some()),
                    ("operators", raw.operators.is_some()),
                    ("name_claim", raw.name_claim.is_some()),
                ];
                if let Some((key, _)) = stray.iter().find(|(_, set)| *set) {
                    return Err(self.err(
                        format!("console.{key}"),
                        "is for sign-in with an identity provider: set console.issuer too",
                    ));
                }
                None
            }
            Some(id) => Some(self.console_oidc(&raw, id, issuers, server)?),
        };
        if oidc.is_some() && url.is_none() {
            return Err(self.err(
                "console.url",
                "is required with console.issuer: the identity provider sends people back to \
                 <url>/console/callback",
            ));
        }
        if oidc.is_none() && !admin_token_sign_in {
            return Err(self.err(
                "console.admin_token_sign_in",
                "is false and no console.issuer is set: nobody could sign in",
            ));
        }
        Ok(ConsoleConfig {
            url,
            oidc,
            admin_token_sign_in,
        })
    }

    fn console_oidc(
        &self,
        raw: &RawConsole,
        id: &str,
        issuers: &[IssuerConfig],
        server: &ServerConfig,
    ) -> Result<ConsoleOidc, ConfigError> {
        let issuer = issuers.iter().find(|i| i.id == id).ok_or_else(|| {
            self.err(
                "console.issuer",
                format!("\"{id}\" names no [[issuers]] entry"),
            )
        })?;
        if issuer.issuer == server.issuer
            || matches!(issuer.keys, KeySource::None | KeySource::Local)
            || crate::spiffe::is_trust_domain(&issuer.issuer)
        {
            return Err(self.err(
                "console.issuer",
                format!(
                    "\"{id}\" is no OpenID provider with keys (this server, a SPIFFE trust \
                     domain, or an issuer of opaque tokens)"
                ),
            ));
        }
        self.web_url(&format!("issuers[{id}].issuer"), &issuer.issuer)
            .map_err(|_| {
                self.err(
                    "console.issuer",
                    format!(
                        "\"{id}\"'s issuer \"{}\" must be an https URL (http on loopback) where \
                         discovery starts",
                        issuer.issuer
                    ),
                )
            })?;
        let client_id = raw
            .client_id
            .clone()
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| self.err("console.client_id", "is required with console.issuer"))?;
        let client_secret = match (&raw.client_secret, &raw.client_secret_file) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    "console.client_secret",
                    "set at most one of client_secret and client_secret_file",
                ));
            }
            (Some(secret), None) => Some(secret.clone()),
            (None, Some(file)) => Some(
                std::fs::read_to_string(self.path(file))
                    .map(|s| s.trim().to_string())
                    .map_err(|e| {
                        self.err("console.client_secret_file", format!("cannot be read: {e}"))
                    })?,
            ),
            (None, None) => None,
        };
        let scopes = raw
            .scopes
            .clone()
            .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
        if !scopes.iter().any(|s| s == "openid") {
            return Err(self.err(
                "console.scopes",
                "must include \"openid\": the console signs in with an ID token",
            ));
        }
        if let Some(bad) = scopes
            .iter()
            .find(|s| crate::oauth::scope::Scope::parse(s).is_none())
        {
            return Err(self.err("console.scopes", format!("\"{bad}\" is not a scope token")));
        }
        let auditors = raw.auditors.clone().unwrap_or_default();
        let operators = raw.operators.clone().unwrap_or_default();
        if auditors.is_empty() && operators.is_empty() {
            return Err(self.err(
                "console.auditors",
                "auditors and operators are both empty: no one signing in would hold a role",
            ));
        }
        if let Some(both) = auditors.iter().find(|a| operators.contains(a)) {
            return Err(self.err(
                "console.auditors",
                format!("\"{both}\" is listed as auditors and operators; name each value once"),
            ));
        }
        let claim = |key: &str, value: &Option<String>, default: &str| {
            let value = value.clone().unwrap_or_else(|| default.to_string());
            if value.is_empty() || value.split('.').any(str::is_empty) {
                return Err(self.err(format!("console.{key}"), "must name a claim"));
            }
            Ok(value)
        };
        Ok(ConsoleOidc {
            issuer: id.to_string(),
            client_id,
            client_secret,
            scopes,
            roles_claim: claim("roles_claim", &raw.roles_claim, "groups")?,
            auditors,
            operators,
            name_claim: claim("name_claim", &raw.name_claim, "email")?,
        })
    }
}
