#!/usr/bin/env bash
# The gorgon-http plugin against wrk, at equal concurrency, on a loopback
# nginx serving a small static file (issue 7's performance targets).
#
#   bench/http-vs-wrk.sh                    # 3 rounds of 10 s each
#   ROUNDS=5 SECONDS_PER_RUN=20 bench/http-vs-wrk.sh
#
# Installs nginx-light, wrk and time from Debian when missing (as root),
# starts a private nginx (one worker process, config and files in a temp
# dir, no system configuration touched), then alternates, each round:
#   wrk -t2 -c32 -d${SECONDS_PER_RUN}s --latency
#   gorgon run -p 2 -t 16 -n <what wrk did that round>   (same duration)
# and prints requests/s, the load generator's CPU time per request
# (user + sys of its processes, from /usr/bin/time, which counts gorgon's
# waited-for worker processes), p99 latency, and the gorgon/wrk ratios of
# the medians. Targets: requests/s >= 0.95x, CPU/request <= 1.0x,
# p99 <= 1.5x. docs/benchmarks-http.md keeps the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
PORT=${PORT:-18080}
PROCESSES=${PROCESSES:-2}
THREADS=${THREADS:-16}
WRK_THREADS=${WRK_THREADS:-2}
CONNECTIONS=$((PROCESSES * THREADS))

install_missing() {
    local missing=()
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
    command -v wrk >/dev/null || missing+=(wrk)
    [ -x /usr/bin/time ] || missing+=(time)
    [ ${#missing[@]} -eq 0 ] && return
    echo "installing ${missing[*]} from Debian" >&2
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null; }
}
install_missing
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

echo "building gorgon and the http plugin (release)" >&2
cargo build --release --quiet -p gorgon-cli -p gorgon-http
GORGON=target/release/gorgon
PLUGIN=target/release/libgorgon_http.so

WORK=$(mktemp -d /tmp/gorgon-bench-http.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/www" "$WORK/tmp"
# A small static file, about the size of a short JSON answer.
head -c 128 /dev/zero | tr '\0' 'x' >"$WORK/www/small.txt"
chmod 644 "$WORK/www/small.txt"
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    server {
        listen 127.0.0.1:$PORT;
        root $WORK/www;
    }
}
EOF
"$NGINX" -c "$WORK/nginx.conf" -p "$WORK"
stop_nginx() {
    if [ -s "$WORK/nginx.pid" ]; then kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true; fi
    sleep 0.2
    rm -rf "$WORK"
}
trap stop_nginx EXIT
sleep 0.3
URL="http://127.0.0.1:$PORT/small.txt"
curl_like() { exec 3<>"/dev/tcp/127.0.0.1/$PORT" && printf 'GET /small.txt HTTP/1.0\r\n\r\n' >&3 && head -1 <&3; }
curl_like | grep -q "200" || { echo "nginx does not answer on $URL" >&2; exit 1; }
printf 'GET %s\n' "$URL" >"$WORK/small.http"

# The nginx worker's CPU ticks, to show how busy the server was.
nginx_ticks() {
    local worker
    worker=$(pgrep -P "$(cat "$WORK/nginx.pid")" | head -1)
    awk '{print $14 + $15}' "/proc/$worker/stat"
}

RESULTS="$WORK/results.txt"
: >"$RESULTS"
echo "nginx 1 worker on $URL; gorgon -p $PROCESSES -t $THREADS vs wrk -t$WRK_THREADS -c$CONNECTIONS; $ROUNDS rounds of ${SECONDS_PER_RUN}s" >&2
for round in $(seq 1 "$ROUNDS"); do
    before=$(nginx_ticks)
    /usr/bin/time -f '%U %S' -o "$WORK/wrk.time" \
        wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency "$URL" >"$WORK/wrk.out"
    after=$(nginx_ticks)
    echo "wrk $round $(tr '\n' ' ' <"$WORK/wrk.time") $((after - before))" >>"$RESULTS"
    cat "$WORK/wrk.out" >>"$WORK/wrk.all"
    requests=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
    echo "wrk-out $round $requests $(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out") $(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")" >>"$RESULTS"

    before=$(nginx_ticks)
    /usr/bin/time -f '%U %S' -o "$WORK/gorgon.time" \
        "$GORGON" run --plugin "$PLUGIN" --set "requests=$WORK/small.http" \
        -n "$requests" -p "$PROCESSES" -t "$THREADS" >"$WORK/gorgon.out"
    after=$(nginx_ticks)
    echo "gorgon $round $(tr '\n' ' ' <"$WORK/gorgon.time") $((after - before))" >>"$RESULTS"
    cat "$WORK/gorgon.out" >>"$WORK/gorgon.all"
    awk -F'│|┆' '$2 ~ /^ *all *$/ {gsub(/,/, "", $3); gsub(/,/, "", $4); print "gorgon-out", R, $3, $4, $8}' \
        R="$round" "$WORK/gorgon.out" >>"$RESULTS"
    echo "round $round done" >&2
done

python3 - "$RESULTS" "$(getconf CLK_TCK)" <<'EOF'
import re, statistics, sys

lines = [l.split() for l in open(sys.argv[1])]
tick_us = 1e6 / int(sys.argv[2])

def micros(text):
    """'1.23ms', '850.00us' (wrk) or '1ms 506µs' (gorgon) in microseconds."""
    total = 0.0
    for value, unit in re.findall(r"([\d.]+)\s*(ns|us|µs|ms|s|m)", text):
        total += float(value) * {"ns": 1e-3, "us": 1, "µs": 1, "ms": 1e3, "s": 1e6, "m": 6e7}[unit]
    return total

rows = {"wrk": [], "gorgon": []}
times = {}
for fields in lines:
    kind = fields[0]
    if kind in rows:
        times[(kind, fields[1])] = (float(fields[2]) + float(fields[3]), int(fields[4]))
for fields in lines:
    kind = fields[0]
    if kind == "wrk-out":
        _, rnd, requests, rate, p99 = fields[:5]
        cpu, nginx = times[("wrk", rnd)]
        rows["wrk"].append((rnd, int(requests), float(rate), cpu, nginx, micros(p99)))
    elif kind == "gorgon-out":
        rnd, requests, rate = fields[1], fields[2], fields[3]
        p99 = " ".join(fields[4:])
        cpu, nginx = times[("gorgon", rnd)]
        rows["gorgon"].append((rnd, int(requests), float(rate), cpu, nginx, micros(p99)))

print(f"{'round':>5} {'tool':<7} {'requests':>10} {'req/s':>9} {'CPU µs/req':>11} {'nginx µs/req':>13} {'p99 µs':>8}")
medians = {}
for tool in ("wrk", "gorgon"):
    per = []
    for rnd, requests, rate, cpu, nginx, p99 in rows[tool]:
        cpu_us = cpu * 1e6 / requests
        nginx_us = nginx * tick_us / requests
        per.append((rate, cpu_us, p99))
        print(f"{rnd:>5} {tool:<7} {requests:>10} {rate:>9.0f} {cpu_us:>11.2f} {nginx_us:>13.2f} {p99:>8.0f}")
    medians[tool] = [statistics.median(x[i] for x in per) for i in range(3)]
w, g = medians["wrk"], medians["gorgon"]
print()
print(f"median  wrk:    {w[0]:9.0f} req/s  {w[1]:6.2f} µs CPU/req  p99 {w[2]:6.0f} µs")
print(f"median  gorgon: {g[0]:9.0f} req/s  {g[1]:6.2f} µs CPU/req  p99 {g[2]:6.0f} µs")
print(f"ratios gorgon/wrk: req/s {g[0]/w[0]:.3f} (target >= 0.95)  "
      f"CPU/req {g[1]/w[1]:.3f} (target <= 1.0)  p99 {g[2]/w[2]:.3f} (target <= 1.5)")
EOF
