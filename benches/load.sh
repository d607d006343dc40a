#!/usr/bin/env bash
# Load benchmark of the token endpoint: builds the release binary, starts Tessera on SQLite with
# the example configuration (its development identity provider signs the subject tokens), makes
# distinct subject tokens, and runs ../shared/bench (wrk) at 16 and 64 connections.
#
#   bash benches/load.sh                     # the standard matrix: 2 repeats of 30 s each
#   DURATION=10s REPEATS=1 TOKENS=2000 bash benches/load.sh
#   RULES=10000 ISSUERS=100 bash benches/load.sh   # cost growth: that many rules and issuers
#   BIN=/tmp/tessera-old bash benches/load.sh        # another build, same setup
#   SUBJECT_TOKENS=/tmp/tokens.txt bash benches/load.sh  # keep the subject tokens made there, and
#                                                   # reuse them on the next run (within the hour)
#   DB=/data/audit-10m.db bash benches/load.sh       # cost growth: on a database already holding
#                                                   # records (make one with benches/audit_scale.rs)
#   STORE_URL=postgres://postgres@127.0.0.1/bench bash benches/load.sh   # on PostgreSQL (migrated
#                                                   # first; the database must exist)
#   REVOKE=10 MATRIX_CONNS=64 bash benches/load.sh  # meanwhile, 10 revocations/s (admin and
#                                                   # client alternately) for the whole matrix: their
#                                                   # rate, latency and failures
#                                                   # (benches/revoke-during-load.py)
#   FLOOD=250 bash benches/load.sh                   # meanwhile, an unauthenticated caller
#                                                   # sending 250 garbage requests/s
#   AUDITOR=1 bash benches/load.sh                   # meanwhile, an auditor looping on the
#                                                   # heaviest admin query (benches/disturb.py)
#   TXN=1 bash benches/load.sh                       # Txn-Tokens instead of access tokens: the
#                                                   # gateway's request, with request_context and
#                                                   # request_details its rule builds tctx and
#                                                   # rctx from
#   GRANT=1 bash benches/load.sh                     # JWT authorization grants for the partner's
#                                                   # authorization server (the example's
#                                                   # orders-to-partner rule) instead
#
# Prints exchanges/s, latency percentiles, non-200 answers and the server's RSS and CPU.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
driver="${SHARED_BENCH:-$root/../shared/bench}"
tokens="${TOKENS:-5000}"
port="${PORT:-18080}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

# BIN: measure another build (an older commit's, say) with the same setup.
bin="${BIN:-$root/target/release/tessera}"
[ -n "${BIN:-}" ] || cargo build --release --manifest-path "$root/Cargo.toml" --bin tessera
work="$(mktemp -d)"
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

# SUBJECT_TOKENS: reuse the tokens of an earlier run (they last an hour); making them takes minutes.
if [ -n "${SUBJECT_TOKENS:-}" ] && [ -s "$SUBJECT_TOKENS" ]; then
  cp "$SUBJECT_TOKENS" "$work/tokens.txt"
else
  echo "making $tokens subject tokens…"
  for _ in $(seq "$tokens"); do
    "$root/deploy/examples/dev-token.sh" "user-$RANDOM$RANDOM" "exchange inventory:read inventory:write" 3600
  done > "$work/tokens.txt"
  [ -z "${SUBJECT_TOKENS:-}" ] || cp "$work/tokens.txt" "$SUBJECT_TOKENS"
fi

# The example configuration, its paths made absolute, with extra rules (for another client, so the
# measured client's lookup goes through the index) and extra issuers (file JWKS, no network).
config="$work/tessera.toml"
sed "s#\"examples/#\"$root/deploy/examples/#g" "$root/deploy/tessera.toml" > "$config"
extra_issuers="${ISSUERS:-1}"; extra_rules="${RULES:-2}"
{
  for i in $(seq 2 "$extra_issuers"); do
    printf '\n[[issuers]]\nid = "extra-%s"\nissuer = "https://extra-%s.idp.local"\njwks_file = "%s"\nalgorithms = ["RS256"]\naudiences = ["http://127.0.0.1:8080"]\n' "$i" "$i" "$root/deploy/examples/dev-idp.jwks.json"
  done
  if [ "$extra_rules" -gt 2 ]; then
    printf '\n[[clients]]\nid = "noise-svc"\nsecret_sha256 = "%s"\n' "$(printf x | sha256sum | cut -d' ' -f1)"
    for i in $(seq 3 "$extra_rules"); do
      printf '\n[[rules]]\nname = "noise-%s"\nclients = ["noise-svc"]\nissuers = ["dev-idp"]\naudiences = ["api-%s"]\nscopes = ["read"]\n' "$i" "$i"
    done
  fi
  if [ -n "${TXN:-}" ]; then
    printf '\n[transaction_tokens]\ntrust_domain = "bench.example"\n'
    printf '\n[[rules]]\nname = "gateway-txn"\nmints = "txn_token"\nclients = ["orders-svc"]\nissuers = ["dev-idp"]\nscopes = ["inventory:read", "inventory:write"]\n'
    printf '[rules.tctx]\naction = "request.details.action"\nquantity = "request.details.quantity"\n'
    printf '[rules.rctx]\nreq_ip = "request.context.req_ip"\n'
  fi
} >> "$config"
"$bin" check --config "$config" | grep -E "^(issuers|rules) "

db="${DB:-$work/bench.db}"
[ -z "${DB:-}" ] || echo "on $DB: $(du -h "$DB" | cut -f1)"
store_url="${STORE_URL:-sqlite://$db}"
case "$store_url" in
  postgres*) TESSERA__STORAGE__URL="$store_url" "$bin" migrate --config "$config" ;;
esac
TESSERA__SERVER__LISTEN="127.0.0.1:$port" TESSERA__STORAGE__URL="$store_url" \
TESSERA__ADMIN__LISTEN="127.0.0.1:$((port + 1))" TESSERA_LOG=warn \
  "$bin" serve --config "$config" &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

cat > "$work/env" <<ENV
export TOKEN_URL=http://127.0.0.1:$port/token
export CLIENT_ID=orders-svc
export CLIENT_SECRET=dev-only-orders-secret
export SUBJECT_TOKENS_FILE=$work/tokens.txt
export AUDIENCE=inventory-api
export SCOPE=inventory:read
export SERVER_PID=$server
ENV
if [ -n "${TXN:-}" ]; then
  cat >> "$work/env" <<'ENV'
export AUDIENCE=bench.example
export REQUESTED_TOKEN_TYPE=urn:ietf:params:oauth:token-type:txn_token
export EXTRA_FORM='request_details=%7B%22action%22%3A%22BUY%22%2C%22quantity%22%3A100%7D&request_context=%7B%22req_ip%22%3A%22192.0.2.7%22%7D'
ENV
fi
if [ -n "${GRANT:-}" ]; then
  cat >> "$work/env" <<'ENV'
export AUDIENCE=https://as.partner.example
export REQUESTED_TOKEN_TYPE=urn:ietf:params:oauth:token-type:jwt
ENV
fi
if [ -n "${REVOKE:-}" ]; then
  # Revocations for as long as the matrix runs (its runs, less the pauses between them).
  secs="${DURATION:-30s}"; secs="${secs%s}"
  runs=$(( ${REPEATS:-2} * $(wc -w <<< "${MATRIX_CONNS:-16 64}") ))
  python3 "$root/benches/revoke-during-load.py" "http://127.0.0.1:$port" \
    "http://127.0.0.1:$((port + 1))" "$(( runs * secs ))" "$REVOKE" "$work/tokens.txt" \
    > "$work/revocations.txt" 2>&1 &
  revoker=$!
fi
secs="${DURATION:-30s}"; secs="${secs%s}"
runs=$(( ${REPEATS:-2} * $(wc -w <<< "${MATRIX_CONNS:-16 64}") ))
disturbers=()
for disturbance in ${FLOOD:+flood} ${AUDITOR:+auditor}; do
  python3 "$root/benches/disturb.py" "$disturbance" "http://127.0.0.1:$port" \
    "http://127.0.0.1:$((port + 1))" "$(( runs * (secs + 2) ))" "${FLOOD:-0}" \
    >> "$work/disturbances.txt" 2>&1 &
  disturbers+=("$!")
done
bash "$driver/run-matrix.sh" "$work/env" "$work/results"
if [ "${#disturbers[@]}" -gt 0 ]; then
  wait "${disturbers[@]}" || true
  echo; cat "$work/disturbances.txt"
  echo "database: $(du -h "$db" 2>/dev/null | cut -f1)"
fi
if [ -n "${REVOKE:-}" ]; then
  wait "$revoker" || true
  echo; grep -E "^revocations: [0-9]+ in|failed:" "$work/revocations.txt" || cat "$work/revocations.txt"
fi
[ -n "${DB:-}${STORE_URL:-}" ] || echo "audit records written: $(TESSERA__STORAGE__URL="sqlite://$db" "$bin" audit --config "$config" --format csv --limit 100000000 2>/dev/null | wc -l)"
