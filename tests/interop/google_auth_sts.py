"""google-auth's RFC 8693 client, google.oauth2.sts.Client, exchanging a subject token at Tessera
with HTTP Basic client authentication, and reading a refusal as the OAuthError it raises."""

import json
import os

from google.auth import exceptions
from google.auth.transport.requests import Request
from google.oauth2 import sts, utils

from common import claims_of, expect

url = os.environ["TESSERA_URL"]
subject_token = os.environ["SUBJECT_TOKEN"]
client_id, client_secret = os.environ["CLIENT_ID"], os.environ["CLIENT_SECRET"]

sts_client = sts.Client(
    f"{url}/token",
    utils.ClientAuthentication(utils.ClientAuthType.basic, client_id, client_secret),
)
answer = sts_client.exchange_token(
    Request(),
    grant_type="urn:ietf:params:oauth:grant-type:token-exchange",
    subject_token=subject_token,
    subject_token_type="urn:ietf:params:oauth:token-type:access_token",
    audience="inventory-api",
    scopes=["inventory:read"],
)
access_token = answer["access_token"]

expect(answer["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token", answer)
expect(answer["token_type"] == "Bearer", answer)
expect(answer["scope"] == "inventory:read", answer)
expect(0 < answer["expires_in"] <= 300, answer)
claims = claims_of(access_token)
expect(claims["aud"] == "inventory-api" and claims["sub"] == "alice", claims)

try:
    sts_client.exchange_token(
        Request(),
        grant_type="urn:ietf:params:oauth:grant-type:token-exchange",
        subject_token=subject_token,
        subject_token_type="urn:ietf:params:oauth:token-type:access_token",
        audience="payroll-api",
    )
    raise SystemExit("an exchange for an audience no rule allows was granted")
except exceptions.OAuthError as refused:
    # The message carries the error code and its description.
    expect("invalid_target" in str(refused), refused)

print(json.dumps({"jtis": [claims["jti"]]}))
