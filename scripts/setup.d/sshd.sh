#!/usr/bin/env bash
# The cluster tests (tests/e2e/cluster.rs) start their own sshd instances on
# loopback addresses; they need the OpenSSH server binary, the client (ssh,
# ssh-keygen) that gorgon itself drives, and pgrep/pkill (procps) to find
# and kill a node user's processes. Installing the package does not start
# the system sshd; nothing here configures or starts it.
set -euo pipefail

if [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null && command -v ssh-keygen >/dev/null \
    && command -v pkill >/dev/null && command -v useradd >/dev/null; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "sshd.sh: openssh-server is missing and installing it needs root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends openssh-server openssh-client procps passwd >/dev/null
