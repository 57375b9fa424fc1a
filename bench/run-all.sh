#!/usr/bin/env bash
# The whole benchmark suite in one command (docs/benchmarks.md):
#
#   bench/run-all.sh                 # every section, about 5 minutes
#   QUICK=1 bench/run-all.sh         # fewer rounds and calls, about 2 minutes
#   SECTIONS="overhead memory" bench/run-all.sh
#
# On a fresh Debian machine (as root, or with sudo) it installs what it
# needs first: nginx-light, wrk, time and python3-venv from Debian, the
# original Gorgon (gorgon==0.3.4) from PyPI into target/bench-venv, and oha
# from crates.io into target/bench-tools (`cargo install oha --locked`; if
# that fails the HTTP section runs without oha and says so). It builds
# release binaries, states the machine, runs each section (each is also a
# script of its own: bench/overhead.sh, vs-original.sh, http-vs-wrk.sh,
# memory.sh, startup.sh), alternating the contenders within each, and
# ends with one table of medians and ratios against the targets.
source "$(dirname "$0")/lib.sh"

SECTIONS=${SECTIONS:-"overhead original http memory startup"}
if [ -n "${QUICK:-}" ]; then
    export N=${N:-20000000} REPEAT=${REPEAT:-3} ROUNDS=${ROUNDS:-3} SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
    export NOOP_N=${NOOP_N:-10000000} ORIGINAL_NOOP_N=${ORIGINAL_NOOP_N:-300000} ORIGINAL_N=${ORIGINAL_N:-300000}
fi

echo "installing what the benchmarks need (once)" >&2
need_debian time nginx:nginx-light wrk python3 python3-venv procps
need_original
need_oha
echo "building the workspace (release)" >&2
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet --workspace

MACHINE=$(machine_line)
echo "machine: $MACHINE"
export OHA

for s in $SECTIONS; do
    case $s in
        overhead) bench/overhead.sh ;;
        original) bench/vs-original.sh ;;
        http) bench/http-vs-wrk.sh ;;
        memory) bench/memory.sh ;;
        startup) bench/startup.sh ;;
        *) echo "unknown section $s (overhead original http memory startup)" >&2; exit 2 ;;
    esac
done

echo
echo "== summary: $MACHINE"
print_results | tee "$BENCH_RESULTS.table"
echo
echo "$(grep -c ' PASS$' "$BENCH_RESULTS.table") PASS, $(grep -c ' MISS$' "$BENCH_RESULTS.table") MISS"
rm -f "$BENCH_RESULTS" "$BENCH_RESULTS.table"
