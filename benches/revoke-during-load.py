#!/usr/bin/env python3
"""Revocations while the load runs (benches/load.sh with REVOKE=N): mints tokens to revoke first,
then, until SECONDS have passed, revokes one every 1/N s, alternately by the admin API
({"jti": ...}) and by the client (RFC 7009 /revoke), and checks each revoked token is no longer
active at /introspect. Prints how many revocations were made, their rate, latency percentiles,
and every one that did not answer 200 or left its token active.

usage: revoke-during-load.py BASE_URL ADMIN_URL SECONDS RATE SUBJECT_TOKENS_FILE
"""
import base64
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

base, admin, seconds, rate, tokens_file = sys.argv[1:6]
seconds, rate = float(seconds), float(rate)
client = ("orders-svc", "dev-only-orders-secret")
admin_token = "dev-only-admin-token"
basic = "Basic " + base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()


def post(url, body, headers):
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def form(fields):
    return urllib.parse.urlencode(fields).encode()


def mint(subject):
    status, body = post(f"{base}/token", form({
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": subject,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "audience": "inventory-api",
    }), {"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"})
    return json.loads(body)["access_token"] if status == 200 else None


def jti(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]


def active(token):
    _, body = post(f"{base}/introspect", form({"token": token}),
                   {"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"})
    return json.loads(body).get("active") is True


subjects = [line.strip() for line in open(tokens_file) if line.strip()]
wanted = int(seconds * rate) + 1
targets = [t for t in (mint(s) for s in subjects[:wanted]) if t]
print(f"revocations: {len(targets)} tokens minted to revoke", flush=True)

latencies, failures = [], []
start = time.monotonic()
for i, token in enumerate(targets):
    due = start + i / rate
    if time.monotonic() - start > seconds:
        break
    time.sleep(max(0.0, due - time.monotonic()))
    began = time.monotonic()
    if i % 2 == 0:
        status, body = post(f"{admin}/admin/revoke", json.dumps({"jti": jti(token)}).encode(),
                            {"Authorization": f"Bearer {admin_token}",
                             "Content-Type": "application/json"})
    else:
        status, body = post(f"{base}/revoke", form({"token": token}),
                            {"Authorization": basic,
                             "Content-Type": "application/x-www-form-urlencoded"})
    latencies.append(time.monotonic() - began)
    if status != 200:
        failures.append(f"{status} {body[:120]!r}")
    elif active(token):
        failures.append("answered 200 but the token is still active")

elapsed = time.monotonic() - start
latencies.sort()
pct = lambda p: 1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0
print(f"revocations: {len(latencies)} in {elapsed:.1f} s ({len(latencies) / elapsed:.1f}/s), "
      f"p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {pct(1.0):.1f} ms, "
      f"failed {len(failures)}")
for f in failures[:20]:
    print(f"  failed: {f}")
sys.exit(1 if failures else 0)
