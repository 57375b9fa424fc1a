//! The client in cooperative mode, against small servers on loopback, with
//! a recorder whose host says "cooperative" and logs every wait (it waits
//! with `poll(2)`, as the real host does off fibers).

use std::cell::RefCell;
use std::ffi::c_void;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use gorgon_plugin_api::abi::{HostVTable, WAIT_TIMED_OUT};
use gorgon_plugin_api::Recorder;

use super::*;
use crate::plan::{self, Options, Plan};
use crate::textfile;

/// What the fake host saw: each wait, as (fd, writable, timeout).
#[derive(Default)]
struct Host {
    cooperative: bool,
    waits: RefCell<Vec<(i32, bool, Duration)>>,
    /// The waits to read, counted for a server thread too.
    read_waits: ReadWaits,
}

/// How many waits to read the client has begun, shared with a test's
/// server thread. Whether the client finds the server's next bytes
/// already there or has to wait for them is a race that a fast machine
/// and a loaded one decide differently. A server that sends its `k`-th
/// piece only once the client has begun its `k + 1`-th wait decides it:
/// the client waits only when it has read all there is, so each piece
/// comes after a wait of its own, however fast either side runs.
#[derive(Clone, Default)]
struct ReadWaits(Arc<(Mutex<usize>, Condvar)>);

impl ReadWaits {
    fn begun(&self) {
        let (count, changed) = &*self.0;
        *count.lock().unwrap() += 1;
        changed.notify_all();
    }

    /// Blocks until more than `seen` waits have begun; gives up after 5 s
    /// (a client that does not wait then fails its test instead of
    /// hanging it).
    fn after(&self, seen: usize) {
        let (count, changed) = &*self.0;
        let _held = changed
            .wait_timeout_while(count.lock().unwrap(), Duration::from_secs(5), |n| {
                *n <= seen
            })
            .unwrap();
    }
}

unsafe extern "C" fn record(_: *mut c_void, _: *const u8, _: usize, _: u64) {}

unsafe extern "C" fn param(_: *mut c_void, _: *const u8, _: usize, _: *mut usize) -> *const u8 {
    std::ptr::null()
}

/// # Safety
/// `host` is the `Host` the recorder was made from, alive for the call.
unsafe extern "C" fn wait(host: *mut c_void, fd: i32, writable: u32, timeout_ns: u64) -> i32 {
    // SAFETY: the caller passes the live `Host` (see above).
    let host = unsafe { &*host.cast::<Host>() };
    let timeout = Duration::from_nanos(timeout_ns);
    host.waits.borrow_mut().push((fd, writable != 0, timeout));
    if writable == 0 {
        host.read_waits.begun();
    }
    let events = if writable != 0 {
        libc::POLLOUT
    } else {
        libc::POLLIN
    };
    match poll_one(fd, events, timeout) {
        0 => WAIT_TIMED_OUT,
        n if n > 0 => 0,
        _ => std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    }
}

/// `poll(2)` on one descriptor for `events`, for at most `timeout`
/// (rounded up, as the host does not wake before the time it was given).
fn poll_one(fd: i32, events: libc::c_short, timeout: Duration) -> libc::c_int {
    let mut entry = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let millis = timeout.as_nanos().div_ceil(1_000_000) as i32;
    // SAFETY: `entry` is one valid pollfd, and the count says one.
    unsafe { libc::poll(&mut entry, 1, millis) }
}

/// Whether the client's connection has something to read (bytes, or the
/// server's close) within 10 s, without reading it.
fn turns_readable(client: &Client) -> bool {
    poll_one(client_fd(client), libc::POLLIN, Duration::from_secs(10)) == 1
}

/// # Safety
/// `host` is the `Host` the recorder was made from, alive for the call.
unsafe extern "C" fn cooperative(host: *mut c_void) -> u32 {
    // SAFETY: the caller passes the live `Host` (see above).
    u32::from(unsafe { (*host.cast::<Host>()).cooperative })
}

unsafe extern "C" fn step_begin(_: *mut c_void, _: *const u8, _: usize) {}

static VTABLE: HostVTable = HostVTable {
    record_measurement: record,
    param,
    wait,
    cooperative,
    step_begin,
};

impl Host {
    fn cooperative() -> Box<Host> {
        Box::new(Host {
            cooperative: true,
            ..Host::default()
        })
    }

    fn recorder(&self) -> Recorder {
        // SAFETY: every test keeps its host alive longer than the recorder.
        unsafe { Recorder::from_raw(self as *const Host as *mut c_void, &VTABLE) }
    }

    fn waits(&self) -> Vec<(bool, Duration)> {
        self.waits.borrow().iter().map(|w| (w.1, w.2)).collect()
    }
}

fn plan(text: &str, timeout: Duration) -> Plan {
    let options = Options {
        timeout,
        connect_at_start: false,
        batch_scheduling: false,
    };
    let raw = textfile::parse("t.http", text).unwrap();
    plan::compile("t.http", raw, &|_| None, options).unwrap()
}

/// A listener on a free loopback port, its connections handed to `serve`
/// one after the other on a thread of its own.
fn server(serve: impl Fn(TcpStream) + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            serve(stream);
        }
    });
    port
}

/// Reads one request head (the tests send no bodies).
fn read_request(reader: &mut impl BufRead) -> bool {
    let mut line = String::new();
    let mut any = false;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line == "\r\n" => return any,
            Ok(_) => any = true,
        }
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Answers every request on a connection with `OK`.
fn keep_alive(stream: TcpStream) {
    let mut reader = BufReader::new(&stream);
    while read_request(&mut reader) {
        if (&stream).write_all(OK).is_err() {
            return;
        }
    }
}

/// The socket of the client's connection to the first server.
fn client_fd(client: &Client) -> i32 {
    client.connections[0].as_ref().unwrap().tcp.as_raw_fd()
}

fn is_nonblocking(client: &Client) -> bool {
    // SAFETY: a plain fcntl on an open descriptor.
    let flags = unsafe { libc::fcntl(client_fd(client), libc::F_GETFL) };
    flags & libc::O_NONBLOCK != 0
}

/// Whether `left` is what a wait of a request timing out after `timeout`
/// may get: never more, and (generously) not most of it gone.
fn is_left_of(left: Duration, timeout: Duration) -> bool {
    left <= timeout && left > timeout / 2
}

#[test]
fn the_deadline_gives_what_is_left_then_times_out() {
    let deadline = Deadline::after(Duration::from_millis(500));
    let start = deadline.0 - Duration::from_millis(500);
    assert_eq!(deadline.left_at(start).unwrap(), Duration::from_millis(500));
    assert_eq!(
        deadline
            .left_at(start + Duration::from_millis(300))
            .unwrap(),
        Duration::from_millis(200)
    );
    for past in [500, 501, 10_000] {
        let error = deadline
            .left_at(start + Duration::from_millis(past))
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(io_kind(&error), ErrorKind::Timeout);
    }
    // A timeout beyond the clock's range is a far deadline, not a panic.
    assert!(Deadline::after(Duration::MAX).left().is_ok());
}

#[test]
fn a_cooperative_exchange_connects_without_blocking_and_waits_through_the_recorder() {
    let port = server(keep_alive);
    let plan = plan(
        &format!("GET http://127.0.0.1:{port}/\n"),
        Duration::from_millis(700),
    );
    let host = Host::cooperative();
    let rec = host.recorder();
    let mut client = Client::new(&plan, None);
    let mut vars = Vec::new();
    for _ in 0..3 {
        let reply = client.exchange(&rec, &plan, &plan.requests[0], 0, &mut vars);
        assert_eq!(
            reply,
            Ok(Reply {
                status: 200,
                missing: None
            })
        );
    }
    assert!(is_nonblocking(&client));
    let reads: Vec<_> = host.waits().into_iter().filter(|(w, _)| !w).collect();
    // One wait per response, each with what is left of the request's
    // timeout.
    assert_eq!(reads.len(), 3, "{reads:?}");
    assert!(
        reads
            .iter()
            .all(|(_, left)| is_left_of(*left, Duration::from_millis(700))),
        "{reads:?}"
    );
}

#[test]
fn the_first_read_waits_even_when_the_response_is_already_there() {
    // The server answers before it reads the request: a client that read
    // first would find the response without waiting.
    let port = server(|stream| {
        (&stream).write_all(OK).unwrap();
        let mut reader = BufReader::new(&stream);
        read_request(&mut reader);
        std::thread::sleep(Duration::from_millis(200));
    });
    let plan = plan(
        &format!("GET http://127.0.0.1:{port}/\n"),
        Duration::from_secs(2),
    );
    let host = Host::cooperative();
    let rec = host.recorder();
    let mut client = Client::new(&plan, None);
    client.connect_all(&plan).unwrap();
    assert!(turns_readable(&client), "the response is there first");
    let reply = client.exchange(&rec, &plan, &plan.requests[0], 0, &mut Vec::new());
    assert_eq!(
        reply,
        Ok(Reply {
            status: 200,
            missing: None
        })
    );
    let waits = host.waits();
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert!(!waits[0].0 && is_left_of(waits[0].1, Duration::from_secs(2)));
}

#[test]
fn a_connection_opened_in_setup_turns_nonblocking_on_its_first_cooperative_use() {
    let port = server(keep_alive);
    let plan = plan(
        &format!("GET http://127.0.0.1:{port}/\n"),
        Duration::from_secs(2),
    );
    let mut client = Client::new(&plan, None);
    client.connect_all(&plan).unwrap();
    assert!(!is_nonblocking(&client));
    let blocking = Box::<Host>::default();
    let reply = client.exchange(
        &blocking.recorder(),
        &plan,
        &plan.requests[0],
        0,
        &mut Vec::new(),
    );
    assert_eq!(
        reply,
        Ok(Reply {
            status: 200,
            missing: None
        })
    );
    assert!(!is_nonblocking(&client));
    assert!(blocking.waits().is_empty());
    let host = Host::cooperative();
    let reply = client.exchange(
        &host.recorder(),
        &plan,
        &plan.requests[0],
        0,
        &mut Vec::new(),
    );
    assert_eq!(
        reply,
        Ok(Reply {
            status: 200,
            missing: None
        })
    );
    assert!(is_nonblocking(&client), "the same connection, switched");
    assert_eq!(host.waits().len(), 1);
    // And back, with its timeouts, should a call run off the fibers again.
    let reply = client.exchange(
        &blocking.recorder(),
        &plan,
        &plan.requests[0],
        0,
        &mut Vec::new(),
    );
    assert_eq!(
        reply,
        Ok(Reply {
            status: 200,
            missing: None
        })
    );
    assert!(!is_nonblocking(&client));
    let stream = &client.connections[0].as_ref().unwrap().tcp;
    let left = stream.read_timeout().unwrap().unwrap();
    assert!(is_left_of(left, Duration::from_secs(2)), "{left:?}");
}

#[test]
fn a_silent_server_is_a_timeout_in_cooperative_mode() {
    let port = server(|stream| {
        let mut reader = BufReader::new(&stream);
        read_request(&mut reader);
        std::thread::sleep(Duration::from_secs(2));
    });
    let plan = plan(
        &format!("GET http://127.0.0.1:{port}/\n"),
        Duration::from_millis(100),
    );
    let host = Host::cooperative();
    let mut client = Client::new(&plan, None);
    let started = std::time::Instant::now();
    let reply = client.exchange(
        &host.recorder(),
        &plan,
        &plan.requests[0],
        0,
        &mut Vec::new(),
    );
    assert_eq!(reply, Err(ErrorKind::Timeout));
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(
        client.connections[0].is_none(),
        "a timed-out connection is dropped"
    );
}

#[test]
fn a_refused_connection_is_counted_in_cooperative_mode() {
    // Bound but not listening: connections to it are refused, and no
    // other test's listener can take the port meanwhile.
    let held = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    held.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = held.local_addr().unwrap().as_socket().unwrap().port();
    let plan = plan(
        &format!("GET http://127.0.0.1:{port}/\n"),
        Duration::from_secs(1),
    );
    let host = Host::cooperative();
    let mut client = Client::new(&plan, None);
    let reply = client.exchange(
        &host.recorder(),
        &plan,
        &plan.requests[0],
        0,
        &mut Vec::new(),
    );
    assert_eq!(reply, Err(ErrorKind::ConnectRefused));
}

#[test]
fn a_connection_closed_while_idle_is_retried_once_in_cooperative_mode() {
    // One request per connection, then a close without `Connection: close`.
    let port = server(|stream| {
        let mut reader = BufReader::new(&stream);
        if read_request(&mut reader) {
            (&stream).write_all(OK).unwrap();
        }
    });
    let plan = plan(
        &format!("GET http://127.0.0.1:{port}/\n"),
        Duration::from_secs(2),
    );
    let host = Host::cooperative();
    let rec = host.recorder();
    let mut client = Client::new(&plan, None);
    for _ in 0..3 {
        // The kept connection is idle until the server's close arrives.
        if client.connections[0].is_some() {
            assert!(turns_readable(&client), "the server closed it");
        }
        let reply = client.exchange(&rec, &plan, &plan.requests[0], 0, &mut Vec::new());
        assert_eq!(
            reply,
            Ok(Reply {
                status: 200,
                missing: None
            })
        );
    }
}

#[test]
fn a_chunked_body_arriving_in_pieces_is_captured_in_cooperative_mode() {
    let host = Host::cooperative();
    let client_waits = host.read_waits.clone();
    // Each piece goes out once the client waits for it.
    let port = server(move |stream| {
        let mut reader = BufReader::new(&stream);
        let mut sent = 0;
        while read_request(&mut reader) {
            let pieces: [&[u8]; 4] = [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"6\r\n{\"id\":\r\n",
                b"3\r\n 42\r\n1\r\n}\r\n",
                b"0\r\n\r\n",
            ];
            for piece in pieces {
                client_waits.after(sent);
                (&stream).write_all(piece).unwrap();
                sent += 1;
            }
        }
    });
    let text = format!(
        "### a\nGET http://127.0.0.1:{port}/\n@capture id = json id\n\n### b\nGET http://127.0.0.1:{port}/{{id}}\n"
    );
    let plan = plan(&text, Duration::from_secs(2));
    let rec = host.recorder();
    let mut client = Client::new(&plan, None);
    let mut vars = vec![String::new(); plan.var_names.len()];
    let reply = client.exchange(&rec, &plan, &plan.requests[0], 0, &mut vars);
    assert_eq!(
        reply,
        Ok(Reply {
            status: 200,
            missing: None
        })
    );
    assert_eq!(vars[1], "42");
    // The pieces came apart: the client waited for each.
    let reads = host.waits().into_iter().filter(|(w, _)| !w).count();
    assert!(reads >= 4, "{:?}", host.waits());
}

/// A TLS server on loopback (rustls, a self-signed certificate made for
/// the test) answering every request on a connection with `OK`. It holds
/// its handshake flight until the client has begun waiting to read, so
/// the client finds nothing there at first however fast the machine is.
fn tls_keep_alive_server(client_waits: ReadWaits) -> u16 {
    use rustls::pki_types::PrivateKeyDer;
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    let config = std::sync::Arc::new(config);
    server(move |stream| {
        client_waits.after(0);
        let session = rustls::ServerConnection::new(config.clone()).unwrap();
        let mut reader = BufReader::new(rustls::StreamOwned::new(session, stream));
        while read_request(&mut reader) {
            if reader.get_mut().write_all(OK).is_err() {
                return;
            }
        }
    })
}

#[test]
fn a_cooperative_tls_exchange_handshakes_and_reads_through_the_recorder() {
    let host = Host::cooperative();
    let port = tls_keep_alive_server(host.read_waits.clone());
    let plan = plan(
        &format!("GET https://127.0.0.1:{port}/\n"),
        Duration::from_millis(900),
    );
    let config = crate::tls::build(None, false).unwrap();
    let rec = host.recorder();
    let mut client = Client::new(&plan, Some(config));
    let ok = Ok(Reply {
        status: 200,
        missing: None,
    });
    assert_eq!(
        client.exchange(&rec, &plan, &plan.requests[0], 0, &mut Vec::new()),
        ok
    );
    assert!(is_nonblocking(&client));
    let first = host.waits();
    // The handshake waited to read the server's flight, then the response
    // (and perhaps again, for the session tickets before it).
    let reads = first.iter().filter(|(writable, _)| !writable).count();
    assert!(reads >= 2, "{first:?}");
    for _ in 0..3 {
        assert_eq!(
            client.exchange(&rec, &plan, &plan.requests[0], 0, &mut Vec::new()),
            ok
        );
    }
    // Kept alive: no new handshake, one wait per response.
    let later = &host.waits()[first.len()..];
    assert_eq!(later.len(), 3, "{later:?}");
    assert!(
        later
            .iter()
            .all(|(w, left)| !w && is_left_of(*left, Duration::from_millis(900))),
        "{later:?}"
    );
}
