#!/usr/bin/env bash
# Installs what the console's browser tests drive, into DIR (default target/browser): Debian's
# Chromium and its WebDriver (/usr/bin/chromium, /usr/bin/chromedriver; apt-get, as root or
# through sudo) and, in DIR/node, the OpenID provider library (oidc-provider) at the version
# pinned beside this script. Needs node 18 or later with npm; reaches the Debian mirrors and
# the npm registry. Then: TESSERA_BROWSER_DIR=DIR cargo test --test api
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-$here/../../target/browser}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "install.sh: $tool is needed and not installed" >&2; exit 1; }
done
# oidc-provider 8 supports the LTS releases from 18 on; 9 would want 22.
node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)' ||
  { echo "install.sh: node 18 or later is needed (oidc-provider 8), found $(node --version)" >&2; exit 1; }

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install.sh: installing chromium needs root or sudo" >&2; exit 1; }
    sudo=(sudo)
  fi
  # Headless needs none of the recommended desktop packages (printing, notifications, upower).
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi
# The driver refuses a browser of another major version; Debian ships them from one source.
browser_major="$(/usr/bin/chromium --version 2>/dev/null | grep -o '[0-9]\+' | head -n1)"
driver_major="$(/usr/bin/chromedriver --version | grep -o '[0-9]\+' | head -n1)"
[ "$browser_major" = "$driver_major" ] ||
  { echo "install.sh: chromium $browser_major and chromedriver $driver_major differ" >&2; exit 1; }

mkdir -p "$dir/node"
if ! cmp -s "$here/package-lock.json" "$dir/node/package-lock.json" || [ ! -d "$dir/node/node_modules" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$dir/node/"
  (cd "$dir/node" && npm ci --no-audit --no-fund --loglevel=error)
fi
# For running the provider by hand (node DIR/node/provider.mjs): Node resolves oidc-provider
# from the script's own folder. The tests copy the current script afresh each run.
cp "$here/provider.mjs" "$dir/node/provider.mjs"
echo "browser test tools in $dir"
