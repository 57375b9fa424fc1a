#!/usr/bin/env bash
# Section 5: start-up, the time from launching `gorgon run` to its first
# operation, with $P worker processes of one thread each.
#
# Definition: the script reads the wall clock (bash's $EPOCHREALTIME, no
# process started to read it) just before it starts `gorgon run`; the
# testkit plugin, given `--set first_call_file=F`, appends the wall-clock
# time (CLOCK_REALTIME, ns) at which each worker process's first call
# began. "first operation" is the earliest of those minus the launch time;
# "every worker running" the latest. Both include everything a user waits
# for: exec of gorgon, config and plugin checks, starting the workers,
# loading the plugin in each, the threads' setup, and the `go` that starts
# them all together (no worker starts before every one is ready).
#
# For scale, the same is measured for:
# - a floor: the shell starting $P copies of the gorgon binary
#   (`gorgon --version`) side by side and each one running to its end, the
#   least that starting $P processes of this executable costs;
# - the original Python Gorgon 0.3.4 (`python run_original.py`, a no-op
#   noting its first call per process), also from the launch of its command.
#
#   bench/startup.sh            # P=8 REPEAT=11
source "$(dirname "$0")/lib.sh"

P=${P:-8}
REPEAT=${REPEAT:-11}
TESTKIT=${TESTKIT:-$RELEASE/libgorgon_test_testkit.so}

need_original
build_release gorgon-test-testkit
section "start-up: launch to first operation with $P worker processes, median of $REPEAT"

work=$(mktemp -d /tmp/gorgon-bench-startup.XXXXXX)
trap 'rm -rf "$work"' EXIT

# `since LAUNCH_NS FILE`: the earliest and the latest time in FILE, in ms
# after LAUNCH_NS, and how many processes wrote to it.
since() {
    awk -v t0="$1" '{ ms = ($1 - t0) / 1e6; if (NR == 1 || ms < lo) lo = ms; if (NR == 1 || ms > hi) hi = ms }
        END { printf "%.3f %.3f %d\n", lo, hi, NR }' "$2"
}

declare -A first all
for _ in $(seq "$REPEAT"); do
    # Floor: P processes of the same executable, started side by side.
    mark start
    pids=()
    for _ in $(seq "$P"); do
        "$GORGON" --version >/dev/null &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
    mark end
    first[floor]+="$(calc '(e - s) / 1e6' e="$end" s="$start") "

    rm -f "$work/gorgon.txt"
    mark start
    "$GORGON" run --plugin "$TESTKIT" -n "$P" -p "$P" -t 1 -q \
        --set "first_call_file=$work/gorgon.txt" >/dev/null
    read -r lo hi count < <(since "$start" "$work/gorgon.txt")
    [ "$count" = "$P" ] || { echo "expected $P first calls, got $count" >&2; exit 1; }
    first[gorgon]+="$lo "
    all[gorgon]+="$hi "

    rm -f "$work/original.txt"
    mark start
    FIRST_CALL_FILE=$work/original.txt "$VENV/bin/python" bench/original/run_original.py \
        first_call "$P" "${P}x1" >/dev/null
    read -r lo hi count < <(since "$start" "$work/original.txt")
    first[original]+="$lo "
    all[original]+="$hi "
done

floor=$(median <<<"${first[floor]}")
g_first=$(median <<<"${first[gorgon]}")
g_all=$(median <<<"${all[gorgon]}")
o_first=$(median <<<"${first[original]}")
o_all=$(median <<<"${all[original]}")
printf '%-46s %12s %18s\n' "" "first op, ms" "every worker, ms"
printf '%-46s %12.1f %18s\n' "floor: $P × \`gorgon --version\` side by side" "$floor" "(all ended)"
printf '%-46s %12.1f %18.1f\n' "gorgon run -p $P -t 1" "$g_first" "$g_all"
printf '%-46s %12.1f %18.1f\n' "original Gorgon 0.3.4, $P processes" "$o_first" "$o_all"

result startup "gorgon: launch to first operation, -p $P" "$g_first" "$(printf '%.1f ms' "$g_first")" -
result startup "  floor: $P x gorgon --version side by side" "$floor" "$(printf '%.1f ms' "$floor")" -
result startup "  original Gorgon 0.3.4, $P processes" "$o_first" "$(printf '%.1f ms' "$o_first")" -
ratio=$(calc 'g / f' g="$g_first" f="$floor")
result startup "gorgon's first operation / the floor" "$ratio" "$(printf '%.2fx' "$ratio")" "<=2"
finish_section
