#!/usr/bin/env bash
# Installs the Debian 12 packages needed to build (and run) the mediasoup C++
# worker from source. Idempotent: only calls apt-get when something is missing.
# Needs root (or sudo). Safe in CI: non-interactive.
set -euo pipefail

BUILD_PKGS=(g++ pkg-config patch meson ninja-build libuv1-dev libssl-dev
  libsrtp2-dev libflatbuffers-dev flatbuffers-compiler libabsl-dev)
RUNTIME_PKGS=(libuv1 libssl3 libsrtp2-1 libabsl20220623)

missing=()
for p in "${BUILD_PKGS[@]}" "${RUNTIME_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "apt-deps: all packages already installed"
  exit 0
fi

echo "apt-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "apt-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
