//! `tessera keys generate`: new private keys as PKCS#8 v1 PEM (v1, because JWK export of an
//! Ed25519 key needs it).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey};

/// Why no key came out.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("key generation for {0:?} failed")]
    Failed(Algorithm),
    #[error("{0:?} is not one of ES256, EdDSA, RS256, PS256")]
    Unsupported(Algorithm),
    #[error(transparent)]
    Jwk(#[from] jsonwebtoken::errors::Error),
}

impl From<GenerateError> for String {
    fn from(e: GenerateError) -> Self {
        crate::error::chain(&e)
    }
}

pub fn generate_pkcs8_pem(alg: Algorithm) -> Result<String, GenerateError> {
    let rng = SystemRandom::new();
    let failed = |_| GenerateError::Failed(alg);
    let der: Vec<u8> = match alg {
        Algorithm::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(failed)?
            .as_ref()
            .to_vec(),
        Algorithm::EdDSA => Ed25519KeyPair::generate_pkcs8v1(&rng)
            .map_err(failed)?
            .as_ref()
            .to_vec(),
        Algorithm::RS256 | Algorithm::PS256 => {
            aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .and_then(|k| k.as_der())
                .map_err(failed)?
                .as_ref()
                .to_vec()
        }
        other => return Err(GenerateError::Unsupported(other)),
    };
    Ok(pem_wrap("PRIVATE KEY", &der))
}

/// The public JWK of a private key, its `kid` the RFC 7638 thumbprint.
pub fn public_jwk_of(alg: Algorithm, pem: &[u8]) -> Result<Jwk, GenerateError> {
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
        _ => EncodingKey::from_rsa_pem(pem),
    }?;
    let mut jwk = Jwk::from_encoding_key(&key, alg)?;
    jwk.common.key_id = Some(jwk.thumbprint(ThumbprintHash::SHA256)?);
    Ok(jwk)
}

fn pem_wrap(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;

    #[test]
    fn every_signing_algorithm_round_trips_through_pem() {
        crate::install_crypto_provider();
        for alg in crate::config::SIGNING_ALGORITHMS {
            let pem = generate_pkcs8_pem(*alg).expect("generate");
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            let key = SigningKey::from_pem("k", *alg, pem.as_bytes()).expect("load");
            assert_eq!(key.public_jwk.common.key_id.as_deref(), Some("k"));
            assert!(public_jwk_of(*alg, pem.as_bytes()).is_ok());
        }
    }

    #[test]
    fn a_key_of_another_algorithm_is_refused() {
        crate::install_crypto_provider();
        let ec = generate_pkcs8_pem(Algorithm::ES256).expect("generate");
        assert!(SigningKey::from_pem("k", Algorithm::RS256, ec.as_bytes()).is_err());
        assert!(SigningKey::from_pem("k", Algorithm::EdDSA, ec.as_bytes()).is_err());
        assert!(SigningKey::from_pem("k", Algorithm::ES256, b"not a key").is_err());
    }
}
