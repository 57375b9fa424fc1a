"""A TLS server for the HTTP plugin's tests: Python's ssl module (OpenSSL)
on a loopback port, HTTP/1.1 keep-alive, a thread per connection.

    python3 tls_server.py CERT KEY LOG [--tls 1.2|1.3]

Prints its port on the first line of stdout once it listens. Appends one
line per connection to LOG: `handshake VERSION resumed=0|1`, or
`failed REASON` when the handshake fails (a client that refused the
certificate), so a test counts connections, handshakes and resumed
sessions as the server saw them.

GET /close answers with `Connection: close` and closes; GET /trickle logs
`trickle`, sends a head with `Content-Length: 1000`, then a byte every
100 ms, 100 of them at most, and closes, logging `trickled N` with the
bytes it could send; anything else is 200 `ok`.
"""

import http.server
import socketserver
import ssl
import sys
import threading
import time

cert, key, log_path = sys.argv[1:4]
version = sys.argv[5] if len(sys.argv) > 5 and sys.argv[4] == "--tls" else None

context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
if version == "1.2":
    context.maximum_version = ssl.TLSVersion.TLSv1_2
elif version == "1.3":
    context.minimum_version = ssl.TLSVersion.TLSv1_3

log_lock = threading.Lock()


def log(line):
    with log_lock, open(log_path, "a") as out:
        out.write(line + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle holds
    # the second until the client acknowledges the first.
    disable_nagle_algorithm = True

    def do_GET(self):
        if self.path == "/trickle":
            self.trickle()
            return
        close = self.path == "/close"
        self.send_response(200)
        self.send_header("Content-Length", "2")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(b"ok")

    def trickle(self):
        log("trickle")
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.flush()
        # Each byte its own TLS record; a client that gave up makes the
        # write fail, which ends the connection's thread.
        sent = 0
        try:
            for _ in range(100):
                time.sleep(0.1)
                self.wfile.write(b"x")
                self.wfile.flush()
                sent += 1
        finally:
            log(f"trickled {sent}")
        self.close_connection = True

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def finish_request(self, request, client_address):
        # The handshake runs on the connection's own thread, so a client
        # that stalls it holds up no other.
        try:
            secure = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            log(f"failed {error}")
            return
        try:
            log(f"handshake {secure.version()} resumed={int(secure.session_reused)}")
            self.RequestHandlerClass(secure, client_address, self)
        except OSError:
            pass
        finally:
            secure.close()


server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
