//! JWKS documents into verification keys. Keys Tessera cannot or must not use (symmetric,
//! encryption-only, X.509-SVID authorities, unknown types, RSA below 2048 or above 8192 bits)
//! are skipped, never guessed at. A SPIFFE trust bundle is a JWKS too: its `jwt-svid` keys are
//! kept and its `spiffe_refresh_hint` read.

use aws_lc_rs::signature::{self, ParsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    P256,
    P384,
    Ed25519,
}

pub struct VerifyKey {
    pub kid: Option<String>,
    /// The JWK's own `alg`, when it pins one.
    pub alg: Option<Algorithm>,
    pub key_type: KeyType,
    pub key: DecodingKey,
    /// RSA keys parsed once for RS256/384/512. jsonwebtoken builds the key from `n` and `e`
    /// (and its Montgomery context) on every verification.
    pub(super) rsa: Option<Box<ParsedRsa>>,
}

pub(super) struct ParsedRsa {
    rs256: ParsedPublicKey,
    rs384: ParsedPublicKey,
    rs512: ParsedPublicKey,
}

impl ParsedRsa {
    fn from_components(n: &str, e: &str) -> Option<Self> {
        let der = rsa_public_key_der(
            &URL_SAFE_NO_PAD.decode(n).ok()?,
            &URL_SAFE_NO_PAD.decode(e).ok()?,
        );
        Some(Self {
            rs256: ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &der).ok()?,
            rs384: ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA384, &der).ok()?,
            rs512: ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA512, &der).ok()?,
        })
    }
}

/// RFC 8017 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`, in DER.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn length(out: &mut Vec<u8>, len: usize) {
        if len < 0x80 {
            out.push(len as u8);
            return;
        }
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    fn integer(out: &mut Vec<u8>, magnitude: &[u8]) {
        let first = magnitude
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(magnitude.len());
        let magnitude = &magnitude[first..];
        // A set top bit would make the integer negative: a zero byte goes before it.
        let pad = magnitude.first().is_none_or(|b| b & 0x80 != 0);
        out.push(0x02);
        length(out, magnitude.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(magnitude);
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    integer(&mut body, n);
    integer(&mut body, e);
    let mut der = Vec::with_capacity(body.len() + 4);
    der.push(0x30);
    length(&mut der, body.len());
    der.extend(body);
    der
}

impl VerifyKey {
    /// Whether `signature` (base64url, as in the token) signs `message` under this key with
    /// `alg`. The caller has checked that the key `fits` the algorithm.
    pub fn verifies(&self, signature: &str, message: &[u8], alg: Algorithm) -> bool {
        let parsed = self.rsa.as_deref().and_then(|rsa| match alg {
            Algorithm::RS256 => Some(&rsa.rs256),
            Algorithm::RS384 => Some(&rsa.rs384),
            Algorithm::RS512 => Some(&rsa.rs512),
            _ => None,
        });
        match parsed {
            Some(key) => URL_SAFE_NO_PAD
                .decode(signature)
                .is_ok_and(|sig| key.verify_sig(message, &sig).is_ok()),
            None => {
                jsonwebtoken::crypto::verify(signature, message, &self.key, alg).unwrap_or(false)
            }
        }
    }

    /// Whether this key may verify a signature made with `alg`.
    pub fn fits(&self, alg: Algorithm) -> bool {
        if self.alg.is_some_and(|pinned| pinned != alg) {
            return false;
        }
        matches!(
            (self.key_type, alg),
            (
                KeyType::Rsa,
                Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512
            ) | (
                KeyType::Rsa,
                Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512
            ) | (KeyType::P256, Algorithm::ES256)
                | (KeyType::P384, Algorithm::ES384)
                | (KeyType::Ed25519, Algorithm::EdDSA)
        )
    }

    pub fn from_jwk(jwk: &Jwk) -> Result<Self, String> {
        match &jwk.common.public_key_use {
            Some(PublicKeyUse::Encryption) => return Err("an encryption key (use = enc)".into()),
            Some(PublicKeyUse::Other(u)) if u == "x509-svid" => {
                return Err("an X.509-SVID authority (use = x509-svid), not a JWT key".into());
            }
            _ => {}
        }
        let mut parsed_rsa = None;
        let key_type = match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => {
                let bits = base64_len(&rsa.n) * 8;
                if bits < 2048 {
                    return Err(format!("an RSA key of {bits} bits (2048 at least)"));
                }
                // Nothing verifies with larger ones (aws-lc's limit); said rather than kept.
                if bits > 8192 {
                    return Err(format!("an RSA key of {bits} bits (8192 at most)"));
                }
                parsed_rsa = Some(Box::new(
                    ParsedRsa::from_components(&rsa.n, &rsa.e).ok_or("an unusable RSA key")?,
                ));
                KeyType::Rsa
            }
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => KeyType::P256,
                EllipticCurve::P384 => KeyType::P384,
                ref other => return Err(format!("an EC key on unsupported curve {other:?}")),
            },
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                KeyType::Ed25519
            }
            AlgorithmParameters::OctetKeyPair(_) => {
                return Err("an OKP key that is not Ed25519".into());
            }
            AlgorithmParameters::OctetKey(_) => return Err("a symmetric key".into()),
            _ => return Err("a key of unknown type".into()),
        };
        let alg = match jwk.common.key_algorithm {
            None => None,
            Some(a) => Some(
                a.to_string()
                    .parse::<Algorithm>()
                    .map_err(|_| format!("a key for algorithm {a}"))?,
            ),
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("an unusable key: {e}"))?;
        Ok(Self {
            kid: jwk.common.key_id.clone(),
            alg,
            key_type,
            key,
            rsa: parsed_rsa,
        })
    }
}

/// Decoded length of unpadded base64url text.
fn base64_len(text: &str) -> usize {
    text.trim_end_matches('=').len() * 3 / 4
}

/// Keys kept from one JWKS at most: a token without `kid` may be tried against each.
const MAX_KEYS: usize = 32;

#[derive(Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
    /// SPIFFE trust bundles: how soon, in seconds, the bundle should be fetched again.
    spiffe_refresh_hint: Option<serde_json::Value>,
    /// SPIFFE trust bundles: a number that grows with each new bundle.
    spiffe_sequence: Option<serde_json::Value>,
}

/// What a key document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A JWKS (RFC 7517).
    Jwks,
    /// A SPIFFE trust bundle: a JWKS whose JWT-SVID keys say `use: jwt-svid`.
    SpiffeBundle,
}

impl Profile {
    /// The document an issuer's keys come in: a bundle for a trust domain.
    pub fn of_issuer(issuer: &str) -> Self {
        if crate::spiffe::is_trust_domain(issuer) {
            Self::SpiffeBundle
        } else {
            Self::Jwks
        }
    }
}

/// What a JWKS (or SPIFFE trust bundle) gives.
pub struct KeyDocument {
    pub keys: Vec<VerifyKey>,
    /// A note for each key skipped.
    pub skipped: Vec<String>,
    /// A bundle's `spiffe_refresh_hint`, when it gives a whole number of seconds.
    pub refresh_hint: Option<Duration>,
    /// A bundle's `spiffe_sequence`.
    pub sequence: Option<u64>,
}

/// Parses a JWKS, or a SPIFFE bundle: then only its `jwt-svid` keys are kept, and its refresh
/// hint and sequence read.
pub fn parse(bytes: &[u8], profile: Profile) -> Result<KeyDocument, String> {
    let document: Document =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS document: {e}"))?;
    let bundle = profile == Profile::SpiffeBundle;
    let number = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .and_then(serde_json::Value::as_u64)
            .filter(|_| bundle)
    };
    let refresh_hint = number(&document.spiffe_refresh_hint).map(Duration::from_secs);
    let sequence = number(&document.spiffe_sequence);
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (i, mut value) in document.keys.into_iter().enumerate() {
        // The JWK parser knows algorithms by their older names only, and calls others
        // UNKNOWN_ALGORITHM: the `alg` is read here, by the name the key gives it.
        let alg = value.get("alg").cloned();
        let parsed = match alg
            .as_ref()
            .map(|a| a.as_str().map(crate::oauth::algorithm::named))
        {
            Some(Some(Some(known))) => {
                value["alg"] = serde_json::Value::String(format!("{known:?}"));
                Ok(())
            }
            None => Ok(()),
            Some(Some(None)) | Some(None) => Err(format!(
                "a key for algorithm {}, which Tessera does not know",
                alg.as_ref().map(|a| a.to_string()).unwrap_or_default()
            )),
        }
        .and_then(|()| serde_json::from_value::<Jwk>(value).map_err(|e| format!("malformed: {e}")))
        .and_then(|jwk| {
            let jwt_svid = matches!(&jwk.common.public_key_use,
                Some(PublicKeyUse::Other(u)) if u == "jwt-svid");
            if bundle && !jwt_svid {
                let said = match &jwk.common.public_key_use {
                    Some(PublicKeyUse::Other(u)) => crate::text::shown(u, 32),
                    Some(other) => format!("{other:?}").to_lowercase(),
                    None => "nothing".into(),
                };
                return Err(format!(
                    "not a JWT-SVID authority (use = {said}; a bundle's JWT keys say jwt-svid)"
                ));
            }
            VerifyKey::from_jwk(&jwk)
        });
        match parsed {
            Ok(_) if keys.len() >= MAX_KEYS => {
                skipped.push(format!("key {i} skipped: more than {MAX_KEYS} keys"))
            }
            Ok(key) => keys.push(key),
            Err(why) => skipped.push(format!("key {i} skipped: {why}")),
        }
    }
    Ok(KeyDocument {
        keys,
        skipped,
        refresh_hint,
        sequence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC: &str = r#"{"kty":"EC","crv":"P-256","kid":"ec1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    #[test]
    fn usable_keys_are_kept_and_others_noted() {
        let doc = format!(
            r#"{{"keys":[{EC},{{"kty":"oct","k":"c2VjcmV0","kid":"h"}},{{"kty":"EC","crv":"P-256","use":"enc","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}},{{"kty":"RSA","n":"AQAB","e":"AQAB"}},{{"kty":"weird"}}]}}"#
        );
        let KeyDocument { keys, skipped, .. } =
            parse(doc.as_bytes(), Profile::Jwks).expect("parse");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("ec1"));
        assert_eq!(skipped.len(), 4, "{skipped:?}");
    }

    #[test]
    fn an_ed25519_key_is_kept_and_an_unknown_alg_is_named() {
        let okp = r#"{"kty":"OKP","crv":"Ed25519","kid":"ed","alg":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        let odd = r#"{"kty":"OKP","crv":"Ed25519","kid":"odd","alg":"Ed9999","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        let KeyDocument { keys, skipped, .. } = parse(
            format!(r#"{{"keys":[{okp},{odd}]}}"#).as_bytes(),
            Profile::Jwks,
        )
        .expect("parse");
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].alg, Some(Algorithm::EdDSA));
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].contains("\"Ed9999\""), "{skipped:?}");
    }

    #[test]
    fn rsa_keys_parsed_once_verify_as_jsonwebtoken_does() {
        use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
        use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("key");
        let components = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        assert_eq!(
            rsa_public_key_der(&components.n, &components.e),
            pair.public_key().as_ref(),
            "our DER is aws-lc's own"
        );
        let jwk = format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"r","n":"{}","e":"{}"}}]}}"#,
            URL_SAFE_NO_PAD.encode(&components.n),
            URL_SAFE_NO_PAD.encode(&components.e)
        );
        let keys = parse(jwk.as_bytes(), Profile::Jwks).expect("parse").keys;
        let key = &keys[0];
        assert!(key.rsa.is_some());
        let rng = aws_lc_rs::rand::SystemRandom::new();
        for (alg, padding) in [
            (Algorithm::RS256, &signature::RSA_PKCS1_SHA256),
            (Algorithm::RS384, &signature::RSA_PKCS1_SHA384),
            (Algorithm::RS512, &signature::RSA_PKCS1_SHA512),
            (Algorithm::PS256, &signature::RSA_PSS_SHA256),
        ] {
            let mut sig = vec![0; pair.public_modulus_len()];
            pair.sign(padding, &rng, b"header.claims", &mut sig)
                .expect("sign");
            let sig = URL_SAFE_NO_PAD.encode(&sig);
            assert!(key.verifies(&sig, b"header.claims", alg), "{alg:?}");
            assert!(
                !key.verifies(&sig, b"header.claimz", alg),
                "{alg:?} altered"
            );
            assert!(
                !key.verifies(&format!("{sig}="), b"header.claims", alg),
                "{alg:?} padded"
            );
            let other = if alg == Algorithm::RS256 {
                Algorithm::RS384
            } else {
                Algorithm::RS256
            };
            assert!(
                !key.verifies(&sig, b"header.claims", other),
                "{alg:?} as {other:?}"
            );
        }
    }

    #[test]
    fn rsa_keys_beyond_8192_bits_are_skipped_and_said() {
        let n = URL_SAFE_NO_PAD.encode([0xc5u8; 1040]);
        let doc = format!(r#"{{"keys":[{{"kty":"RSA","kid":"big","n":"{n}","e":"AQAB"}}]}}"#);
        let KeyDocument { keys, skipped, .. } =
            parse(doc.as_bytes(), Profile::Jwks).expect("parse");
        assert!(keys.is_empty());
        assert!(skipped[0].contains("8192 at most"), "{skipped:?}");
    }

    #[test]
    fn der_lengths_take_as_many_bytes_as_they_need() {
        let der = rsa_public_key_der(&[0x7f; 70_000], &[1, 0, 1]);
        // SEQUENCE, long form with three length bytes, then the modulus INTEGER, also long form.
        assert_eq!(&der[..2], &[0x30, 0x83]);
        let body = usize::from(der[2]) << 16 | usize::from(der[3]) << 8 | usize::from(der[4]);
        assert_eq!(body, der.len() - 5);
        assert_eq!(&der[5..10], &[0x02, 0x83, 0x01, 0x11, 0x70]);
    }

    #[test]
    fn a_key_fits_only_its_own_family_and_pinned_alg() {
        let keys = parse(format!(r#"{{"keys":[{EC}]}}"#).as_bytes(), Profile::Jwks)
            .expect("parse")
            .keys;
        let key = &keys[0];
        assert!(key.fits(Algorithm::ES256));
        assert!(!key.fits(Algorithm::ES384));
        assert!(!key.fits(Algorithm::RS256));
        assert!(!key.fits(Algorithm::HS256));
        let pinned = EC.replace(r#""kid":"ec1""#, r#""kid":"ec1","alg":"ES384""#);
        let keys = parse(
            format!(r#"{{"keys":[{pinned}]}}"#).as_bytes(),
            Profile::Jwks,
        )
        .expect("parse")
        .keys;
        assert!(!keys[0].fits(Algorithm::ES256));
    }

    #[test]
    fn garbage_is_not_a_jwks() {
        assert!(parse(b"<html>", Profile::Jwks).is_err());
        assert!(parse(b"{\"keys\": 3}", Profile::Jwks).is_err());
    }

    #[test]
    fn a_spiffe_bundle_gives_its_jwt_keys_and_refresh_hint() {
        let jwt_svid = EC.replace("\"kid\":\"ec1\"", "\"kid\":\"svid\",\"use\":\"jwt-svid\"");
        let x509 = EC.replace(
            "\"kid\":\"ec1\"",
            "\"kid\":\"ca\",\"use\":\"x509-svid\",\"x5c\":[\"MIIB\"]",
        );
        let bundle = format!(
            r#"{{"keys":[{jwt_svid},{x509}],"spiffe_sequence":12,"spiffe_refresh_hint":300}}"#
        );
        let document = parse(bundle.as_bytes(), Profile::SpiffeBundle).expect("parse");
        assert_eq!(document.keys.len(), 1);
        assert_eq!(document.keys[0].kid.as_deref(), Some("svid"));
        assert!(
            document.skipped[0].contains("x509-svid"),
            "{:?}",
            document.skipped
        );
        assert_eq!(document.refresh_hint, Some(Duration::from_secs(300)));
        assert_eq!(document.sequence, Some(12));
        let unmarked = parse(
            format!(r#"{{"keys":[{EC}]}}"#).as_bytes(),
            Profile::SpiffeBundle,
        )
        .expect("parse");
        assert!(
            unmarked.keys.is_empty(),
            "a bundle's keys must say use = jwt-svid"
        );
        let plain = parse(bundle.as_bytes(), Profile::Jwks).expect("parse");
        assert_eq!(
            (plain.refresh_hint, plain.sequence),
            (None, None),
            "a JWKS has no hints"
        );
    }
}
