#!/usr/bin/env bash
# The tutorial's example REST API (examples/rest-api.py) is a Python
# standard-library script; a test runs the tutorial's flow against it.
set -euo pipefail
command -v python3 >/dev/null && exit 0
apt-get install -y -qq python3 >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq python3 >/dev/null; }
