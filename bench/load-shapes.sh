#!/usr/bin/env bash
# Figures for the load shapes (docs/load-shapes.md): prints, does not judge.
#
#  1. the closed loop's speed on the noop plugin (the hot path the open
#     model must not slow down): -n 20000000 on 1 and 2 threads;
#  2. the highest rate the open model holds on the noop plugin here;
#  3. coordinated-omission correction: one call stalls 1 s at 100/s.
#
# Usage: bench/load-shapes.sh   (builds the release binary first)
source "$(dirname "$0")/lib.sh"
build_release gorgon-noop gorgon-test-testkit
echo "machine: $(machine_line)"
gorgon=./target/release/gorgon
noop=target/release/libgorgon_noop.so
testkit=target/release/libgorgon_test_testkit.so

echo "== closed loop, noop, 20M calls"
for threads in 1 2; do
    for _ in 1 2 3; do
        "$gorgon" run --plugin "$noop" -n 20000000 -t "$threads" | grep '^Run 1'
    done
done

echo "== open model, noop, 1 s at each rate on 2 threads"
for rate in 100000/s 500000/s 1000000/s 2000000/s; do
    echo "-- $rate"
    "$gorgon" run --plugin "$noop" --rate "$rate" --duration 1s -t 2 | grep -E '^(Open model|Warning)'
done

echo "== coordinated omission: 100/s for 3 s, call 50 stalls 1 s, 1 thread"
"$gorgon" run --plugin "$testkit" --rate 100/s --duration 3s \
    --set stall_at=50 --set stall_ms=1000 | grep -E '^(Open|Latency|Service|│ all)'
