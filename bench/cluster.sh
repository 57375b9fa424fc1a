#!/usr/bin/env bash
# What a cluster costs as it grows: up to 32 sshd "nodes" on loopback
# addresses of this machine, each with its own user, and for 1, 4, 8, 16
# and 32 of them:
#
# - `cluster setup` (push this gorgon to every node): wall time, and the
#   gorgon process's own CPU and peak memory;
# - a run of the no-op plugin (N calls per node, 1 × 1 per node): wall
#   time (median of $REPEAT), the parent's own CPU per node, its peak
#   memory, and the remote commands (SSH sessions) per node;
# - the anchor, plain `ssh` doing the same pattern: one login and one
#   command per node in parallel (`cat > file` of the gorgon binary for
#   setup, `gorgon --version` for a run), with the CPU and memory of all
#   those ssh processes together.
#
# "Own" CPU and memory are gorgon's alone, read from /proc/PID while it
# runs and from its zombie (the ssh processes it starts are not in them;
# the anchor's figures are all its ssh processes').
#
# The nodes share this machine's cores, so this measures the overhead of
# going through SSH, not the capacity of real nodes. Needs root (sshd
# switches users) and openssh-server (scripts/setup.d/sshd.sh). Every user,
# sshd and file it makes is removed at the end, even when interrupted.
#
#   bench/cluster.sh                              # NODES="1 4 8 16 32" REPEAT=3
#   NODES="1 8" REPEAT=1 bench/cluster.sh > /tmp/cluster.txt
source "$(dirname "$0")/lib.sh"

NODES=${NODES:-1 4 8 16 32}
REPEAT=${REPEAT:-3}
N_PER_NODE=${N_PER_NODE:-2000}
PLUGIN=${PLUGIN:-gorgon_noop}

build_release gorgon-hash gorgon-noop
GORGON=$(realpath "$GORGON")
LIB=$PWD/$RELEASE/lib$PLUGIN.so
MAX=$(tr ' ' '\n' <<<"$NODES" | sort -n | tail -1)

work=$(mktemp -d /tmp/gorgon-bench-cluster.XXXXXX)
chmod 755 "$work"
users=()
cleanup() {
    for pidfile in "$work"/*/sshd.pid; do
        [ -e "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    for user in "${users[@]}"; do
        pkill -KILL -u "$user" 2>/dev/null || true
    done
    sleep 0.3
    for user in "${users[@]}"; do
        userdel --remove "$user" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p /run/sshd

# `measure own CMD…` prints "wall_ms cpu_ms peak_kib" of CMD's process
# alone; `measure fan` runs every shell command line of stdin at once and
# prints the same for all of them together (CPU and peak memory summed).
cat >"$work/measure.py" <<'EOF'
import os, subprocess, sys, time

def own(argv):
    tick = os.sysconf("SC_CLK_TCK")
    start = time.monotonic()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu, peak = 0, 0
    while True:
        try:
            with open(f"/proc/{child.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            # utime and stime, this process only; a zombie keeps its final ones.
            cpu = (int(fields[11]) + int(fields[12])) * 1000 / tick
            if fields[0] == "Z":
                break
            with open(f"/proc/{child.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
        if child.poll() is not None:
            break
        time.sleep(0.002)
    child.wait()
    wall = (time.monotonic() - start) * 1000
    print(f"{wall:.0f} {cpu:.0f} {peak} {child.returncode}")

def fan(lines):
    start = time.monotonic()
    children = [subprocess.Popen(l, shell=True, stdout=subprocess.DEVNULL) for l in lines if l.strip()]
    cpu, peak, code = 0.0, 0, 0
    for child in children:
        _, status, usage = os.wait4(child.pid, 0)
        cpu += (usage.ru_utime + usage.ru_stime) * 1000
        peak += usage.ru_maxrss
        code = code or os.waitstatus_to_exitcode(status)
    wall = (time.monotonic() - start) * 1000
    print(f"{wall:.0f} {cpu:.0f} {peak} {code}")

if sys.argv[1] == "own":
    own(sys.argv[2:])
else:
    fan(sys.stdin.read().splitlines())
EOF
measure() { python3 "$work/measure.py" "$@"; }

ssh-keygen -q -t ed25519 -N '' -f "$work/client_key"
: >"$work/known_hosts"
: >"$work/ssh_config"
cat >"$work/gorgon.toml" <<EOF
[ssh]
known_hosts = "known_hosts"
config = "ssh_config"
control_dir = "ctl"
EOF

declare -A address port
for i in $(seq "$MAX"); do
    node=n$i
    user=gorgon-bench-$node
    users+=("$user")
    id -u "$user" >/dev/null 2>&1 && userdel --remove "$user" 2>/dev/null
    useradd --create-home --shell /bin/sh "$user"
    usermod --password '*' "$user"
    dir=$work/$node
    mkdir -p "$dir"
    chmod 755 "$dir"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
    cp "$work/client_key.pub" "$dir/authorized_keys"
    chmod 644 "$dir/authorized_keys"
    address[$node]=127.0.21.$((i + 1))
    port[$node]=$((20000 + RANDOM % 20000))
    cat >"$dir/sshd_config" <<EOF
Port ${port[$node]}
ListenAddress ${address[$node]}
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
AllowUsers $user
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
PrintMotd no
MaxSessions 200
MaxStartups 200:30:400
LogLevel VERBOSE
EOF
    /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
    echo "[${address[$node]}]:${port[$node]} $(cut -d' ' -f1,2 "$dir/host_key.pub")" >>"$work/known_hosts"
    cat >>"$work/gorgon.toml" <<EOF

[nodes.$node]
host = "${address[$node]}"
port = ${port[$node]}
user = "$user"
key = "client_key"
EOF
done
sleep 0.3

g() { "$GORGON" --config "$work/gorgon.toml" "$@"; }
names() { seq "$1" | sed 's/^/n/' | paste -sd, -; }
sessions() { cat "$work"/n*/sshd.log | grep -c 'Starting session:' || true; }
ssh_to() {
    local node=$1
    shift
    # The remote command is quoted: its redirections happen on the node.
    printf "ssh -F %s -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -p %s gorgon-bench-%s@%s '%s'" \
        "$work/ssh_config" "$work/client_key" "$work/known_hosts" "${port[$node]}" "$node" "${address[$node]}" "$*"
}

echo "machine: $(machine_line)"
echo "gorgon:  $(du -h "$GORGON" | cut -f1) release binary; plugin $(basename "$LIB"), $N_PER_NODE calls per node, 1 x 1 per node"
echo "open files: soft $(ulimit -Sn), hard $(ulimit -Hn)"
echo

printf '%-6s | %-28s | %-28s | %-38s | %-24s\n' "" "cluster setup" "ssh: cat > file (anchor)" "run (median of $REPEAT)" "ssh: login + command"
printf '%-6s | %8s %8s %10s | %8s %8s %10s | %8s %8s %8s %10s | %8s %8s %6s\n' \
    nodes "wall ms" "cpu ms" "peak MiB" "wall ms" "cpu ms" "sum MiB" \
    "wall ms" "cpu/node" "sess/nd" "peak MiB" "wall ms" "cpu ms" "ratio"
for k in $NODES; do
    list=$(names "$k")
    for i in $(seq "$k"); do
        rm -rf "/home/gorgon-bench-n$i/.local/bin/gorgon" "/home/gorgon-bench-n$i/.cache/gorgon"
    done
    read -r s_wall s_cpu s_peak s_code < <(measure own "$GORGON" --config "$work/gorgon.toml" cluster setup ${list//,/ })
    [ "$s_code" = 0 ] || { echo "cluster setup on $k nodes failed" >&2; g cluster setup ${list//,/ } >&2 || true; exit 1; }
    read -r a_wall a_cpu a_peak _ < <(for i in $(seq "$k"); do
        echo "$(ssh_to "n$i" 'cat > .gorgon-anchor') < $GORGON"
    done | measure fan)
    # The first run uploads the plugin; the measured ones find it there.
    g run --plugin "$LIB" --nodes "$list" -n $((k * N_PER_NODE)) >/dev/null 2>&1
    walls="" cpus="" peaks="" before=$(sessions)
    for _ in $(seq "$REPEAT"); do
        read -r r_wall r_cpu r_peak r_code < <(measure own "$GORGON" --config "$work/gorgon.toml" \
            run --plugin "$LIB" --nodes "$list" -n $((k * N_PER_NODE)))
        [ "$r_code" = 0 ] || { echo "the run on $k nodes failed (exit $r_code)" >&2; exit 1; }
        walls+="$r_wall " cpus+="$r_cpu " peaks+="$r_peak "
    done
    per_node_sessions=$(calc '(b - a) / r / k' a="$before" b="$(sessions)" r="$REPEAT" k="$k")
    anchor_walls="" anchor_cpus=""
    for _ in $(seq "$REPEAT"); do
        read -r b_wall b_cpu _ _ < <(for i in $(seq "$k"); do
            ssh_to "n$i" '.local/bin/gorgon --version'
            echo
        done | measure fan)
        anchor_walls+="$b_wall " anchor_cpus+="$b_cpu "
    done
    r_wall=$(median <<<"$walls")
    b_wall=$(median <<<"$anchor_walls")
    cpu_per_node=$(calc 'c / k' c="$(median <<<"$cpus")" k="$k")
    ratio=$(calc 'r / b' r="$r_wall" b="$b_wall")
    printf '%-6s | %8s %8s %10.0f | %8s %8s %10.0f | %8s %8.2f %8s %10.0f | %8s %8s %6.2f\n' \
        "$k" "$s_wall" "$s_cpu" "$(calc 'p / 1024' p="$s_peak")" "$a_wall" "$a_cpu" "$(calc 'p / 1024' p="$a_peak")" \
        "$r_wall" "$cpu_per_node" "$per_node_sessions" "$(calc 'p / 1024' p="$(median <<<"$peaks")")" \
        "$b_wall" "$(median <<<"$anchor_cpus")" "$ratio"
    if [ "$k" = "$MAX" ]; then
        result cluster "setup: gorgon's peak memory, $k nodes (MiB)" "$(calc 'p / 1024' p="$s_peak")" "$(calc 'p / 1024' p="$s_peak") MiB" "<=200"
        result cluster "run: gorgon's own CPU per node, $k nodes (ms)" "$cpu_per_node" "$cpu_per_node ms" "<=5"
        result cluster "run wall / plain ssh login + command, $k nodes" "$ratio" "${ratio}x" "<=1.2"
    fi
done
echo
echo "cpu ms: user + system time of gorgon's own process (setup, run) or of"
echo "every ssh process together (anchors); the ssh processes gorgon starts"
echo "(its master connections) are not in its figure. sess/nd: remote"
echo "commands per node per run (sshd's \"Starting session\")."
finish_section
