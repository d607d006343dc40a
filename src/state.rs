//! What the handlers share. The policy (issuers, clients, rules) sits behind an `ArcSwap`: a
//! request takes one snapshot and finishes under it, whatever is swapped in meanwhile.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::audit::AuditWriter;
use crate::clients::Clients;
use crate::config::{Config, RuleConfig, ServerConfig, SigningConfig};
use crate::issuers::{Fetcher, Issuers};
use crate::keys::SigningKeys;
use crate::store::Store;

pub struct Policy {
    pub issuers: Issuers,
    pub clients: Clients,
    pub rules: Vec<RuleConfig>,
    pub signing: SigningConfig,
}

impl Policy {
    pub async fn build(
        config: &Config,
        keys: &SigningKeys,
        fetcher: Fetcher,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            issuers: Issuers::new(&config.issuers, keys, fetcher, runtime).await,
            clients: Clients::new(&config.clients),
            rules: config.rules.clone(),
            signing: config.signing.clone(),
        }
    }
}

pub struct AppState {
    pub server: ServerConfig,
    pub keys: SigningKeys,
    pub policy: ArcSwap<Policy>,
    pub audit: Arc<AuditWriter>,
    pub store: Store,
}
