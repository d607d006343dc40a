//! A JWKS document as an identity provider (or a client's jwks_uri) serves it.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tessera::install_crypto_provider();
    use tessera::issuers::jwks::{Profile, parse};
    for profile in [Profile::Jwks, Profile::SpiffeBundle] {
        if let Ok(document) = parse(data, profile) {
            for key in document.keys {
                let _ = key.fits(jsonwebtoken::Algorithm::RS256);
            }
        }
    }
});
