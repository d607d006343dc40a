//! Tessera, an OAuth 2.0 Token Exchange (RFC 8693) Security Token Service.

pub mod audit;
pub mod cli;
pub mod clients;
pub mod clock;
pub mod condition;
pub mod config;
pub mod console;
pub mod error;
pub mod explain;
pub mod grants;
pub mod http;
pub mod ids;
pub mod issuers;
pub mod keys;
pub mod metrics;
pub mod net;
pub mod oauth;
pub mod pre_auth;
pub mod reload;
pub mod rules;
pub mod spiffe;
pub mod startup;
pub mod state;
pub mod store;
pub mod subjects;
pub mod telemetry;
pub mod text;
pub mod tokens;

/// jsonwebtoken 11 signs and verifies through a process-wide provider, chosen here once.
pub fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// Lowercase hex, for digests and identifiers.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}
