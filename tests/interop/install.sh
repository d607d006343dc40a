#!/usr/bin/env bash
# Installs the interop suite's client libraries, at the versions pinned beside this script, into
# DIR (default target/interop): a Python virtual environment in DIR/venv, Node packages in
# DIR/node. Needs python3 (with venv and pip) and node 20 or later with npm; reaches PyPI and the
# npm registry. Then: TESSERA_INTEROP_DIR=DIR cargo test
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-$here/../../target/interop}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

for tool in python3 node npm; do
  command -v "$tool" >/dev/null || { echo "install.sh: $tool is needed and not installed" >&2; exit 1; }
done
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' ||
  { echo "install.sh: node 20 or later is needed (openid-client 6), found $(node --version)" >&2; exit 1; }

# A requirements change rebuilds the environment; otherwise pip only confirms what is there.
if [ ! -x "$dir/venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$dir/venv/requirements.txt"; then
  rm -rf "$dir/venv"
  python3 -m venv "$dir/venv"
  "$dir/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$dir/venv/requirements.txt"
fi
"$dir/venv/bin/pip" check --disable-pip-version-check >/dev/null

mkdir -p "$dir/node"
if ! cmp -s "$here/package-lock.json" "$dir/node/package-lock.json" || [ ! -d "$dir/node/node_modules" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$dir/node/"
  (cd "$dir/node" && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "interop libraries in $dir"
