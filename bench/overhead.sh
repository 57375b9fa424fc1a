#!/usr/bin/env bash
# Gorgon's per-call overhead against the physical floor.
#
# The floor is bench/floor: the noop plugin called through a function
# pointer with two TSC reads and an HDR record, nothing else. The full path
# is `gorgon run` with the same plugin, timed from outside (whole-process
# wall time / operations, start-up included). Contenders alternate, and
# each figure is the median of $REPEAT rounds.
#
#   bench/overhead.sh            # N=50000000 REPEAT=3
#   N=10000000 REPEAT=5 bench/overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-50000000}
REPEAT=${REPEAT:-3}
CONFIGS=${CONFIGS:-"1x1 2x1 2x4"}

cargo build --release --quiet -p gorgon-cli -p gorgon-noop -p gorgon-bench-floor
GORGON=target/release/gorgon
NOOP=target/release/libgorgon_noop.so
FLOOR=target/release/gorgon-floor

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
now_ns() { date +%s%N; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "date:    $(date -u +%Y-%m-%dT%H:%MZ)"
echo "calls:   $N per run, median of $REPEAT rounds"
echo

declare -A samples
for round in $(seq "$REPEAT"); do
    out=$("$FLOOR" "$NOOP" "$N")
    samples[floor]+="$(sed -E 's/.*ns_per_op_tsc=([0-9.]+).*/\1/' <<<"$out") "
    samples[instant]+="$(sed -E 's/.*ns_per_op_instant=([0-9.]+).*/\1/' <<<"$out") "
    for config in $CONFIGS; do
        p=${config%x*}
        t=${config#*x}
        start=$(now_ns)
        "$GORGON" run --plugin "$NOOP" -n "$N" -p "$p" -t "$t" >/dev/null
        end=$(now_ns)
        samples[$config]+="$(awk -v d=$((end - start)) -v n="$N" 'BEGIN {printf "%.2f", d / n}') "
    done
done

floor=$(tr ' ' '\n' <<<"${samples[floor]}" | grep . | median)
instant=$(tr ' ' '\n' <<<"${samples[instant]}" | grep . | median)
printf '%-34s %12s %14s %10s\n' "contender" "ns/op" "M ops/s" "÷ floor"
printf '%-34s %12.1f %14.1f %10s\n' "floor: fn ptr + 2 TSC reads + HDR" "$floor" "$(awk -v f="$floor" 'BEGIN{print 1000/f}')" "1.00"
printf '%-34s %12.1f %14.1f %10.2f\n' "same loop with Instant::now()" "$instant" "$(awk -v f="$instant" 'BEGIN{print 1000/f}')" "$(awk -v a="$instant" -v f="$floor" 'BEGIN{print a/f}')"
for config in $CONFIGS; do
    v=$(tr ' ' '\n' <<<"${samples[$config]}" | grep . | median)
    printf '%-34s %12.1f %14.1f %10.2f\n' "gorgon run -p ${config%x*} -t ${config#*x}" "$v" "$(awk -v f="$v" 'BEGIN{print 1000/f}')" "$(awk -v a="$v" -v f="$floor" 'BEGIN{print a/f}')"
done
echo
echo "ns/op is wall time / operations; with several processes it falls below the"
echo "floor when they run on several cores in parallel (the floor is one core)."
