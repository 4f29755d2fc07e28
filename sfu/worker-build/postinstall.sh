#!/usr/bin/env bash
# Runs from `npm install` / `npm ci` (the root package's postinstall): makes sure the
# mediasoup worker binary is in node_modules/mediasoup/worker/out/Release, so nothing needs
# to be set at run time.
#   1. MEDIASOUP_WORKER_BIN set          → mediasoup uses that binary; nothing to do.
#   2. a cached build for this version  → copied in (seconds).
#   3. GitHub reachable                  → mediasoup's own postinstall (prebuilt download).
#   4. otherwise                         → offline build from the npm tarball + Debian
#                                          packages (build.sh, ~8 min on 2 cores), cached.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
MS="$ROOT/node_modules/mediasoup"
[ -d "$MS" ] || exit 0
if [ -n "${MEDIASOUP_WORKER_BIN:-}" ]; then
  echo "[worker] MEDIASOUP_WORKER_BIN is set; using $MEDIASOUP_WORKER_BIN"
  exit 0
fi
BIN="$MS/worker/out/Release/mediasoup-worker"
VERSION="$(node -p "require('$MS/package.json').version")"
CACHED="${MEDIASOUP_WORKER_CACHE_DIR:-$ROOT/.cache/mediasoup-worker}/$VERSION/mediasoup-worker"

if [ -x "$CACHED" ]; then
  exec bash "$HERE/build.sh" "$VERSION"
fi
if [ "${BLOCKRTC_OFFLINE_WORKER:-}" != "1" ] && command -v curl >/dev/null && curl -sfI --max-time 5 https://github.com >/dev/null 2>&1; then
  echo "[worker] fetching mediasoup's prebuilt worker"
  if (cd "$MS" && node npm-scripts.mjs postinstall) && [ -x "$BIN" ]; then exit 0; fi
  echo "[worker] upstream install failed; building offline"
fi
if [ "$(id -u)" -eq 0 ]; then
  bash "$HERE/apt-deps.sh"
elif ! dpkg-query -W -f='${Status}' meson libsrtp2-dev libabsl-dev 2>/dev/null | grep -qv 'not-installed'; then
  echo "[worker] build dependencies may be missing; if the build fails run: sudo $HERE/apt-deps.sh" >&2
fi
exec bash "$HERE/build.sh" "$VERSION"
