#!/usr/bin/env bash
# The console's pages on a large audit trail: serves the example configuration on the data set
# of benches/audit_scale.rs (built first: TESSERA_BENCH_DB=$DB cargo bench --bench audit_scale),
# signs in with the development admin token, and times each page REPEATS times with curl over
# loopback (time to the last byte: the server's time plus a loopback round trip). A benchmark,
# not a test.
#
#   BIN=target/release/tessera DB=/tmp/audit.db bash benches/console_pages.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${BIN:-target/release/tessera}"
DB="${DB:?the data set of audit_scale, e.g. DB=/tmp/audit.db}"
REPEATS="${REPEATS:-30}"
ADMIN=http://127.0.0.1:9090
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

# The data set lies months back: retention must not prune it while the pages are timed.
TESSERA__STORAGE__URL="sqlite://$DB" TESSERA__STORAGE__RETENTION=3650d \
  "$BIN" serve --config deploy/tessera.toml >"$work/log" 2>&1 &
server=$!
for _ in $(seq 200); do
  curl -fsS -o /dev/null "$ADMIN/console/sign-in" 2>/dev/null && break
  sleep 0.1
done

# Sign in as a browser does: the form's token and its cookie, then the session cookie.
jar="$work/cookies"
form="$(curl -fsS -c "$jar" "$ADMIN/console/sign-in")"
token="$(grep -o 'name="form_token" value="[^"]*"' <<<"$form" | sed 's/.*value="//; s/"$//')"
curl -fsS -b "$jar" -c "$jar" -o /dev/null \
  --data-urlencode "admin_token=dev-only-admin-token" --data-urlencode "form_token=$token" \
  "$ADMIN/console/sign-in"
csrf="$(curl -fsS -b "$jar" "$ADMIN/console/exchanges?limit=1" | grep -o 'name="csrf" value="[^"]*"' | head -n1 | sed 's/.*value="//; s/"$//')"
record="$(curl -fsS -b "$jar" "$ADMIN/console/exchanges?limit=1&outcome=granted" | grep -o 'href="/console/exchanges/[^"?]*"' | head -n1 | sed 's/href="//; s/"$//')"
denied="$(curl -fsS -b "$jar" "$ADMIN/console/exchanges?limit=1&outcome=denied" | grep -o 'href="/console/exchanges/[^"?]*"' | head -n1 | sed 's/href="//; s/"$//')"

time_page() {
  local what="$1"; shift
  local times=()
  for _ in $(seq "$REPEATS"); do
    times+=("$(curl -sS -b "$jar" -o /dev/null -w '%{http_code} %{time_total}' "$@")")
  done
  printf '%s\n' "${times[@]}" | awk -v what="$what" '
    { if ($1 >= 400) bad++; t[NR] = $2 * 1000 }
    END {
      n = asort(t)
      printf "%-44s median %7.2f ms   p90 %7.2f ms   max %7.2f ms%s\n", what, t[int((n + 1) / 2)],
        t[int(n * 0.9)], t[n], bad ? "   (" bad " answers were errors)" : ""
    }'
}

time_page "overview" "$ADMIN/console/overview"
time_page "overview, last day" "$ADMIN/console/overview?window=day"
time_page "search, no filter (50)" "$ADMIN/console/exchanges"
time_page "search by subject" "$ADMIN/console/exchanges?subject=user-4242"
time_page "search by client, one day" "$ADMIN/console/exchanges?client=svc-7&since=2026-06-10T00:00:00Z&until=2026-06-11T00:00:00Z"
time_page "search by error, denied" "$ADMIN/console/exchanges?outcome=denied&error=invalid_target"
time_page "search by audience" "$ADMIN/console/exchanges?audience=inventory-api"
time_page "search, 1000 a page" "$ADMIN/console/exchanges?limit=1000"
time_page "a granted record with its lineage" "$ADMIN$record"
time_page "a denied record" "$ADMIN$denied"
time_page "trust configuration" "$ADMIN/console/rules"
time_page "console activity" "$ADMIN/console/activity"
time_page "audit chain page" "$ADMIN/console/verify"
time_page "try a request (claims)" "$ADMIN/console/try" --data-urlencode "csrf=$csrf" \
  --data-urlencode "client=orders-svc" --data-urlencode "subject_from=claims" \
  --data-urlencode "issuer=dev-idp" --data-urlencode 'claims={"sub":"alice","scope":"inventory:read"}' \
  --data-urlencode "audience=inventory-api"
time_page "export of a subject's records, CSV" "$ADMIN/console/exchanges.csv?subject=user-4242"
