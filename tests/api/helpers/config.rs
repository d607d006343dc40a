//! The test configuration as a value: a test changes fields of a `RawConfig`, and the harness
//! writes it as TOML, the file the server and the `tessera` command read. An entry a test names
//! and the configuration lacks is a panic, never an edit that silently does nothing.

use serde::Deserialize;
pub use tessera::config::raw::*;

use super::*;

/// The test configuration: one trusted issuer (the test IdP), two clients, one rule. Its
/// storage URL is left out: `TestApp` gives it a fresh database unless a test sets one.
pub fn default_config(idp: &str) -> RawConfig {
    toml::from_str(&format!(
        r#"
[server]
listen = "127.0.0.1:0"
issuer = "{STS}"
max_body_bytes = 8192

[admin]
listen = "127.0.0.1:0"
token_sha256 = "{admin}"

[signing]
default_ttl = "5m"
max_ttl = "1h"
[[signing.keys]]
kid = "sts-1"
alg = "ES256"
private_key_file = "signing.pem"

[[issuers]]
id = "corp"
issuer = "{idp}"
jwks_uri = "{idp}/jwks"
algorithms = ["RS256", "ES256"]
audiences = ["{STS}"]
jwks_min_refetch = "0s"

[[clients]]
id = "orders-svc"
secret_sha256 = "{orders}"

[[clients]]
id = "billing-svc"
secret_sha256 = "{billing}"

[[rules]]
name = "orders-to-inventory"
clients = ["orders-svc"]
issuers = ["corp"]
audiences = ["inventory-api"]
resources = ["https://inventory.internal/"]
scopes = ["inventory:read", "inventory:write"]
default_scopes = ["inventory:read"]
actor = "client"
copy_claims = ["email"]
"#,
        orders = tessera::clients::sha256_hex(ORDERS_SECRET),
        billing = tessera::clients::sha256_hex("billing-secret"),
        admin = tessera::clients::sha256_hex(ADMIN_TOKEN),
    ))
    .unwrap()
}

/// Issuers, clients and rules written as in the file, to add to a configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entries {
    #[serde(default)]
    issuers: Vec<RawIssuer>,
    #[serde(default)]
    clients: Vec<RawClient>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

/// Edits of the test configuration by name.
pub trait ConfigEdits {
    /// The issuer `id`; a panic when there is none.
    fn issuer_mut(&mut self, id: &str) -> &mut RawIssuer;
    /// The client `id`; a panic when there is none.
    fn client_mut(&mut self, id: &str) -> &mut RawClient;
    /// The rule `name`; a panic when there is none.
    fn rule_mut(&mut self, name: &str) -> &mut RawRule;
    /// Appends the `[[issuers]]`, `[[clients]]` and `[[rules]]` of `toml`, after those there are.
    fn append(&mut self, toml: &str);
    /// The configuration as its file.
    fn to_toml(&self) -> String;
}

impl ConfigEdits for RawConfig {
    fn issuer_mut(&mut self, id: &str) -> &mut RawIssuer {
        self.issuers
            .iter_mut()
            .find(|i| i.id == id)
            .unwrap_or_else(|| panic!("the test configuration has no issuer {id:?}"))
    }

    fn client_mut(&mut self, id: &str) -> &mut RawClient {
        self.clients
            .iter_mut()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("the test configuration has no client {id:?}"))
    }

    fn rule_mut(&mut self, name: &str) -> &mut RawRule {
        self.rules
            .iter_mut()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("the test configuration has no rule {name:?}"))
    }

    fn append(&mut self, toml: &str) {
        let entries: Entries = toml::from_str(toml).unwrap();
        self.issuers.extend(entries.issuers);
        self.clients.extend(entries.clients);
        self.rules.extend(entries.rules);
    }

    fn to_toml(&self) -> String {
        toml::to_string(self).unwrap()
    }
}

/// One issuer, client, rule or other table, written as in the file.
pub fn entry<T: serde::de::DeserializeOwned>(toml: &str) -> T {
    toml::from_str(toml).unwrap()
}

/// Pins a server to the SQLite file `tessera.db` in its folder, even when
/// `TESSERA_TEST_POSTGRES_URL` is set: for tests of SQLite itself.
pub fn on_sqlite(c: &mut RawConfig) {
    c.storage.url = Some(crate::storage::DEFAULT_SQLITE_URL.to_string());
}

/// The configuration in the file at `path`.
pub fn read_config(path: &Path) -> RawConfig {
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Writes `config` to `path`.
pub fn write_config(path: &Path, config: &RawConfig) {
    std::fs::write(path, config.to_toml()).unwrap();
}
