#!/usr/bin/env bash
# Section 3: the gorgon-http plugin against wrk and oha, at equal
# concurrency, on a loopback nginx serving a small static file, in plain
# HTTP and then over TLS.
#
#   bench/http-vs-wrk.sh                    # 5 rounds of 10 s each, per part
#   ROUNDS=5 SECONDS_PER_RUN=20 bench/http-vs-wrk.sh
#   CONTENDERS="oha gorgon gorgon-nobatch" bench/http-vs-wrk.sh
#   PARTS=https bench/http-vs-wrk.sh         # the TLS part only
#
# Installs nginx-light, wrk, openssl and time from Debian when missing (as
# root), and oha from crates.io into target/bench-tools (left out, with a
# note, if that fails). Starts a private nginx (one worker process, config,
# files and a test CA in a temp dir, no system configuration touched) that
# serves the same file over http and over https (TLS 1.2/1.3, keep-alive),
# then alternates, each round:
#   wrk -t2 -c32 -d${SECONDS_PER_RUN}s --latency
#   oha -c 32 -n <what wrk did that round>                (http only)
#   gorgon run -p 2 -t 1 --fibers 16 -n <what wrk did that round>
#   gorgon run -p 2 -t 16 -n <what wrk did that round>   (gorgon-threads)
# so that each makes as many requests and runs about as long, and prints
# requests/s, the load generator's CPU time per request (user + sys of its
# processes, from /usr/bin/time, which counts gorgon's waited-for worker
# processes), nginx's CPU per request, p99 latency, the CPU that other
# processes of the machine used meanwhile ("others", in cores: a shared
# machine skews every figure), and the ratios: in each round, each figure
# over wrk's (or oha's) of the same round, then the median over the rounds.
# "gorgon" runs one thread per process with 16 fibers each (docs/fibers.md),
# the event-loop shape wrk has; "gorgon-threads" a thread per connection.
# Over https gorgon checks nginx's certificate against the test CA
# (tls_ca); wrk checks none. TLS_CONTENDERS (default "gorgon") says who
# runs against wrk there. CONTENDERS may add gorgon-nobatch, the plugin
# without SCHED_BATCH (docs/architecture.md), and gorgon-b, another
# build to compare (GORGON_B=path/to/gorgon,
# HTTP_PLUGIN_B=path/to/libgorgon_http.so). Targets against wrk, plain and
# TLS: requests/s >= 1.0x, CPU/request <= 0.8x, p99 <= 1.5x.
# docs/benchmarks-http.md explains the figures.
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
PORT=${PORT:-18080}
TLS_PORT=${TLS_PORT:-18443}
PARTS=${PARTS:-"http https"}
PROCESSES=${PROCESSES:-2}
THREADS=${THREADS:-16}
FIBERS=${FIBERS:-16}
WRK_THREADS=${WRK_THREADS:-2}
CONNECTIONS=$((PROCESSES * THREADS))
# The fibers contender keeps as many connections: CONNECTIONS / PROCESSES per process.
FIBERS_THREADS=$((THREADS / FIBERS > 0 ? THREADS / FIBERS : 1))

need_debian time nginx:nginx-light wrk openssl
[ -n "${OHA+set}" ] || need_oha
CONTENDERS=${CONTENDERS:-"${OHA:+oha }gorgon gorgon-threads"}
TLS_CONTENDERS=${TLS_CONTENDERS:-gorgon}
[ -n "$OHA" ] || echo "note: oha is not installed; comparing with wrk only" >&2
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
build_release gorgon-http
PLUGIN=${HTTP_PLUGIN:-$RELEASE/libgorgon_http.so}

WORK=$(mktemp -d /tmp/gorgon-bench-http.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/www" "$WORK/tmp"
# A small static file, about the size of a short JSON answer.
head -c 128 /dev/zero | tr '\0' 'x' >"$WORK/www/small.txt"
chmod 644 "$WORK/www/small.txt"
# A test CA and a certificate it signed for 127.0.0.1, for the https server.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Gorgon Bench CA" \
    -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$WORK/leaf.key" -out "$WORK/leaf.csr" 2>/dev/null
echo "subjectAltName=IP:127.0.0.1" >"$WORK/ext"
openssl x509 -req -days 2 -in "$WORK/leaf.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
    -CAcreateserial -extfile "$WORK/ext" -out "$WORK/leaf.pem" 2>/dev/null
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
    server {
        listen 127.0.0.1:$TLS_PORT ssl;
        ssl_certificate $WORK/leaf.pem;
        ssl_certificate_key $WORK/leaf.key;
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
TLS_URL="https://127.0.0.1:$TLS_PORT/small.txt"
printf 'GET %s\n' "$TLS_URL" >"$WORK/small-tls.http"
openssl s_client -connect "127.0.0.1:$TLS_PORT" -CAfile "$WORK/ca.pem" </dev/null 2>/dev/null |
    grep -q "Verify return code: 0" || { echo "nginx does not answer on $TLS_URL" >&2; exit 1; }

# The nginx worker's CPU ticks, to show how busy the server was.
nginx_ticks() {
    local worker
    worker=$(pgrep -P "$(cat "$WORK/nginx.pid")" | head -1)
    awk '{print $14 + $15}' "/proc/$worker/stat"
}
# Busy ticks of the whole machine (all CPUs), to show what else ran.
machine_busy_ticks() {
    awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}

# Runs one contender once: `measure TOOL ROUND COMMAND...` (in the part
# $PART); keeps its output, its CPU time, and the server's and the
# machine's ticks.
measure() {
    local name=$1 tool=$PART.$1 round=$2
    shift 2
    local nginx_before busy_before start
    nginx_before=$(nginx_ticks)
    busy_before=$(machine_busy_ticks)
    start=$(now_ns)
    /usr/bin/time -f '%U %S' -o "$WORK/$tool.$round.time" "$@" >"$WORK/$tool.$round.out"
    echo "$name $round $(($(nginx_ticks) - nginx_before))" \
        "$(($(machine_busy_ticks) - busy_before)) $(($(now_ns) - start))" >>"$WORK/$PART.runs.txt"
}

# `compare PART URL FILE CONTENDERS GORGON-ARGS...`: the rounds of one
# part (http or https) against URL, FILE being the requests file for it.
compare() {
    PART=$1
    local url=$2 file=$3 contenders=$4
    shift 4
    local extra=("$@")
    : >"$WORK/$PART.runs.txt"
    for round in $(seq 1 "$ROUNDS"); do
        measure wrk "$round" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency "$url"
        # The same number of requests, so each contender runs about as long.
        requests=$(awk '/requests in/ {print $1}' "$WORK/$PART.wrk.$round.out")
        gorgon=("$GORGON" run --plugin "$PLUGIN" --set "requests=$file" "${extra[@]}"
            -n "$requests" -p "$PROCESSES" -t "$THREADS")
        fibers=("$GORGON" run --plugin "$PLUGIN" --set "requests=$file" "${extra[@]}"
            -n "$requests" -p "$PROCESSES" -t "$FIBERS_THREADS" --fibers "$((THREADS / FIBERS_THREADS))")
        for tool in $contenders; do
            case $tool in
                oha) measure oha "$round" "$OHA" -n "$requests" -c "$CONNECTIONS" --no-tui --output-format json "$url" ;;
                gorgon) measure gorgon "$round" "${fibers[@]}" ;;
                gorgon-threads) measure gorgon-threads "$round" "${gorgon[@]}" ;;
                gorgon-nobatch) measure gorgon-nobatch "$round" "${fibers[@]}" --set batch_scheduling=false ;;
                gorgon-b) measure gorgon-b "$round" "$GORGON_B" run --plugin "${HTTP_PLUGIN_B:-$PLUGIN}" \
                    --set "requests=$file" "${extra[@]}" -n "$requests" -p "$PROCESSES" -t "$THREADS" ;;
                *) echo "unknown contender $tool" >&2; exit 2 ;;
            esac
        done
        echo "$PART round $round done" >&2
    done
    report "$PART" $contenders
}

# `report PART CONTENDERS...`: the figures and ratios of a part's rounds.
report() {
    echo "nginx $("$NGINX" -v 2>&1 | cut -d/ -f2), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')${OHA:+, $("$OHA" --version)}"
    python3 - "$WORK" "$(getconf CLK_TCK)" "$BENCH_RESULTS" "$@" <<'EOF'
import json, re, statistics, sys

work, tick_us, results, part, contenders = sys.argv[1], 1e6 / int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]

def micros(text):
    """'1.23ms', '850.00us' (wrk) or '1ms 506µs' (gorgon) in microseconds."""
    total = 0.0
    for value, unit in re.findall(r"([\d.]+)\s*(ns|us|µs|ms|s|m)\b", text):
        total += float(value) * {"ns": 1e-3, "us": 1, "µs": 1, "ms": 1e3, "s": 1e6, "m": 6e7}[unit]
    return total

def parse(tool, rnd):
    out = open(f"{work}/{part}.{tool}.{rnd}.out").read()
    if tool == "wrk":
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        rate = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
        p99 = micros(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))
    elif tool == "oha":
        report = json.loads(out)
        requests = sum(report["statusCodeDistribution"].values())
        rate = report["summary"]["requestsPerSec"]
        p99 = report["latencyPercentiles"]["p99"] * 1e6
    else:
        row = next(l for l in out.splitlines() if re.match(r"^│ all\s", l))
        cells = [c.strip() for c in re.split("[│┆]", row)[1:-1]]
        requests, rate = int(cells[1].replace(",", "")), float(cells[2].replace(",", ""))
        p99 = micros(cells[6])
    user, system = map(float, open(f"{work}/{part}.{tool}.{rnd}.time").read().split()[-2:])
    return requests, rate, (user + system) * 1e6 / requests, p99

print(f"{'round':>5} {'tool':<15} {'requests':>9} {'req/s':>8} {'CPU µs/req':>10} "
      f"{'nginx µs/req':>12} {'p99 µs':>7} {'others':>7}")
per_tool, per_round = {}, {}
for tool, rnd, nginx, busy, wall_ns in (l.split() for l in open(f"{work}/{part}.runs.txt")):
    requests, rate, cpu, p99 = parse(tool, rnd)
    nginx_us = int(nginx) * tick_us / requests
    # Cores used meanwhile by everything but the load generator and nginx.
    others = (int(busy) * tick_us - (cpu + nginx_us) * requests) / (int(wall_ns) / 1e3)
    per_tool.setdefault(tool, []).append((rate, cpu, p99, nginx_us))
    per_round.setdefault(rnd, {})[tool] = (rate, cpu, p99)
    print(f"{rnd:>5} {tool:<15} {requests:>9} {rate:>8.0f} {cpu:>10.2f} {nginx_us:>12.2f} "
          f"{p99:>7.0f} {max(others, 0):>6.2f}c")
medians = {t: [statistics.median(r[i] for r in rows) for i in range(4)] for t, rows in per_tool.items()}
print()
for tool, (rate, cpu, p99, nginx_us) in medians.items():
    print(f"median {tool:<15} {rate:>8.0f} req/s  {cpu:6.2f} µs CPU/req  p99 {p99:6.0f} µs"
          f"  nginx {nginx_us:5.2f} µs/req")

def ratios(tool, base):
    """Median, lowest and highest over the rounds of tool/base, each
    round's figures divided by the same round's: rounds alternate, so a
    pair shares the machine's state of the moment, which drifts more
    between rounds than the tools differ."""
    pairs = [(r[tool], r[base]) for r in per_round.values() if tool in r and base in r]
    out = []
    for i in range(3):
        values = [t[i] / b[i] for t, b in pairs]
        out.append((statistics.median(values), min(values), max(values)))
    return out

with open(results, "a") as out:
    def result(figure, value, shown, target):
        out.write(f"{part}\t{figure}\t{value}\t{shown}\t{target}\n")
    for tool in ["wrk"] + contenders:
        rate, cpu, p99, _ = medians[tool]
        result(f"{tool}: req/s, CPU us/req, p99", rate, f"{rate/1000:.1f}k {cpu:.2f} {p99/1000:.2f}ms", "-")
    print()
    print("ratios: median of the rounds' own ratios [lowest - highest]")
    for tool in contenders:
        if tool == "oha":
            continue
        (rate, rl, rh), (cpu, cl, ch), (p99, pl, ph) = ratios(tool, "wrk")
        # The targets are judged on gorgon as it is meant to be run for
        # this (fibers); the other shapes are shown beside it.
        judged = tool == "gorgon"
        aim = (lambda t: f" (target {t})") if judged else (lambda t: "")
        print(f"{tool}/wrk: req/s {rate:.3f} [{rl:.2f}-{rh:.2f}]{aim('>= 1.0')}  "
              f"CPU/req {cpu:.3f} [{cl:.2f}-{ch:.2f}]{aim('<= 0.8')}  "
              f"p99 {p99:.3f} [{pl:.2f}-{ph:.2f}]{aim('<= 1.5')}")
        result(f"{tool} / wrk: req/s [lowest-highest round]", rate, f"{rate:.3f} [{rl:.2f}-{rh:.2f}]", ">=1.0" if judged else "-")
        result(f"{tool} / wrk: CPU us per request", cpu, f"{cpu:.3f} [{cl:.2f}-{ch:.2f}]", "<=0.8" if judged else "-")
        result(f"{tool} / wrk: p99 latency", p99, f"{p99:.3f} [{pl:.2f}-{ph:.2f}]", "<=1.5" if judged else "-")
        if "oha" in medians:
            (rate, _, _), (cpu, _, _), (p99, _, _) = ratios(tool, "oha")
            print(f"{tool}/oha: req/s {rate:.3f}  CPU/req {cpu:.3f}  p99 {p99:.3f}")
            result(f"{tool} / oha: req/s, CPU/req, p99", rate, f"{rate:.2f} {cpu:.2f} {p99:.2f}", "-")
EOF
}

for part in $PARTS; do
    case $part in
        http)
            section "HTTP: nginx (1 worker) on loopback; wrk -t$WRK_THREADS -c$CONNECTIONS vs ${CONTENDERS// /, } at $CONNECTIONS connections; $ROUNDS rounds of ${SECONDS_PER_RUN}s"
            compare http "$URL" "$WORK/small.http" "$CONTENDERS"
            ;;
        https)
            section "HTTPS: the same over TLS (keep-alive); wrk -t$WRK_THREADS -c$CONNECTIONS vs ${TLS_CONTENDERS// /, } at $CONNECTIONS connections; $ROUNDS rounds of ${SECONDS_PER_RUN}s"
            compare https "$TLS_URL" "$WORK/small-tls.http" "$TLS_CONTENDERS" --set "tls_ca=$WORK/ca.pem"
            ;;
        *) echo "unknown part $part (http https)" >&2; exit 2 ;;
    esac
done
finish_section
