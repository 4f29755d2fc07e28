#!/usr/bin/env bash
# Runs coturn locally with a configuration generated from the same TURN_* variables the
# signaling nodes read. Local use only: loopback peers are allowed (--test).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TURN_SECRET:?set TURN_SECRET (the same value the signaling nodes use)}"
export TURN_LISTEN_IP="${TURN_LISTEN_IP:-127.0.0.1}"
mkdir -p .cache/turn
node bin/blockrtc.mjs turn-config --test > .cache/turn/turnserver.conf
exec turnserver -c .cache/turn/turnserver.conf --log-file=stdout
