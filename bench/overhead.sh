#!/usr/bin/env bash
# Section 1: gorgon's cost per operation against the physical floor.
#
# The floor is bench/floor (`gorgon-floor`): the noop plugin called through
# a function pointer, two TSC reads and an HDR record in a bare loop,
# nothing else. The full path is `gorgon run` with the same plugin, timed
# from outside: whole-process wall time / operations, start-up included,
# and (user + sys CPU of gorgon and its workers) / operations. With several
# processes the wall time per operation falls below the floor (they share
# the work across cores); the CPU time per operation does not.
#
# Scaling: ops/s of `-p P -t 1` for P = 1 .. cores, against the same number
# of floor loops run side by side (what the machine itself gives: on a VM
# two "cores" need not be two whole cores).
#
# Contenders alternate within each round; figures are medians of $REPEAT.
#
#   bench/overhead.sh                  # N=50000000 REPEAT=3
#   N=10000000 REPEAT=5 bench/overhead.sh
source "$(dirname "$0")/lib.sh"

N=${N:-50000000}
REPEAT=${REPEAT:-3}
CONFIGS=${CONFIGS:-"1x1 2x1 2x4"}
CORES=$(nproc)
NOOP=$RELEASE/libgorgon_noop.so
FLOOR=${FLOOR:-$RELEASE/gorgon-floor}

build_release gorgon-noop gorgon-bench-floor
section "overhead: noop through gorgon run vs the floor, $N calls, median of $REPEAT"

scaling=""
for p in $(seq 1 "$CORES"); do scaling+=" ${p}x1"; done
configs=$(echo "$CONFIGS $scaling" | tr ' ' '\n' | grep . | awk '!seen[$0]++' | tr '\n' ' ')

declare -A wall cpu
for round in $(seq "$REPEAT"); do
    out=$("$FLOOR" "$NOOP" "$N")
    wall[floor]+="$(sed -E 's/.*ns_per_op_tsc=([0-9.]+).*/\1/' <<<"$out") "
    wall[instant]+="$(sed -E 's/.*ns_per_op_instant=([0-9.]+).*/\1/' <<<"$out") "
    # P floor loops side by side, each doing N/P calls: the machine's own
    # scaling.
    for p in $(seq 2 "$CORES"); do
        mark start
        pids=()
        for _ in $(seq "$p"); do
            "$FLOOR" "$NOOP" $((N / p)) tsc >/dev/null &
            pids+=($!)
        done
        for pid in "${pids[@]}"; do wait "$pid"; done
        mark end
        wall[floor-x$p]+="$(calc 'd / n' d=$((end - start)) n="$N") "
    done
    for config in $configs; do
        timed "$GORGON" run --plugin "$NOOP" -n "$N" -p "${config%x*}" -t "${config#*x}"
        wall[$config]+="$(calc 'd / n' d="$WALL_NS" n="$N") "
        cpu[$config]+="$(calc 'c / n' c="$CPU_NS" n="$N") "
    done
done

m() { median <<<"$1"; }
floor=$(m "${wall[floor]}")
instant=$(m "${wall[instant]}")
printf '%-40s %10s %10s %10s %10s\n' contender "wall ns/op" "÷ floor" "CPU ns/op" "÷ floor"
printf '%-40s %10.1f %10.2f\n' "floor: fn ptr + 2 TSC reads + HDR" "$floor" 1
printf '%-40s %10.1f %10.2f\n' "floor with Instant::now() instead" "$instant" "$(calc 'a / f' a="$instant" f="$floor")"
for config in $configs; do
    w=$(m "${wall[$config]}")
    c=$(m "${cpu[$config]}")
    printf '%-40s %10.1f %10.2f %10.1f %10.2f\n' "gorgon run -p ${config%x*} -t ${config#*x}" \
        "$w" "$(calc 'w / f' w="$w" f="$floor")" "$c" "$(calc 'c / f' c="$c" f="$floor")"
done
result overhead "floor ns/op (fn ptr + 2 TSC + HDR record)" "$floor" "$(printf '%.1f ns' "$floor")" -
for config in $CONFIGS; do
    label="-p ${config%x*} -t ${config#*x}"
    w=$(calc 'w / f' w="$(m "${wall[$config]}")" f="$floor")
    c=$(calc 'c / f' c="$(m "${cpu[$config]}")" f="$floor")
    result overhead "gorgon $label: wall ns/op / floor" "$w" "$(printf '%.2fx' "$w")" "<=2"
    result overhead "gorgon $label: CPU ns/op / floor" "$c" "$(printf '%.2fx' "$c")" "<=2"
done

echo
printf '%-12s %16s %12s %22s %12s\n' processes "gorgon M ops/s" "× 1 process" "floor loops M ops/s" "× 1 loop"
base=$(calc '1000 / w' w="$(m "${wall[1x1]}")")
for p in $(seq 1 "$CORES"); do
    g=$(calc '1000 / w' w="$(m "${wall[${p}x1]}")")
    if [ "$p" = 1 ]; then f=$(calc '1000 / w' w="$floor"); else f=$(calc '1000 / w' w="$(m "${wall[floor-x$p]}")"); fi
    printf '%-12s %16.1f %12.2f %22.1f %12.2f\n' "$p" "$g" "$(calc 'g / b' g="$g" b="$base")" \
        "$f" "$(calc 'f / b' f="$f" b="$(calc '1000 / w' w="$floor")")"
done
if [ "$CORES" -gt 1 ]; then
    g=$(calc '1000 / w / b' w="$(m "${wall[${CORES}x1]}")" b="$base")
    f=$(calc 'one / w' one="$floor" w="$(m "${wall[floor-x$CORES]}")")
    result overhead "ops/s with -p $CORES -t 1 / -p 1 -t 1 (ideal $CORES)" "$g" "$(printf '%.2fx' "$g")" -
    result overhead "  same for $CORES floor loops side by side" "$f" "$(printf '%.2fx' "$f")" -
    e=$(calc 'g / f' g="$g" f="$f")
    result overhead "gorgon's scaling / the floor loops' scaling" "$e" "$(printf '%.2f' "$e")" ">=0.9"
fi
finish_section
