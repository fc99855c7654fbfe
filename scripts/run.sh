#!/usr/bin/env bash
# Set up (first run only takes long) and start ser-live; arguments go to ser-live.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
exec .venv/bin/ser-live "$@"
