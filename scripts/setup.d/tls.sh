#!/usr/bin/env bash
# The HTTP plugin's https tests (tests/e2e/http/tls.rs) make a CA and a
# server certificate with the openssl command and serve them with Python's
# ssl module (python3.sh installs Python).
set -euo pipefail
command -v openssl >/dev/null && exit 0
apt-get install -y -qq openssl >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq openssl >/dev/null; }
