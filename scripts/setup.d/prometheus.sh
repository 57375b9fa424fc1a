#!/usr/bin/env bash
# The --metrics tests check the endpoint's output with promtool and let a
# Prometheus of their own (on loopback, started and stopped by the test)
# scrape a run: both come with Debian's `prometheus` package. Its service
# is not started: policy-rc.d refuses it for the length of the install.
# If the package cannot be installed, those tests skip and say why.
set -euo pipefail
command -v promtool >/dev/null && command -v prometheus >/dev/null && exit 0
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
fi
install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        prometheus >/dev/null 2>&1
}
install || { apt-get update -qq >/dev/null 2>&1 && install; } ||
    echo "prometheus.sh: could not install prometheus; the tests that need promtool skip"
