//! `TestIdp`: an identity provider on loopback serving JWKS, discovery and introspection.

use super::*;

/// How the test identity provider answers a JWKS request.
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Behaviour {
    #[default]
    Normal,
    Down,
    Hang,
    Huge,
    Malformed,
    Redirect,
}

#[derive(Default)]
struct IdpState {
    keys: Vec<Value>,
    issuer: String,
    behaviour: Behaviour,
    fetches: usize,
    /// Opaque tokens this provider says are active, with their introspection answers.
    opaque: std::collections::HashMap<String, Value>,
    introspections: usize,
    /// Serving a SPIFFE trust bundle with this `spiffe_refresh_hint`, rather than a plain JWKS.
    bundle_hint: Option<u64>,
    /// The bundle's `spiffe_sequence`, when fixed (else the number of fetches so far).
    bundle_sequence: Option<u64>,
    /// Who the next authorization request signs in as: the key their ID token is signed
    /// with and claims over the defaults; `None`: the person refuses (`access_denied`).
    person: Option<(TestKey, Value)>,
    /// Codes handed out and not yet redeemed.
    codes: std::collections::HashMap<String, Grant>,
}

/// What an authorization code stands for.
#[derive(Clone)]
struct Grant {
    key: TestKey,
    claims: Value,
    client_id: String,
    redirect_uri: String,
    nonce: Option<String>,
    challenge: String,
}

/// An identity provider on loopback: `/jwks`, `/.well-known/openid-configuration`.
pub struct TestIdp {
    pub url: String,
    state: Arc<Mutex<IdpState>>,
}

impl TestIdp {
    pub async fn start(keys: &[&TestKey]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let state = Arc::new(Mutex::new(IdpState {
            keys: keys.iter().map(|k| k.jwk.clone()).collect(),
            issuer: url.clone(),
            ..Default::default()
        }));
        let shared = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/jwks", web::get().to(jwks))
                .route("/introspect", web::post().to(introspect))
                .route("/authorize", web::get().to(authorize))
                .route("/token", web::post().to(token))
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { url, state }
    }

    pub fn publish(&self, keys: &[&TestKey]) {
        self.state.lock().unwrap().keys = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    pub fn set_down(&self, down: bool) {
        self.behave(if down {
            Behaviour::Down
        } else {
            Behaviour::Normal
        });
    }

    pub fn behave(&self, behaviour: Behaviour) {
        self.state.lock().unwrap().behaviour = behaviour;
    }

    /// Makes `token` an active opaque token whose introspection answers `answer`.
    pub fn issue_opaque(&self, token: &str, answer: Value) {
        self.state
            .lock()
            .unwrap()
            .opaque
            .insert(token.into(), answer);
    }

    /// Serves `/jwks` as a SPIFFE trust bundle, as a bundle endpoint does: the keys marked
    /// `use: jwt-svid`, an X.509 authority beside them, `spiffe_sequence` and
    /// `spiffe_refresh_hint` (seconds).
    pub fn serve_bundle(&self, refresh_hint: u64) {
        self.state.lock().unwrap().bundle_hint = Some(refresh_hint);
    }

    /// Fixes the bundle's `spiffe_sequence`.
    pub fn set_bundle_sequence(&self, sequence: u64) {
        self.state.lock().unwrap().bundle_sequence = Some(sequence);
    }

    /// The next person to sign in through `/authorize` (OpenID Connect, code flow with PKCE):
    /// their ID token, signed with `key`, holds `iss`, `aud` (the client), `sub`, `iat`, `exp`
    /// and the request's `nonce`, each overridden by `claims`. `None`: the person refuses.
    pub fn sign_in_as(&self, person: Option<(&TestKey, Value)>) {
        self.state.lock().unwrap().person = person.map(|(k, c)| (k.clone(), c));
    }

    pub fn introspections(&self) -> usize {
        self.state.lock().unwrap().introspections
    }

    pub fn fetches(&self) -> usize {
        self.state.lock().unwrap().fetches
    }
}

async fn jwks(state: web::Data<Arc<Mutex<IdpState>>>) -> HttpResponse {
    let (behaviour, keys, issuer, bundle_hint, sequence) = {
        let mut s = state.lock().unwrap();
        s.fetches += 1;
        (
            s.behaviour,
            s.keys.clone(),
            s.issuer.clone(),
            s.bundle_hint,
            s.bundle_sequence.unwrap_or(s.fetches as u64),
        )
    };
    match behaviour {
        Behaviour::Normal if bundle_hint.is_some() => {
            let mut keys = keys;
            for key in &mut keys {
                key["use"] = json!("jwt-svid");
            }
            // An X.509-SVID authority: the same key type, which must not verify JWT-SVIDs.
            let mut authority = keys[0].clone();
            authority["use"] = json!("x509-svid");
            authority["kid"] = json!("x509-authority");
            authority["x5c"] = json!(["MIIBdGVzdA=="]);
            keys.push(authority);
            HttpResponse::Ok().json(json!({
                "keys": keys,
                "spiffe_sequence": sequence,
                "spiffe_refresh_hint": bundle_hint,
            }))
        }
        Behaviour::Normal => HttpResponse::Ok().json(json!({ "keys": keys })),
        Behaviour::Down => HttpResponse::ServiceUnavailable().finish(),
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            HttpResponse::Ok().json(json!({ "keys": keys }))
        }
        Behaviour::Huge => HttpResponse::Ok()
            .content_type("application/json")
            .body(format!(
                "{{\"keys\": [], \"padding\": \"{}\"}}",
                "x".repeat(1024 * 1024)
            )),
        Behaviour::Malformed => HttpResponse::Ok()
            .content_type("application/json")
            .body("{\"keys\": [ this is not json"),
        Behaviour::Redirect => HttpResponse::Found()
            .insert_header(("location", format!("{issuer}/elsewhere")))
            .finish(),
    }
}

/// RFC 7662, for the client `tessera` with secret `introspect-secret`.
async fn introspect(
    req: actix_web::HttpRequest,
    body: String,
    state: web::Data<Arc<Mutex<IdpState>>>,
) -> HttpResponse {
    let mut s = state.lock().unwrap();
    s.introspections += 1;
    if s.behaviour == Behaviour::Down {
        return HttpResponse::ServiceUnavailable().finish();
    }
    let expected = format!("Basic {}", STANDARD.encode("tessera:introspect-secret"));
    if req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return HttpResponse::Unauthorized().finish();
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let token = form
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    match s.opaque.get(&token) {
        Some(answer) => HttpResponse::Ok().json(answer),
        None => HttpResponse::Ok().json(json!({"active": false})),
    }
}

async fn discovery(state: web::Data<Arc<Mutex<IdpState>>>) -> HttpResponse {
    let s = state.lock().unwrap();
    HttpResponse::Ok().json(json!({
        "issuer": s.issuer,
        "jwks_uri": format!("{}/jwks", s.issuer),
        "authorization_endpoint": format!("{}/authorize", s.issuer),
        "token_endpoint": format!("{}/token", s.issuer),
        "code_challenge_methods_supported": ["S256"],
    }))
}

/// The authorization endpoint: signs in `person` at once, no page, and sends the browser back
/// with a code, or with `access_denied` when no one is set.
async fn authorize(
    query: web::Query<std::collections::HashMap<String, String>>,
    state: web::Data<Arc<Mutex<IdpState>>>,
) -> HttpResponse {
    let q = query.into_inner();
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let mut redirect = reqwest::Url::parse(&get("redirect_uri")).unwrap();
    if get("response_type") != "code" || get("code_challenge_method") != "S256" {
        redirect
            .query_pairs_mut()
            .append_pair("error", "invalid_request")
            .append_pair("state", &get("state"));
    } else {
        let mut s = state.lock().unwrap();
        match s.person.clone() {
            None => {
                redirect
                    .query_pairs_mut()
                    .append_pair("error", "access_denied")
                    .append_pair("error_description", "<b>the person said no</b>")
                    .append_pair("state", &get("state"));
            }
            Some((key, claims)) => {
                let code = format!("code-{}", s.codes.len() + 1);
                s.codes.insert(
                    code.clone(),
                    Grant {
                        key,
                        claims,
                        client_id: get("client_id"),
                        redirect_uri: get("redirect_uri"),
                        nonce: q.get("nonce").cloned(),
                        challenge: get("code_challenge"),
                    },
                );
                redirect
                    .query_pairs_mut()
                    .append_pair("code", &code)
                    .append_pair("state", &get("state"));
            }
        }
    }
    HttpResponse::Found()
        .insert_header(("location", redirect.to_string()))
        .finish()
}

/// The token endpoint: a code once, for the client `tessera-console` with secret
/// `console-secret`, the redirect URI it was given for and the PKCE verifier of its challenge.
async fn token(
    req: actix_web::HttpRequest,
    body: String,
    state: web::Data<Arc<Mutex<IdpState>>>,
) -> HttpResponse {
    let form: std::collections::HashMap<String, String> =
        serde_urlencoded::from_str(&body).unwrap_or_default();
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let refuse = |error: &str| HttpResponse::BadRequest().json(json!({ "error": error }));
    let expected = format!(
        "Basic {}",
        STANDARD.encode("tessera-console:console-secret")
    );
    if req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        != Some(&expected)
    {
        return HttpResponse::Unauthorized().json(json!({ "error": "invalid_client" }));
    }
    let (grant, issuer) = {
        let mut s = state.lock().unwrap();
        (s.codes.remove(&get("code")), s.issuer.clone())
    };
    let Some(grant) = grant else {
        return refuse("invalid_grant");
    };
    let challenge = URL_SAFE_NO_PAD.encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, get("code_verifier").as_bytes())
            .as_ref(),
    );
    if get("grant_type") != "authorization_code"
        || get("redirect_uri") != grant.redirect_uri
        || grant.client_id != "tessera-console"
        || challenge != grant.challenge
    {
        return refuse("invalid_grant");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = json!({
        "iss": issuer, "aud": grant.client_id, "sub": "person-1",
        "iat": now, "exp": now + 300, "nonce": grant.nonce,
    });
    for (k, v) in grant.claims.as_object().unwrap() {
        claims[k] = v.clone();
    }
    HttpResponse::Ok().json(json!({
        "access_token": "at-for-userinfo", "token_type": "Bearer", "expires_in": 300,
        "id_token": grant.key.sign(&claims),
    }))
}
