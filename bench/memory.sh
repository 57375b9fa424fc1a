#!/usr/bin/env bash
# Section 4: memory. Peak resident set size (RSS) of the `gorgon run`
# process and of a worker, for $N_SMALL and $N_LARGE noop operations
# (-p 1 -t 1), what each worker thread adds (-t 1 against -t $THREADS), and
# what each fiber adds (--fibers 1 against --fibers $FIBERS: a fiber's
# stack pages and its lane; a thread's fibers share its histograms).
#
# Gorgon measures these itself (each process's getrusage high-water mark;
# `parent_peak_rss_bytes` and `worker_peak_rss_bytes` of the JSON report),
# because from outside /usr/bin/time gives only the largest of a process
# and its children; that figure is shown beside them as a check. Memory
# should not grow with the number of operations: results are histograms,
# whose size depends on the range of latencies, not on the count.
#
# For contrast, the original Python Gorgon 0.3.4 keeps every call's record
# (its peak RSS, from /usr/bin/time, for $N_SMALL and $ORIGINAL_N calls).
#
#   bench/memory.sh        # N_SMALL=10000 N_LARGE=10000000 THREADS=64 REPEAT=3
source "$(dirname "$0")/lib.sh"

N_SMALL=${N_SMALL:-10000}
N_LARGE=${N_LARGE:-10000000}
ORIGINAL_N=${ORIGINAL_N:-1000000}
THREADS=${THREADS:-64}
FIBERS=${FIBERS:-1000}
REPEAT=${REPEAT:-3}
NOOP=$RELEASE/libgorgon_noop.so

need_debian python3
need_original
build_release gorgon-noop
section "memory: peak RSS for $N_SMALL vs $N_LARGE noop calls, and per thread, median of $REPEAT"

# `footprint ARGS...`: runs gorgon with the noop plugin and prints the
# parent's and the largest worker's peak RSS in KiB, and /usr/bin/time's.
footprint() {
    local json
    json=$(mktemp /tmp/gorgon-bench-memory.XXXXXX)
    /usr/bin/time -f '%M' -o "$json.time" "$GORGON" run --plugin "$NOOP" --output json "$@" >"$json"
    python3 - "$json" "$(tail -1 "$json.time")" <<'EOF'
import json, sys
run = json.load(open(sys.argv[1]))["runs"][0]
kib = lambda field: "nan" if run.get(field) is None else run[field] // 1024  # nan: a gorgon too old to say
print(kib("parent_peak_rss_bytes"), kib("worker_peak_rss_bytes"), sys.argv[2])
EOF
    rm -f "$json" "$json.time"
}

declare -A parent worker outside
for _ in $(seq "$REPEAT"); do
    for n in "$N_SMALL" "$N_LARGE"; do
        read -r p w o < <(footprint -n "$n" -p 1 -t 1)
        parent[$n]+="$p "
        worker[$n]+="$w "
        outside[$n]+="$o "
    done
    for t in 1 "$THREADS"; do
        read -r p w o < <(footprint -n 1000000 -p 1 -t "$t")
        worker[t$t]+="$w "
    done
    for f in 1 "$FIBERS"; do
        read -r p w o < <(footprint -n 1000000 -p 1 -t 1 --fibers "$f")
        worker[f$f]+="$w "
    done
done
if [ "$REPEAT" -gt 0 ]; then
    for n in "$N_SMALL" "$ORIGINAL_N"; do
        timed "$VENV/bin/python" bench/original/run_original.py noop "$n" 1x1
        outside[orig$n]=$MAX_RSS_KB
    done
fi

mib() { calc 'k / 1024' k="$1"; }
printf '%-34s %14s %14s %8s\n' "peak RSS, MiB" "$N_SMALL calls" "$N_LARGE calls" growth
for who in parent worker outside; do
    declare -n figures=$who
    small=$(median <<<"${figures[$N_SMALL]}")
    large=$(median <<<"${figures[$N_LARGE]}")
    growth=$(calc 'l / s' l="$large" s="$small")
    case $who in
        parent) name="gorgon run (the parent)" ;;
        worker) name="a worker" ;;
        outside) name="/usr/bin/time: largest of them" ;;
    esac
    printf '%-34s %14.2f %14.2f %7.2fx\n' "$name" "$(mib "$small")" "$(mib "$large")" "$growth"
    if [ "$who" != outside ]; then
        result memory "$who: peak RSS at $N_SMALL calls" "$(mib "$small")" "$(printf '%.1f MiB' "$(mib "$small")")" -
        result memory "$who: peak RSS growth $N_SMALL -> $N_LARGE calls" "$growth" "$(printf '%.2fx' "$growth")" "<=1.2"
    fi
    unset -n figures
done
o_small=${outside[orig$N_SMALL]}
o_large=${outside[orig$ORIGINAL_N]}
printf '%-34s %14.2f %14.2f %7.2fx   (%s calls)\n' "original Gorgon 0.3.4 (1x1)" "$(mib "$o_small")" \
    "$(mib "$o_large")" "$(calc 'l / s' l="$o_large" s="$o_small")" "$ORIGINAL_N"
result memory "  original Gorgon 0.3.4: KiB kept per call" \
    "$(calc '(l - s) / (nl - ns)' l="$o_large" s="$o_small" nl="$ORIGINAL_N" ns="$N_SMALL")" \
    "$(printf '%.2f KiB' "$(calc '(l - s) / (nl - ns)' l="$o_large" s="$o_small" nl="$ORIGINAL_N" ns="$N_SMALL")")" -

one=$(median <<<"${worker[t1]}")
many=$(median <<<"${worker[t$THREADS]}")
per_thread=$(calc '(m - o) / (t - 1)' m="$many" o="$one" t="$THREADS")
echo
printf 'a worker with 1 thread: %.2f MiB, with %s threads: %.2f MiB; %.0f KiB per thread\n' \
    "$(mib "$one")" "$THREADS" "$(mib "$many")" "$per_thread"
result memory "worker: peak RSS per thread (-t 1 vs -t $THREADS)" "$per_thread" "$(printf '%.0f KiB' "$per_thread")" -

one=$(median <<<"${worker[f1]}")
many=$(median <<<"${worker[f$FIBERS]}")
per_fiber=$(calc '(m - o) / (f - 1)' m="$many" o="$one" f="$FIBERS")
printf 'a worker thread with 1 fiber: %.2f MiB, with %s fibers: %.2f MiB; %.1f KiB per fiber\n' \
    "$(mib "$one")" "$FIBERS" "$(mib "$many")" "$per_fiber"
result memory "worker: peak RSS per fiber (--fibers 1 vs $FIBERS)" "$per_fiber" "$(printf '%.1f KiB' "$per_fiber")" -
finish_section
