"""What the Python interop scripts share: reading claims, and failing with context."""

import base64
import json


def claims_of(token):
    """The claims of a JWT, unverified: the scripts that verify use the libraries for it."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def expect(condition, context):
    if not condition:
        raise SystemExit(f"unexpected: {context!r}")
