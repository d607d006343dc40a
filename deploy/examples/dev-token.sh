#!/usr/bin/env bash
# Signs a subject token as the development identity provider of deploy/tessera.toml.
# LOCAL USE ONLY: the private key beside this script is public.
#
#   deploy/examples/dev-token.sh [SUBJECT] [SCOPES] [LIFETIME_SECONDS]
#
# Prints an RS256 JWT access token: iss https://dev-idp.tessera.local, aud http://127.0.0.1:8080.
# Needs only bash, openssl and coreutils.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sub="${1:-alice}"
scope="${2:-exchange inventory:read inventory:write}"
ttl="${3:-600}"
kid="$(sed -n 's/.*"kid": *"\([^"]*\)".*/\1/p' "$here/dev-idp.jwks.json" | head -n 1)"
now="$(date +%s)"
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
header="$(printf '{"alg":"RS256","typ":"at+jwt","kid":"%s"}' "$kid" | b64url)"
payload="$(printf '{"iss":"https://dev-idp.tessera.local","sub":"%s","aud":"http://127.0.0.1:8080","iat":%d,"exp":%d,"scope":"%s","jti":"%s","email":"%s@example.com","tenant":"acme"}' \
  "$sub" "$now" "$((now + ttl))" "$scope" "$(openssl rand -hex 16)" "$sub" | b64url)"
signature="$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -sign "$here/dev-idp.key.pem" -binary | b64url)"
printf '%s.%s.%s\n' "$header" "$payload" "$signature"
