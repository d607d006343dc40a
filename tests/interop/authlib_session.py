"""Authlib's OAuth2Session fetching a token with the token-exchange grant: as a client with a
secret (HTTP Basic), then as a client authenticating with PrivateKeyJWT, once per key type.
Authlib signs assertions valid for an hour, so Tessera runs with server.max_assertion_lifetime
= "1h" here."""

import json
import os

from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey, OKPKey, RSAKey

from common import claims_of, expect

url = os.environ["TESSERA_URL"]
subject_token = os.environ["SUBJECT_TOKEN"]
client_id, client_secret = os.environ["CLIENT_ID"], os.environ["CLIENT_SECRET"]
keyed_client_id = os.environ["KEYED_CLIENT_ID"]
jtis = []


def exchange(session, expected_client):
    token = session.fetch_token(
        f"{url}/token",
        grant_type="urn:ietf:params:oauth:grant-type:token-exchange",
        subject_token=subject_token,
        subject_token_type="urn:ietf:params:oauth:token-type:access_token",
        audience="inventory-api",
        scope="inventory:read inventory:write",
    )
    access_token = token["access_token"]
    expect(token["token_type"] == "Bearer", token)
    expect(token["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token", token)
    expect(token["scope"] == "inventory:read inventory:write", token)
    claims = claims_of(access_token)
    expect(claims["client_id"] == expected_client and claims["sub"] == "alice", claims)
    jtis.append(claims["jti"])


session = OAuth2Session(client_id, client_secret, token_endpoint_auth_method="client_secret_basic")
exchange(session, client_id)

key_types = {"RS256": RSAKey, "ES256": ECKey, "EdDSA": OKPKey}
for key in json.loads(os.environ["CLIENT_KEYS"]):
    alg, kid = key["alg"], key["kid"]
    with open(key["pem_file"], encoding="ascii") as pem:
        private_key = key_types[alg].import_key(pem.read())
    session = OAuth2Session(keyed_client_id, private_key, token_endpoint_auth_method="private_key_jwt")
    session.register_client_auth_method(PrivateKeyJWT(f"{url}/token", headers={"kid": kid}, alg=alg))
    exchange(session, keyed_client_id)

print(json.dumps({"jtis": jtis}))
