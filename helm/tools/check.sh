#!/usr/bin/env bash
# Lints and renders the chart for the default values and every value set in helm/ci/*.yaml,
# and checks that values.schema.json rejects a bad value. Exits non-zero on any failure.
# Usage: helm/tools/check.sh
set -euo pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HELM_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"
CHART="$HELM_DIR/blockrtc"
HELM="$("$SCRIPT_DIR/install-helm.sh" | tail -n 1)"
out="$(mktemp -d "${TMPDIR:-/tmp}/blockrtc-helm-check.XXXXXX")"
trap 'rm -rf "$out"' EXIT

failures=0
check() {
  local label="$1"; shift
  if "$HELM" lint --strict "$CHART" "$@" >"$out/lint.log" 2>&1; then
    echo "ok   lint      $label"
  else
    echo "FAIL lint      $label"; cat "$out/lint.log"; failures=$((failures + 1))
  fi
  if "$HELM" template blockrtc "$CHART" --namespace blockrtc "$@" >"$out/render.yaml" 2>"$out/render.log"; then
    echo "ok   template  $label ($(grep -c '^kind:' "$out/render.yaml") objects)"
  else
    echo "FAIL template  $label"; cat "$out/render.log"; failures=$((failures + 1))
  fi
}

check "default values (trial)"
for f in "$HELM_DIR"/ci/*.yaml; do
  check "ci/$(basename "$f")" -f "$f"
done

# The schema must turn a bad value into a clear install-time error.
if "$HELM" template blockrtc "$CHART" --set sfu.workers=many >/dev/null 2>"$out/bad.log"; then
  echo "FAIL schema     sfu.workers=many was accepted"; failures=$((failures + 1))
elif grep -q "/sfu/workers" "$out/bad.log"; then
  echo "ok   schema     sfu.workers=many rejected: $(grep '/sfu/workers' "$out/bad.log" | head -n 1)"
else
  echo "FAIL schema     unexpected error for sfu.workers=many:"; cat "$out/bad.log"; failures=$((failures + 1))
fi

if [ "$failures" -gt 0 ]; then
  echo "helm check: $failures failure(s)"
  exit 1
fi
echo "helm check: all passed"
