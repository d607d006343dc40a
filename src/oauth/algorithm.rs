//! JOSE algorithm names, read in one place. RFC 9864's fully specified `Ed25519` is EdDSA on the
//! Ed25519 curve, the only curve Tessera's EdDSA keys have: it is taken wherever `EdDSA` is (an
//! issuer's `algorithms`, a JWK's `alg`, a token's, a DPoP proof's or a client assertion's
//! header) and advertised beside it.

use jsonwebtoken::Algorithm;

/// The algorithm a JOSE `alg` names, `None` for a name Tessera does not know.
pub fn named(name: &str) -> Option<Algorithm> {
    match name {
        "Ed25519" => Some(Algorithm::EdDSA),
        other => other.parse().ok(),
    }
}

/// The names an algorithm is advertised under.
pub fn names(alg: Algorithm) -> Vec<String> {
    match alg {
        Algorithm::EdDSA => vec!["EdDSA".into(), "Ed25519".into()],
        other => vec![format!("{other:?}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_is_eddsa_and_other_names_are_as_jose_spells_them() {
        assert_eq!(named("Ed25519"), Some(Algorithm::EdDSA));
        assert_eq!(named("EdDSA"), Some(Algorithm::EdDSA));
        assert_eq!(named("ES256"), Some(Algorithm::ES256));
        assert_eq!(named("es256"), None);
        assert_eq!(named("Ed448"), None);
        assert_eq!(names(Algorithm::EdDSA), ["EdDSA", "Ed25519"]);
        assert_eq!(names(Algorithm::PS256), ["PS256"]);
    }
}
