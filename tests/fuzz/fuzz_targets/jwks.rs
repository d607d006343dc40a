//! A JWKS document as an identity provider (or a client's jwks_uri) serves it.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tessera::install_crypto_provider();
    if let Ok(document) = tessera::issuers::jwks::parse(data) {
        for key in document.keys {
            let _ = key.fits(jsonwebtoken::Algorithm::RS256);
        }
    }
});
