#!/usr/bin/env python3
"""What runs beside the load in benches/load.sh (FLOOD=N or AUDITOR=1) for SECONDS:

  flood N   an unauthenticated caller sending N requests/s from one address over keep-alive
            connections: alternately a body that is not a form, a wrong client secret, and a
            60 KB `audience` (what used to leave the largest records)
  auditor   an auditor looping on the heaviest query the admin API takes: a filter no record
            matches, so every query reads as far as its time budget lets it

Prints how many requests were sent and how they were answered.

usage: disturb.py flood|auditor BASE_URL ADMIN_URL SECONDS [RATE]
"""
import base64
import collections
import http.client
import sys
import time
import urllib.parse

mode, base, admin, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
rate = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
answers = collections.Counter()


def connection(url):
    parts = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)


def send(conn, method, path, body=None, headers=None):
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        answers[resp.status] += 1
        return conn
    except (OSError, http.client.HTTPException):
        answers["error"] += 1
        conn.close()
        return None


form = {"Content-Type": "application/x-www-form-urlencoded"}
wrong = dict(form, Authorization="Basic " + base64.b64encode(b"orders-svc:wrong").decode())
bodies = [
    (b"x", form),
    (b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange", wrong),
    (b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&audience="
     + b"a" * 60_000, form),
]

start = time.monotonic()
conn = None
sent = 0
while time.monotonic() - start < seconds:
    if conn is None:
        conn = connection(base if mode == "flood" else admin)
    if mode == "flood":
        due = start + sent / rate
        time.sleep(max(0.0, due - time.monotonic()))
        body, headers = bodies[sent % len(bodies)]
        conn = send(conn, "POST", "/token", body, headers)
    else:
        conn = send(conn, "GET", "/admin/exchanges?error=no_such_error&limit=1000",
                    headers={"Authorization": "Bearer dev-only-admin-token"})
    sent += 1
elapsed = time.monotonic() - start
print(f"{mode}: {sent} requests in {elapsed:.1f} s ({sent / elapsed:.1f}/s), answered "
      + ", ".join(f"{k}: {v}" for k, v in sorted(answers.items(), key=str)))
