#!/usr/bin/env python3
"""A tiny REST API to load-test in the tutorial (docs/tutorial.md).

Python standard library only. It keeps items in memory:

    POST   /items        JSON body -> 201, {"id": N, ...}, Location: /items/N
    GET    /items/N      -> 200 and the item, or 404
    DELETE /items/N      -> 204, or 404
    GET    /             -> 200 "hello" (the seed's plain GET)

Run it with `python3 examples/rest-api.py [PORT]` (default 8000; 0 takes
a free port, and the line it prints says which); it listens on 127.0.0.1
only and logs nothing per request.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ITEMS = {}
LOCK = threading.Lock()
NEXT_ID = [1]


class Server(ThreadingHTTPServer):
    # One thread per connection; a load test opens many at once, more than
    # the default backlog of 5 (a refused SYN is retried a second later).
    request_queue_size = 256
    daemon_threads = True


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, as a load generator expects.
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes: without this, Nagle's algorithm
    # holds the body until the client's delayed ACK, 40 ms later.
    disable_nagle_algorithm = True

    def send(self, status, body=None, headers=()):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def item_id(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) == 2 and parts[0] == "items" and parts[1].isdigit():
            return int(parts[1])
        return None

    def do_GET(self):
        if self.path == "/":
            data = b"hello\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        item_id = self.item_id()
        with LOCK:
            item = ITEMS.get(item_id)
        if item is None:
            self.send(404, {"error": "no such item"})
        else:
            self.send(200, item)

    def do_POST(self):
        if self.path.split("?")[0] != "/items":
            self.send(404, {"error": "POST /items only"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            fields = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self.send(400, {"error": "the body is not JSON"})
            return
        with LOCK:
            item_id = NEXT_ID[0]
            NEXT_ID[0] += 1
            item = dict(fields, id=item_id)
            ITEMS[item_id] = item
        self.send(201, item, [("Location", f"/items/{item_id}")])

    def do_DELETE(self):
        with LOCK:
            found = ITEMS.pop(self.item_id(), None)
        self.send(204 if found else 404, None if found else {"error": "no such item"})

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    server = Server(("127.0.0.1", port), Handler)
    port = server.server_address[1]
    print(f"REST API on http://127.0.0.1:{port}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
