#!/usr/bin/env bash
# What a cluster run costs: two sshd "nodes" on loopback addresses of this
# machine, each with its own user, and gorgon run locally, over the two
# nodes, and over both plus --local. Prints the login and round-trip times
# of `cluster check`, the time `cluster setup` takes to push gorgon, the
# wall time of each run (median of $REPEAT), and the remote commands (SSH
# sessions) each run opened per node.
#
# The nodes share this machine's cores, so this measures the overhead of
# going through SSH (login, probe, upload, worker start), not the capacity
# of real nodes. Needs root (sshd switches users) and openssh-server
# (scripts/setup.d/sshd.sh).
#
#   bench/cluster.sh                       # N=20000 REPEAT=5 P=2 T=2
#   N=100000 PLUGIN=gorgon_noop bench/cluster.sh
source "$(dirname "$0")/lib.sh"

N=${N:-20000}
REPEAT=${REPEAT:-5}
P=${P:-2}
T=${T:-2}
PLUGIN=${PLUGIN:-gorgon_hash}

build_release gorgon-hash gorgon-noop
GORGON=$PWD/target/release/gorgon
LIB=$PWD/target/release/lib$PLUGIN.so

work=$(mktemp -d /tmp/gorgon-bench-cluster.XXXXXX)
chmod 755 "$work"
cleanup() {
    for pidfile in "$work"/*/sshd.pid; do
        [ -e "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p /run/sshd

now_ms() {
    local ns
    mark ns
    echo $((ns / 1000000))
}

ssh-keygen -q -t ed25519 -N '' -f "$work/client_key"
: >"$work/known_hosts"
: >"$work/ssh_config"
cat >"$work/gorgon.toml" <<EOF
[ssh]
known_hosts = "known_hosts"
config = "ssh_config"
control_dir = "ctl"
EOF

nodes="a b"
index=0
for node in $nodes; do
    index=$((index + 1))
    user=gorgon-bench-$node
    id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"
    usermod --password '*' "$user"
    dir=$work/$node
    mkdir -p "$dir"
    chmod 755 "$dir"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
    cp "$work/client_key.pub" "$dir/authorized_keys"
    chmod 644 "$dir/authorized_keys"
    address=127.0.20.$((index + 1))
    port=$((20000 + RANDOM % 20000))
    cat >"$dir/sshd_config" <<EOF
Port $port
ListenAddress $address
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
AllowUsers $user
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
MaxSessions 200
MaxStartups 200:30:400
LogLevel VERBOSE
EOF
    /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
    echo "[$address]:$port $(cut -d' ' -f1,2 "$dir/host_key.pub")" >>"$work/known_hosts"
    cat >>"$work/gorgon.toml" <<EOF

[nodes.$node]
host = "$address"
port = $port
user = "$user"
key = "client_key"
EOF
    rm -rf "/home/$user/.local/bin/gorgon" "/home/$user/.cache/gorgon"
done
sleep 0.2

g() { "$GORGON" --config "$work/gorgon.toml" "$@"; }
sessions() { cat "$work"/*/sshd.log | grep -c 'Starting session:' || true; }

echo "machine: $(machine_line)"
echo "date:    $(date -u +%Y-%m-%dT%H:%MZ)"
echo "gorgon:  $(du -h "$GORGON" | cut -f1) release binary; plugin $(basename "$LIB")"
echo

start=$(now_ms)
g cluster setup
echo "cluster setup (push gorgon to 2 nodes in parallel): $(($(now_ms) - start)) ms"
echo
g cluster check --plugin "$LIB"
echo

printf '%-34s %10s %16s\n' "run ($N calls, $P x $T per node)" "wall ms" "sessions/node"
for shape in "local" "--cluster" "--cluster --local"; do
    times=""
    before=$(sessions)
    for _ in $(seq "$REPEAT"); do
        start=$(now_ms)
        if [ "$shape" = local ]; then
            g run --plugin "$LIB" -n "$N" -p "$P" -t "$T" >/dev/null 2>&1
        else
            # shellcheck disable=SC2086
            g run --plugin "$LIB" -n "$N" -p "$P" -t "$T" $shape >/dev/null 2>&1
        fi
        times+="$(($(now_ms) - start)) "
    done
    per_run=$(awk -v a="$before" -v b="$(sessions)" -v r="$REPEAT" 'BEGIN {printf "%.1f", (b - a) / r / 2}')
    printf '%-34s %10s %16s\n' "$shape" "$(median <<<"$times")" "$per_run"
done
echo
echo "The first cluster run also uploads the plugin (one more session per node);"
echo "sessions/node averages over $REPEAT runs. Wall time includes connecting."
