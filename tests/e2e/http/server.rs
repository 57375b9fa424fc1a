//! A real HTTP/1.1 server for the HTTP plugin's tests: std::net on a
//! loopback port, a thread per connection, keep-alive, and a log of every
//! request it answered, so tests check what actually arrived.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | 200 |
//! | `ANY /status/CODE` | status CODE |
//! | `GET /mod/K/N` | 500 when N is a multiple of K, else 200 |
//! | `GET /n/N` | 200 (the log keeps N) |
//! | `POST /items` | 201, `{"id": ID}` and `Location: /items/ID` (ids from 1000) |
//! | `GET /items/ID` | 200 for a created ID, else 404 |
//! | `DELETE /items/ID` | 204 for a created ID, else 404 |
//! | `GET /chunked` | 200, `{"token": "t-SEQ"}` in chunks |
//! | `GET /close` | 200 with `Connection: close`, then closes |
//! | `GET /slow` | 200 after 2 s |
//! | `GET /trickle` | 200 with `Content-Length: 1000`, then a byte every 200 ms: 50 of them at most, then closes |
//! | `POST /login` | 200, `{"token": "tok-SEQ", "user": {"id": SEQ}}`, `X-Session: s-SEQ` and the cookie `session=s-SEQ` |
//! | `GET /evil` | 200, `{"token": "a\r\nX-Injected: yes"}`: a value with a line break |
//! | anything else | 404 |

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the server answered.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    seen: Mutex<Vec<Seen>>,
    connections: AtomicUsize,
    next_id: AtomicU64,
    items: Mutex<HashSet<u64>>,
}

pub struct TestServer {
    pub port: u16,
    state: Arc<State>,
}

impl TestServer {
    pub fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            next_id: AtomicU64::new(1000),
            ..State::default()
        });
        let shared = state.clone();
        // The server lives as long as the test process.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        TestServer { port, state }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

/// A loopback port with nothing listening on it, for as long as this
/// lives: a socket is bound to it without listening, so connections to it
/// are refused and no other test's server can take it meanwhile (a port
/// merely found free could be). Shown as its number.
pub struct ClosedPort {
    _held: socket2::Socket,
    port: u16,
}

impl std::fmt::Display for ClosedPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.port.fmt(f)
    }
}

pub fn closed_port() -> ClosedPort {
    use socket2::{Domain, Socket, Type};
    let held = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    held.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = held.local_addr().unwrap().as_socket().unwrap().port();
    ClosedPort { _held: held, port }
}

fn serve(stream: TcpStream, state: &State) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            headers.push((name.to_string(), value.trim().to_string()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let seen = Seen {
            method,
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        if seen.method == "GET" && seen.path == "/trickle" {
            state.seen.lock().unwrap().push(seen);
            trickle(&mut writer);
            return;
        }
        let (response, close) = answer(&seen, state);
        state.seen.lock().unwrap().push(seen);
        if writer.write_all(&response).is_err() || close {
            return;
        }
    }
}

/// Never finishes its response: the thread ends after 10 s at most, or
/// as soon as the client has gone.
fn trickle(writer: &mut TcpStream) {
    if writer
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        .is_err()
    {
        return;
    }
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        if writer.write_all(b"x").is_err() {
            return;
        }
    }
}

fn response(status: u16, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\n{extra_headers}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn answer(seen: &Seen, state: &State) -> (Vec<u8>, bool) {
    let parts: Vec<&str> = seen.path.trim_start_matches('/').split('/').collect();
    let plain = |status| (response(status, "", "body"), false);
    match (seen.method.as_str(), parts.as_slice()) {
        ("GET", [""]) => plain(200),
        (_, ["status", code]) => plain(code.parse().unwrap_or(400)),
        ("GET", ["mod", k, n]) => {
            let (k, n): (u64, u64) = (k.parse().unwrap(), n.parse().unwrap());
            plain(if n % k == 0 { 500 } else { 200 })
        }
        ("GET", ["n", _]) => plain(200),
        ("POST", ["items"]) => {
            let id = state.next_id.fetch_add(1, Ordering::SeqCst);
            state.items.lock().unwrap().insert(id);
            let headers = format!("Content-Type: application/json\r\nLocation: /items/{id}\r\n");
            (response(201, &headers, &format!("{{\"id\": {id}}}")), false)
        }
        ("GET", ["items", id]) => {
            let known = id
                .parse::<u64>()
                .is_ok_and(|id| state.items.lock().unwrap().contains(&id));
            plain(if known { 200 } else { 404 })
        }
        ("DELETE", ["items", id]) => {
            let known = id
                .parse::<u64>()
                .is_ok_and(|id| state.items.lock().unwrap().remove(&id));
            if known {
                (response(204, "", ""), false)
            } else {
                plain(404)
            }
        }
        ("GET", ["chunked"]) => {
            let seq = state.next_id.fetch_add(1, Ordering::SeqCst);
            let json = format!("{{\"token\": \"t-{seq}\"}}");
            let (a, b) = json.split_at(5);
            let body = format!(
                "{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\nX-Trailer: 1\r\n\r\n",
                a.len(),
                b.len()
            );
            let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
            (format!("{head}{body}").into_bytes(), false)
        }
        ("POST", ["login"]) => {
            let seq = state.next_id.fetch_add(1, Ordering::SeqCst);
            let headers = format!(
                "Content-Type: application/json\r\nX-Session: s-{seq}\r\n\
                 Set-Cookie: session=s-{seq}; Path=/; HttpOnly\r\n"
            );
            let body = format!("{{\"token\": \"tok-{seq}\", \"user\": {{\"id\": {seq}}}}}");
            (response(200, &headers, &body), false)
        }
        ("GET", ["evil"]) => (
            response(200, "", "{\"token\": \"a\\r\\nX-Injected: yes\"}"),
            false,
        ),
        ("GET", ["close"]) => (response(200, "Connection: close\r\n", "bye"), true),
        ("GET", ["slow"]) => {
            std::thread::sleep(Duration::from_secs(2));
            plain(200)
        }
        _ => plain(404),
    }
}
