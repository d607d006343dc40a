//! Tessera's own signing keys: loaded once from PKCS#8 PEM, checked against their `alg`, and
//! published as a JWKS. The first key signs; all verify.

mod generate;

use std::sync::Arc;

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256, RsaEncoding,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::SigningConfig;
pub use generate::{generate_pkcs8_pem, public_jwk_of};

/// Why the configured signing keys cannot be used; each names the key's setting or file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "signing.keys[{index}].private_key_file: {}: cannot read the signing key: {cause}{hint}",
        .path.display()
    )]
    Read {
        index: usize,
        path: std::path::PathBuf,
        cause: std::io::Error,
        /// How to make the key, when the file is missing.
        hint: String,
    },
    #[error("{}: {reason}", .path.display())]
    Unusable {
        path: std::path::PathBuf,
        reason: KeyError,
    },
    #[error("no signing key is configured")]
    NoKey,
}

/// Why one key cannot sign as its `alg` says.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0:?} is not a signing algorithm Tessera uses")]
    Algorithm(Algorithm),
    #[error("not a PKCS#8 PEM private key for {alg:?}: {why}")]
    NotPem { alg: Algorithm, why: String },
    #[error("cannot derive the public key for {alg:?}: {why}")]
    NoPublicKey { alg: Algorithm, why: String },
    #[error("unusable public key: {0}")]
    PublicKey(String),
    #[error("the key is not usable for {alg:?}: {why}")]
    Rejected { alg: Algorithm, why: String },
    #[error("the key cannot sign {alg:?}: {cause}")]
    CannotSign {
        alg: Algorithm,
        cause: Box<KeyError>,
    },
    #[error("the key does not verify as {0:?}")]
    DoesNotVerify(Algorithm),
    #[error("signing failed")]
    Signing,
    #[error("{0}")]
    Encoding(String),
}

pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    pub decoding: DecodingKey,
    pub public_jwk: Jwk,
    /// The key parsed once: parsing PKCS#8 on every signature would double its cost.
    signer: Signer,
    /// The base64url JOSE header of every token this key signs, by `typ` (`TYPS`).
    headers_b64: Vec<(&'static str, String)>,
}

enum Signer {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair, &'static dyn RsaEncoding),
}

impl Signer {
    fn new(alg: Algorithm, der: &[u8]) -> Result<Self, KeyError> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| KeyError::Rejected {
            alg,
            why: e.to_string(),
        };
        Ok(match alg {
            Algorithm::ES256 => Self::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(rejected)?,
            ),
            Algorithm::EdDSA => Self::Ed25519(
                Ed25519KeyPair::from_pkcs8(der)
                    .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(der))
                    .map_err(rejected)?,
            ),
            Algorithm::RS256 | Algorithm::PS256 => {
                let pair = RsaKeyPair::from_pkcs8(der)
                    .or_else(|_| RsaKeyPair::from_der(der))
                    .map_err(rejected)?;
                let padding: &'static dyn RsaEncoding = if alg == Algorithm::PS256 {
                    &RSA_PSS_SHA256
                } else {
                    &RSA_PKCS1_SHA256
                };
                Self::Rsa(pair, padding)
            }
            other => return Err(KeyError::Algorithm(other)),
        })
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = |_| KeyError::Signing;
        match self {
            Self::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(failed),
            Self::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Self::Rsa(pair, padding) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(*padding, &SystemRandom::new(), message, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
        }
    }
}

#[derive(Clone)]
pub struct SigningKeys {
    keys: Arc<Vec<SigningKey>>,
}

impl SigningKeys {
    /// Loads every configured key; an unreadable, malformed or mismatched key is an error that
    /// names its file.
    pub fn load(config: &SigningConfig) -> Result<Self, Error> {
        let keys = config
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let pem = std::fs::read(&k.private_key_file).map_err(|cause| {
                    let hint = if cause.kind() == std::io::ErrorKind::NotFound {
                        format!(
                            "; make one with `tessera keys generate --alg {:?} --out {}`",
                            k.alg,
                            k.private_key_file.display()
                        )
                    } else {
                        String::new()
                    };
                    Error::Read {
                        index: i,
                        path: k.private_key_file.clone(),
                        cause,
                        hint,
                    }
                })?;
                SigningKey::from_pem(&k.kid, k.alg, &pem).map_err(|reason| Error::Unusable {
                    path: k.private_key_file.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(Error::NoKey);
        }
        Ok(Self {
            keys: Arc::new(keys),
        })
    }

    /// Keys already parsed; the first signs. `None` when there are none.
    pub fn from_keys(keys: Vec<SigningKey>) -> Option<Self> {
        (!keys.is_empty()).then(|| Self {
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
    pub fn from_pem(kid: &str, alg: Algorithm, pem: &[u8]) -> Result<Self, KeyError> {
        let parsed = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            Algorithm::RS256 | Algorithm::PS256 => EncodingKey::from_rsa_pem(pem),
            other => return Err(KeyError::Algorithm(other)),
        };
        let encoding = parsed.map_err(|e| KeyError::NotPem {
            alg,
            why: e.to_string(),
        })?;
        let mut public_jwk =
            Jwk::from_encoding_key(&encoding, alg).map_err(|e| KeyError::NoPublicKey {
                alg,
                why: e.to_string(),
            })?;
        public_jwk.common.key_id = Some(kid.to_string());
        public_jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding =
            DecodingKey::from_jwk(&public_jwk).map_err(|e| KeyError::PublicKey(e.to_string()))?;
        let signer = Signer::new(alg, encoding.as_bytes())?;
        let headers_b64 = TYPS
            .iter()
            .map(|typ| Ok((*typ, header_b64(alg, kid, typ)?)))
            .collect::<Result<_, KeyError>>()?;
        let key = Self {
            kid: kid.to_string(),
            alg,
            decoding,
            public_jwk,
            signer,
            headers_b64,
        };
        key.self_test()?;
        Ok(key)
    }

    /// A compact JWS of `claims` under this key's header for access tokens (`typ: at+jwt`,
    /// `alg`, `kid`).
    pub fn sign_jwt(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, KeyError> {
        self.sign_jwt_typed(claims, "at+jwt")
    }

    /// A compact JWS of `claims` under this key's header with `typ`.
    pub fn sign_jwt_typed(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
        typ: &str,
    ) -> Result<String, KeyError> {
        let header = match self.headers_b64.iter().find(|(t, _)| *t == typ) {
            Some((_, h)) => std::borrow::Cow::Borrowed(h.as_str()),
            None => std::borrow::Cow::Owned(header_b64(self.alg, &self.kid, typ)?),
        };
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Encoding(e.to_string()))?;
        let mut token = String::with_capacity(header.len() + payload.len() * 4 / 3 + 400);
        token.push_str(&header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let signature = self.signer.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }

    /// Signs and verifies once, so a key of the wrong curve or type fails at load, not at
    /// the first exchange, and the signature format is proved to be what JWS verifiers expect.
    fn self_test(&self) -> Result<(), KeyError> {
        let message = b"tessera signing key self-test";
        let signature = self
            .signer
            .sign(message)
            .map_err(|e| KeyError::CannotSign {
                alg: self.alg,
                cause: Box::new(e),
            })?;
        match jsonwebtoken::crypto::verify(
            &URL_SAFE_NO_PAD.encode(signature),
            message,
            &self.decoding,
            self.alg,
        ) {
            Ok(true) => Ok(()),
            _ => Err(KeyError::DoesNotVerify(self.alg)),
        }
    }
}

/// The `typ`s of the tokens this server mints, whose headers each key keeps encoded.
const TYPS: &[&str] = &[
    "at+jwt",
    crate::tokens::txn::TYP,
    crate::tokens::grant::ID_JAG_TYP,
    crate::tokens::grant::GRANT_TYP,
];

fn header_b64(alg: Algorithm, kid: &str, typ: &str) -> Result<String, KeyError> {
    let mut header = jsonwebtoken::Header::new(alg);
    header.typ = Some(typ.into());
    header.kid = Some(kid.to_string());
    Ok(URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&header).map_err(|e| KeyError::Encoding(e.to_string()))?))
}

impl From<Error> for String {
    fn from(e: Error) -> Self {
        e.to_string()
    }
}
