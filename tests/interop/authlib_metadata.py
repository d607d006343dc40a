"""Authlib's RFC 8414 validator on Tessera's metadata document, as served (https issuer)."""

import json
import os

import requests
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from common import expect

url = os.environ["TESSERA_URL"]

answer = requests.get(f"{url}/.well-known/oauth-authorization-server", timeout=10)
metadata = AuthorizationServerMetadata(answer.json())
metadata.validate()

expect(answer.status_code == 200, answer.text)
expect(metadata["issuer"] == os.environ["ISSUER"], metadata)
print(json.dumps({"validated": sorted(metadata.keys())}))
