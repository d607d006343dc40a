"""An AI agent's enterprise-managed authorization with Authlib's OAuth2Session: the agent
exchanges the user's ID token for an ID-JAG at the enterprise's Tessera (token exchange), PyJWT
verifies the ID-JAG as the resource authorization server would (typ, signature against the
published keys, aud), and the agent presents it with the jwt-bearer grant to the resource
authorization server's Tessera for an access token."""

import json
import os

import jwt
from authlib.integrations.requests_client import OAuth2Session

from common import claims_of, expect

idp_url, ras_url = os.environ["IDP_URL"], os.environ["RAS_URL"]
ras_issuer, resource = os.environ["RAS_ISSUER"], os.environ["RESOURCE"]
client_id, client_secret = os.environ["CLIENT_ID"], os.environ["CLIENT_SECRET"]

at_idp = OAuth2Session(client_id, client_secret, token_endpoint_auth_method="client_secret_basic")
grant = at_idp.fetch_token(
    f"{idp_url}/token",
    grant_type="urn:ietf:params:oauth:grant-type:token-exchange",
    requested_token_type="urn:ietf:params:oauth:token-type:id-jag",
    subject_token=os.environ["ID_TOKEN"],
    subject_token_type="urn:ietf:params:oauth:token-type:id_token",
    audience=ras_issuer,
    resource=resource,
    scope="chat.read",
)
expect(grant["token_type"] == "N_A", grant)
expect(grant["issued_token_type"] == "urn:ietf:params:oauth:token-type:id-jag", grant)
id_jag = grant["access_token"]

expect(jwt.get_unverified_header(id_jag)["typ"] == "oauth-id-jag+jwt", id_jag)
keys = jwt.PyJWKClient(f"{idp_url}/jwks.json")
verified = jwt.decode(
    id_jag,
    keys.get_signing_key_from_jwt(id_jag).key,
    algorithms=["ES256"],
    audience=ras_issuer,
    options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"]},
)
expect(verified["client_id"] == client_id and verified["resource"] == resource, verified)

at_ras = OAuth2Session(client_id, client_secret, token_endpoint_auth_method="client_secret_basic")
token = at_ras.fetch_token(
    f"{ras_url}/token",
    grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer",
    assertion=id_jag,
)
expect(token["token_type"] == "Bearer" and token["scope"] == "chat.read", token)
expect("refresh_token" not in token and "issued_token_type" not in token, token)
claims = claims_of(token["access_token"])
expect(claims["aud"] == resource and claims["sub"] == verified["sub"], claims)
print(json.dumps({"id_jag_jti": verified["jti"], "token_jti": claims["jti"]}))
