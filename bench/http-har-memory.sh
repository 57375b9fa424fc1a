#!/usr/bin/env bash
# Peak RSS of the HTTP plugin replaying a HAR recording of $ENTRIES https
# entries (each with a dozen 100-byte headers), pointed at a local Python
# server with base_url, at -p 1 -t $THREADS: with the default measurements
# (per host above 100 requests) and with one measurement per request
# (--set measure=requests), whose histograms (one per measurement per
# thread) are what grows. The plan itself is shared by the threads.
#
#   bench/http-har-memory.sh        # ENTRIES=1000 THREADS=4 CALLS=8
set -euo pipefail
cd "$(dirname "$0")/.."
ENTRIES=${ENTRIES:-1000}
THREADS=${THREADS:-4}
CALLS=${CALLS:-8}
work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --quiet --release -p gorgon-cli -p gorgon-http
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 - "$port" <<'PY' &
import http.server, socketserver, sys
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        # One write: a head and a body written apart meet delayed ACKs.
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
PY
server_pid=$!
python3 - "$ENTRIES" "$work/recording.har" <<'PY'
import json, sys
entries = [{
    "startedDateTime": "2026-01-01T00:00:00Z", "time": 1,
    "request": {"method": "GET", "url": f"https://shop.example.com/n/{i}?q=" + "x" * 200,
                "httpVersion": "HTTP/2", "cookies": [], "queryString": [],
                "headers": [{"name": ":authority", "value": "shop.example.com"}]
                           + [{"name": f"X-H{j}", "value": "v" * 100} for j in range(12)],
                "headersSize": -1, "bodySize": 0},
    "response": {"status": 200, "content": {"mimeType": "text/html", "size": 800, "text": "body" * 200}},
} for i in range(int(sys.argv[1]))]
json.dump({"log": {"version": "1.2", "creator": {"name": "bench", "version": "1"}, "entries": entries}},
          open(sys.argv[2], "w"))
PY
for _ in $(seq 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null && break
    sleep 0.1
done

for measure in default requests; do
    extra=()
    [ "$measure" = requests ] && extra=(--set measure=requests)
    /usr/bin/time -v target/release/gorgon run --plugin target/release/libgorgon_http.so \
        --set "requests=$work/recording.har" --set "base_url=http://127.0.0.1:$port" \
        "${extra[@]}" -n "$CALLS" -p 1 -t "$THREADS" >"$work/out" 2>"$work/time"
    kib=$(awk -F': ' '/Maximum resident/ {print $2}' "$work/time")
    printf 'HAR of %s entries, -t %s, measure=%s: peak RSS %d MiB\n' \
        "$ENTRIES" "$THREADS" "$measure" "$((kib / 1024))"
done
