#!/usr/bin/env bash
# Gorgon against the original Python Gorgon 0.3.4 on the seed's operations
# (hash, and a no-op) at the seed's four configurations. Both are timed from
# the start of the run to the end of the last call, start-up included
# (the original's go() spawns its processes inside the timed span; ours is
# timed from outside the process).
#
#   bench/vs-original.sh          # HASH_N=4000 NOOP_N=200000 REPEAT=3
set -euo pipefail
cd "$(dirname "$0")/.."

HASH_N=${HASH_N:-4000}
NOOP_N=${NOOP_N:-200000}
REPEAT=${REPEAT:-3}
CONFIGS=${CONFIGS:-"1x1 2x1 2x4 4x10"}
VENV=${VENV:-target/bench-venv}

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet gorgon==0.3.4
fi
cargo build --release --quiet -p gorgon-cli -p gorgon-noop -p gorgon-hash
GORGON=target/release/gorgon

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "date:    $(date -u +%Y-%m-%dT%H:%MZ); median of $REPEAT rounds, contenders alternating"
echo
printf '%-6s %-6s %10s %16s %16s %10s\n' op config calls "original ops/s" "gorgon ops/s" ratio
for op in hash noop; do
    n=$HASH_N; [ "$op" = noop ] && n=$NOOP_N
    declare -A orig=() ours=()
    for round in $(seq "$REPEAT"); do
        while read -r config rate _; do
            orig[$config]+="$rate "
        done < <("$VENV/bin/python" bench/original/run_original.py "$op" "$n" $CONFIGS)
        for config in $CONFIGS; do
            start=$(date +%s%N)
            "$GORGON" run --plugin "target/release/libgorgon_$op.so" -n "$n" \
                -p "${config%x*}" -t "${config#*x}" >/dev/null
            end=$(date +%s%N)
            ours[$config]+="$(awk -v n="$n" -v d=$((end - start)) 'BEGIN {printf "%.1f", n / (d / 1e9)}') "
        done
    done
    for config in $CONFIGS; do
        o=$(tr ' ' '\n' <<<"${orig[$config]}" | grep . | median)
        g=$(tr ' ' '\n' <<<"${ours[$config]}" | grep . | median)
        printf '%-6s %-6s %10s %16.0f %16.0f %9.0fx\n' "$op" "$config" "$n" "$o" "$g" \
            "$(awk -v g="$g" -v o="$o" 'BEGIN {print g / o}')"
    done
    unset orig ours
done
