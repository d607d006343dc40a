"""PyJWT's PyJWKClient as a resource server uses it: the key from Tessera's /jwks.json by the
token's kid, then jwt.decode checking signature, issuer, audience and lifetime."""

import json
import os

import jwt

from common import expect

access_token = os.environ["TOKEN"]
url = os.environ["ISSUER"]

jwks_client = jwt.PyJWKClient(f"{url}/jwks.json")
signing_key = jwks_client.get_signing_key_from_jwt(access_token)
claims = jwt.decode(
    access_token,
    signing_key,
    algorithms=["ES256", "EdDSA", "RS256", "PS256"],
    audience="inventory-api",
    issuer=url,
    options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
)
# PyJWT does not check typ: an RFC 9068 access token says at+jwt.
if jwt.get_unverified_header(access_token)["typ"] != "at+jwt":
    raise jwt.InvalidTokenError("not an access token")

tampered = access_token[:-4] + ("BBBB" if access_token.endswith("AAAA") else "AAAA")
try:
    jwt.decode(tampered, signing_key, algorithms=[signing_key.algorithm_name], audience="inventory-api")
    raise SystemExit("a tampered signature verified")
except jwt.InvalidSignatureError:
    pass
try:
    jwt.decode(access_token, signing_key, algorithms=[signing_key.algorithm_name], audience="another-api")
    raise SystemExit("a token for another audience verified")
except jwt.InvalidAudienceError:
    pass

expect(claims["aud"] == "inventory-api", claims)
print(json.dumps({"claims": claims, "alg": signing_key.algorithm_name}))
