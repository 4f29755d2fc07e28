#!/usr/bin/env bash
# Builds the mediasoup C++ worker (mediasoup-worker) offline, from the npm
# tarball plus Debian 12 packages only, caches it per version, and installs it
# where the mediasoup Node package looks for it by default
# (node_modules/mediasoup/worker/out/Release/mediasoup-worker), so no
# MEDIASOUP_WORKER_BIN is needed at run time.
#
# Why: mediasoup's own postinstall downloads a prebuilt worker (GitHub) or
# builds one after fetching meson/ninja (PyPI) and its C++ dependencies
# (GitHub/wrapdb). None of those hosts are reachable here; only the npm
# registry and Debian's apt are. See README.md beside this file.
#
# Usage: sfu/worker-build/build.sh [--apt] [--force] [--no-install] [VERSION]
#   VERSION       mediasoup version (default: version of
#                 <repo>/node_modules/mediasoup/package.json)
#   --apt         first install missing Debian packages (apt-deps.sh)
#   --force       rebuild even if a valid cached binary exists
#   --no-install  only fill the cache; do not touch node_modules
# Environment:
#   MEDIASOUP_WORKER_CACHE_DIR  cache root (default <repo>/.cache/mediasoup-worker)
#   JOBS                        ninja parallelism (default: nproc)
#   KEEP_BUILD_DIR=1            keep the temporary build tree for debugging
# Output: prints the cached binary path on the last line of stdout.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

log() { echo "[worker-build] $*" >&2; }
die() { echo "[worker-build] ERROR: $*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; }

WANT_APT=0
FORCE=0
INSTALL=1
VERSION=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --apt) WANT_APT=1 ;;
    --force) FORCE=1 ;;
    --no-install) INSTALL=0 ;;
    -h|--help) usage; exit 0 ;;
    -*) usage; die "unknown option: $1" ;;
    *)
      [ -z "$VERSION" ] || die "more than one version given: '$VERSION' and '$1'"
      VERSION="$1" ;;
  esac
  shift
done

MS_PKG_DIR="$REPO_ROOT/node_modules/mediasoup"

# Reads "version" from a package.json without relying on jq.
pkg_version() {
  node -e 'process.stdout.write(String(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).version || ""))' "$1"
}

# --- 1. Which version ---------------------------------------------------------
if [ -z "$VERSION" ]; then
  if [ -f "$MS_PKG_DIR/package.json" ]; then
    command -v node >/dev/null || die "node is needed to read $MS_PKG_DIR/package.json (or pass the version as first argument)"
    VERSION="$(pkg_version "$MS_PKG_DIR/package.json")"
  else
    die "no mediasoup version given and $MS_PKG_DIR/package.json not found.
  Pass it explicitly, e.g.: $0 3.27.1   (or run 'npm ci' first)"
  fi
fi
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || die "not a mediasoup version: '$VERSION'"

CACHE_ROOT="${MEDIASOUP_WORKER_CACHE_DIR:-$REPO_ROOT/.cache/mediasoup-worker}"
CACHE_DIR="$CACHE_ROOT/$VERSION"
CACHED_BIN="$CACHE_DIR/mediasoup-worker"
STAMP_FILE="$CACHE_DIR/recipe.sha256"

# Bump when changing how build_worker() below transforms or compiles the
# sources (sed edits, meson/ninja options), so cached binaries get rebuilt.
BUILD_RECIPE_REV=1

# The cache key is the version plus a hash of the build recipe (the revision
# above, the compat subprojects/headers and the patches): changing any of them
# makes the next run rebuild instead of reusing a binary built the old way.
recipe_hash() {
  (
    cd "$SCRIPT_DIR"
    echo "mediasoup@$VERSION rev $BUILD_RECIPE_REV"
    find subprojects include patches -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  ) | sha256sum | cut -d' ' -f1
}
RECIPE="$(recipe_hash)"

# A worker started without MEDIASOUP_VERSION prints "you don't seem to be my
# real father!" and exits with 41 before touching anything: proof that the
# binary and all its shared libraries load, without needing the Node channel.
worker_runs() {
  local bin="$1" rc=0
  [ -x "$bin" ] || return 1
  env -u MEDIASOUP_VERSION "$bin" </dev/null >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 41 ]
}

cache_valid() {
  [ -f "$STAMP_FILE" ] && [ "$(cat "$STAMP_FILE")" = "$RECIPE" ] && worker_runs "$CACHED_BIN"
}

if [ "$WANT_APT" -eq 1 ]; then
  "$SCRIPT_DIR/apt-deps.sh"
fi

mkdir -p "$CACHE_DIR"

# Serialize concurrent runs for the same version (two shells, CI + dev).
if command -v flock >/dev/null; then
  exec 9>"$CACHE_DIR/.lock"
  flock 9
fi

# --- 2. Build unless cached ---------------------------------------------------
build_worker() {
  local tool
  for tool in npm tar patch meson ninja flatc pkg-config c++ cc; do
    command -v "$tool" >/dev/null || die "'$tool' not found; run: $SCRIPT_DIR/apt-deps.sh (or pass --apt)"
  done

  local started tmp src w
  started=$(date +%s)
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/mediasoup-worker-build.XXXXXX")"
  if [ "${KEEP_BUILD_DIR:-0}" = 1 ]; then
    log "keeping build tree: $tmp"
  else
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
  fi

  log "fetching mediasoup@$VERSION from the npm registry"
  (cd "$tmp" && npm pack "mediasoup@$VERSION" --silent >/dev/null)
  local tgzs=("$tmp"/mediasoup-*.tgz)
  [ -f "${tgzs[0]}" ] || die "npm pack mediasoup@$VERSION produced no tarball"
  local tgz="${tgzs[0]}"
  tar -xzf "$tgz" -C "$tmp"
  src="$tmp/package"
  w="$src/worker"
  [ -f "$w/meson.build" ] || die "tarball has no worker/meson.build"
  [ "$(pkg_version "$src/package.json")" = "$VERSION" ] || die "tarball version mismatch"

  log "applying BlockRTC compatibility layer"

  # (a) meson_version: upstream asks for >= 1.1.0; Debian 12 has 1.0.1, which
  # builds this worker fine. Lower the floor to what is installed.
  grep -Eq "meson_version *: *'>= *[0-9.]+'" "$w/meson.build" \
    || die "meson_version requirement not found in worker/meson.build (upstream layout changed?)"
  sed -i -E "s/(meson_version *: *')>= *[0-9.]+'/\1>= 1.0.0'/" "$w/meson.build"
  grep -Eq "meson_version *: *'>= 1.0.0'" "$w/meson.build" || die "failed to lower meson_version"

  # (b) Replace the downloading wraps with local subprojects over Debian libs.
  local name
  for name in libuv openssl libsrtp3 flatbuffers abseil-cpp; do
    grep -q "'$name'" "$w/meson.build" "$w/deps/libwebrtc/meson.build" \
      || die "worker meson files no longer use subproject '$name' (upstream layout changed?)"
  done
  grep -q "dependency('unordered_dense')" "$w/meson.build" \
    || die "worker/meson.build no longer uses dependency('unordered_dense') (upstream layout changed?)"
  rm -f "$w/subprojects/"{libuv,openssl,libsrtp3,flatbuffers,abseil-cpp,unordered-dense}.wrap
  rm -rf "$w/subprojects/packagefiles/ankerl-unordered-dense"
  cp -R "$SCRIPT_DIR/subprojects/." "$w/subprojects/"
  mkdir -p "$w/subprojects/libsrtp3/include" "$w/subprojects/unordered_dense/include/ankerl"
  cp "$SCRIPT_DIR/include/srtp3-compat.h" "$w/subprojects/libsrtp3/include/srtp.h"
  cp "$SCRIPT_DIR/include/ankerl/unordered_dense.h" "$w/subprojects/unordered_dense/include/ankerl/unordered_dense.h"

  # (c) Source patches (fail loudly if any hunk does not apply).
  local p
  for p in "$SCRIPT_DIR"/patches/*.patch; do
    [ -e "$p" ] || continue
    log "patch: $(basename "$p")"
    patch -d "$src" -p1 --forward --batch --fuzz=0 --no-backup-if-mismatch -r - <"$p" >&2 \
      || die "patch $(basename "$p") does not apply to mediasoup $VERSION"
  done
  grep -q '(operationType & BIO_CB_RETURN)' "$w/src/RTC/DtlsTransport.cpp" \
    || die "DtlsTransport BIO_CB_RETURN fix is not in place"

  log "meson setup ($(meson --version)), flatc $(flatc --version | awk '{print $NF}')"
  meson setup --buildtype release -Db_ndebug=true --wrap-mode=nodownload \
    "$tmp/build" "$w" >"$tmp/meson-setup.log" 2>&1 \
    || { tail -n 60 "$tmp/meson-setup.log" >&2; die "meson setup failed (full log: $tmp/meson-setup.log; use KEEP_BUILD_DIR=1)"; }

  local jobs="${JOBS:-$(nproc)}"
  log "ninja -j$jobs mediasoup-worker (about 8 min on 2 idle cores, longer under load)"
  ninja -C "$tmp/build" -j"$jobs" mediasoup-worker >"$tmp/ninja.log" 2>&1 \
    || { grep -E -A8 'error|FAILED' "$tmp/ninja.log" | head -n 80 >&2; die "compile failed (full log: $tmp/ninja.log; use KEEP_BUILD_DIR=1)"; }

  local built="$tmp/build/mediasoup-worker"
  worker_runs "$built" || die "built worker does not start (expected exit code 41 without MEDIASOUP_VERSION)"

  # Atomic publish: copy next to the destination, then rename over it.
  local part="$CACHE_DIR/.mediasoup-worker.part.$$"
  cp "$built" "$part"
  chmod 0755 "$part"
  mv -f "$part" "$CACHED_BIN"
  {
    echo "mediasoup $VERSION worker built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(( $(date +%s) - started ))s"
    echo "recipe $RECIPE"
    echo "meson $(meson --version), ninja $(ninja --version), $(c++ --version | head -n1)"
    dpkg-query -W -f='${Package} ${Version}\n' libuv1-dev libssl-dev libsrtp2-dev \
      libflatbuffers-dev flatbuffers-compiler libabsl-dev 2>/dev/null || true
  } >"$CACHE_DIR/BUILD-INFO.txt"
  echo "$RECIPE" >"$STAMP_FILE.part.$$"
  mv -f "$STAMP_FILE.part.$$" "$STAMP_FILE"
  log "built in $(( $(date +%s) - started ))s -> $CACHED_BIN"
}

if [ "$FORCE" -eq 0 ] && cache_valid; then
  log "using cached worker: $CACHED_BIN"
else
  build_worker
fi

# --- 3. Install into node_modules/mediasoup ----------------------------------
if [ "$INSTALL" -eq 1 ] && [ -d "$MS_PKG_DIR" ]; then
  installed_version="$(pkg_version "$MS_PKG_DIR/package.json" 2>/dev/null || true)"
  dest="$MS_PKG_DIR/worker/out/Release/mediasoup-worker"
  if [ "$installed_version" != "$VERSION" ]; then
    log "WARNING: node_modules/mediasoup is $installed_version, not $VERSION; not installing the worker there"
  elif [ -f "$dest" ] && cmp -s "$CACHED_BIN" "$dest"; then
    log "node_modules/mediasoup already has this worker"
  else
    mkdir -p "$(dirname "$dest")"
    cp "$CACHED_BIN" "$dest.part.$$"
    chmod 0755 "$dest.part.$$"
    mv -f "$dest.part.$$" "$dest"
    log "installed -> ${dest#"$REPO_ROOT"/}"
  fi
fi

echo "$CACHED_BIN"
