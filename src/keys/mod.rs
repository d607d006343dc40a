//! Tessera's own signing keys: loaded once from PKCS#8 PEM, checked against their `alg`, and
//! published as a JWKS. The first key signs; all verify.

mod generate;

use std::sync::Arc;

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use crate::config::SigningConfig;
pub use generate::{generate_pkcs8_pem, public_jwk_of};

pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    pub public_jwk: Jwk,
}

#[derive(Clone)]
pub struct SigningKeys {
    keys: Arc<Vec<SigningKey>>,
}

impl SigningKeys {
    /// Loads every configured key; an unreadable, malformed or mismatched key is an error that
    /// names its file.
    pub fn load(config: &SigningConfig) -> Result<Self, String> {
        let keys = config
            .keys
            .iter()
            .map(|k| {
                let pem = std::fs::read(&k.private_key_file).map_err(|e| {
                    format!(
                        "{}: cannot read the signing key: {e}",
                        k.private_key_file.display()
                    )
                })?;
                SigningKey::from_pem(&k.kid, k.alg, &pem)
                    .map_err(|e| format!("{}: {e}", k.private_key_file.display()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err("no signing key is configured".into());
        }
        Ok(Self {
            keys: Arc::new(keys),
        })
    }

    pub fn current(&self) -> &SigningKey {
        // `load` refuses an empty list, so the first key always exists.
        #[expect(
            clippy::indexing_slicing,
            reason = "load() guarantees at least one key"
        )]
        &self.keys[0]
    }

    pub fn iter(&self) -> impl Iterator<Item = &SigningKey> {
        self.keys.iter()
    }

    /// The public JWKS served at `/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<&Jwk> = self.keys.iter().map(|k| &k.public_jwk).collect();
        serde_json::json!({ "keys": keys })
    }
}

impl SigningKey {
    pub fn from_pem(kid: &str, alg: Algorithm, pem: &[u8]) -> Result<Self, String> {
        let parsed = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            Algorithm::RS256 | Algorithm::PS256 => EncodingKey::from_rsa_pem(pem),
            other => return Err(format!("{other:?} is not a signing algorithm Tessera uses")),
        };
        let encoding =
            parsed.map_err(|e| format!("not a PKCS#8 PEM private key for {alg:?}: {e}"))?;
        let mut public_jwk = Jwk::from_encoding_key(&encoding, alg)
            .map_err(|e| format!("cannot derive the public key for {alg:?}: {e}"))?;
        public_jwk.common.key_id = Some(kid.to_string());
        public_jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding =
            DecodingKey::from_jwk(&public_jwk).map_err(|e| format!("unusable public key: {e}"))?;
        let key = Self {
            kid: kid.to_string(),
            alg,
            encoding,
            decoding,
            public_jwk,
        };
        key.self_test()?;
        Ok(key)
    }

    /// Signs and verifies once, so a key of the wrong curve or type fails at load, not at
    /// the first exchange.
    fn self_test(&self) -> Result<(), String> {
        let message = b"tessera signing key self-test";
        let signature = jsonwebtoken::crypto::sign(message, &self.encoding, self.alg)
            .map_err(|e| format!("the key cannot sign {:?}: {e}", self.alg))?;
        match jsonwebtoken::crypto::verify(&signature, message, &self.decoding, self.alg) {
            Ok(true) => Ok(()),
            _ => Err(format!("the key does not verify as {:?}", self.alg)),
        }
    }
}
