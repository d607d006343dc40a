//! Keys of the test identity provider and of clients, and JWTs signed with them.

use super::*;

/// A private key of the test identity provider, and its public JWK.
#[derive(Clone)]
pub struct TestKey {
    pub alg: Algorithm,
    pub kid: String,
    pub pem: String,
    pub jwk: Value,
}

impl TestKey {
    pub fn generate(alg: Algorithm, kid: &str) -> Self {
        tessera::install_crypto_provider();
        let pem = generate_pkcs8_pem(alg).unwrap();
        let mut jwk: Jwk = public_jwk_of(alg, pem.as_bytes()).unwrap();
        jwk.common.key_id = Some(kid.to_string());
        Self {
            alg,
            kid: kid.into(),
            pem,
            jwk: serde_json::to_value(jwk).unwrap(),
        }
    }

    /// A JWT whose header names the algorithm `alg_name` (e.g. RFC 9864's `Ed25519`, which
    /// jsonwebtoken cannot write), signed with this key.
    pub fn sign_named(&self, alg_name: &str, header: Value, claims: &Value) -> String {
        let mut header = header;
        header["alg"] = Value::String(alg_name.into());
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        let input = format!("{}.{}", part(&header), part(claims));
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding(), self.alg).unwrap();
        format!("{input}.{signature}")
    }

    /// One RSA key for the whole run: generating RSA keys is slow.
    pub fn rsa() -> Self {
        static KEY: OnceLock<TestKey> = OnceLock::new();
        KEY.get_or_init(|| Self::generate(Algorithm::RS256, "rsa-1"))
            .clone()
    }

    pub fn encoding(&self) -> EncodingKey {
        match self.alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(self.pem.as_bytes()).unwrap(),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(self.pem.as_bytes()).unwrap(),
            _ => EncodingKey::from_rsa_pem(self.pem.as_bytes()).unwrap(),
        }
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.alg, Some(&self.kid), claims)
    }

    pub fn sign_as(&self, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &self.encoding()).unwrap()
    }
}
