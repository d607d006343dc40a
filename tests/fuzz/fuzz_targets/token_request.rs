//! The token request as it arrives: an Authorization header, a DPoP header and a form body,
//! separated by the first two newlines of the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::clients::{Evidence, credentials};
use tessera::grants::token_exchange::Request;
use tessera::oauth::form::Params;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let authorization = parts.next().and_then(|p| std::str::from_utf8(p).ok());
    let dpop = parts.next().and_then(|p| std::str::from_utf8(p).ok());
    let body = parts.next().unwrap_or_default();

    if let Some(proof) = dpop {
        let _ = tessera::tokens::dpop::check(
            proof,
            "POST",
            "https://sts.test.internal/token",
            1_800_000_000,
        );
    }
    let Ok(params) = Params::parse(body) else {
        return;
    };
    let _ = tessera::grants::GrantType::of(&params);
    let _ = credentials(&Evidence {
        authorization: authorization.filter(|a| !a.is_empty()),
        form_client_id: params.one("client_id"),
        form_client_secret: params.one("client_secret"),
        form_client_assertion: params.one("client_assertion"),
        form_client_assertion_type: params.one("client_assertion_type"),
    });
    let _ = Request::parse(&params);
    let _ = tessera::grants::jwt_bearer::Request::parse(&params);
});
