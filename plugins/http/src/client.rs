//! One lane's HTTP/1.1 client: a keep-alive connection per server over
//! `std::net::TcpStream`, plain or TLS (rustls), and buffers reused from
//! call to call.
//!
//! A call writes the whole request with one `write` and reads the response
//! with as few `read`s as it arrives in; nothing is allocated once the
//! buffers have grown to the size of the responses. docs/architecture.md
//! says why this beats an async client here. The response framing is
//! [`http1`]'s, over the [`Wire`] of either transport.
//!
//! Two modes, chosen per call by [`Recorder::is_cooperative`]:
//!
//! - on a plain thread, the socket blocks, with `SO_RCVTIMEO`/`SO_SNDTIMEO`
//!   set before each `write`/`read` to what is left of the request's
//!   deadline ([`Deadline`]): one `sendto` and one `recvfrom` per request,
//!   each after a `setsockopt`;
//! - on a fiber (`gorgon run --fibers N`), the socket is non-blocking and
//!   every wait goes through [`Recorder::wait`] with the time left, so
//!   the thread serves its other fibers meanwhile and one `epoll_wait`
//!   serves them all, as wrk does ([`Waiter::Cooperative`]). TLS runs the same way: rustls reads
//!   and writes records through the non-blocking socket
//!   (`read_tls`/`write_tls`) and the wire waits when it says "would block".

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gorgon_plugin_api::{Interest, Recorder};
use rustls::pki_types::ServerName;
use rustls::ClientConnection;

use crate::capture;
use crate::http1::{self, ReadError};
use crate::plan::{CaptureFrom, Plan, Request};
use crate::template::push_decimal;
use crate::tls;
use crate::url::{Scheme, Server};

/// A failed exchange, as the short result label the report shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    ConnectRefused,
    ConnectTimeout,
    ConnectError,
    DnsError,
    Timeout,
    Reset,
    Closed,
    BadResponse,
    IoError,
    /// A TLS failure, saying why: `tls: unknown issuer for api.test`.
    Tls(Arc<str>),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::ConnectRefused => "connect refused",
            ErrorKind::ConnectTimeout => "connect timeout",
            ErrorKind::ConnectError => "connect error",
            ErrorKind::DnsError => "dns error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "connection reset",
            ErrorKind::Closed => "connection closed",
            ErrorKind::BadResponse => "bad response",
            ErrorKind::IoError => "io error",
            ErrorKind::Tls(why) => why,
        })
    }
}

impl ErrorKind {
    fn tls(why: impl fmt::Display) -> ErrorKind {
        ErrorKind::Tls(why.to_string().into())
    }
}

/// What a response said that the caller needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// The slot of the first capture that found nothing (only looked at
    /// for a status below 400).
    pub missing: Option<usize>,
}

pub struct Client {
    connections: Vec<Option<Connection>>,
    /// Each server's resolved addresses, looked up once.
    addresses: Vec<Vec<SocketAddr>>,
    /// Each https server's TLS configuration (shared by the process) and
    /// the name its certificate must bear; `None` for plain http.
    secure: Vec<Option<(tls::Config, ServerName<'static>)>>,
    timeout: Duration,
    out: Vec<u8>,
    scratch: Vec<u8>,
    reader: http1::Reader,
    /// A body kept for a JSON capture.
    body: Vec<u8>,
}

/// When one request's exchange must be over: `timeout_ms` after it
/// started, whatever the server does meanwhile (a response trickled a byte
/// at a time still ends). Every wait, and on a thread every blocking read
/// or write, gets only what is left.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(Instant);

impl Deadline {
    pub(crate) fn after(timeout: Duration) -> Deadline {
        let now = Instant::now();
        // A timeout too large for the clock is as good as none.
        Deadline(
            now.checked_add(timeout)
                .unwrap_or_else(|| now + Duration::from_secs(u32::MAX as u64)),
        )
    }

    /// The time left, or `TimedOut` once none is.
    fn left(self) -> io::Result<Duration> {
        self.left_at(Instant::now())
    }

    pub(crate) fn left_at(self, now: Instant) -> io::Result<Duration> {
        match self.0.checked_duration_since(now) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request's timeout passed",
            )),
        }
    }
}

/// A kept-alive connection, and which mode its socket is in.
struct Connection {
    tcp: TcpStream,
    /// The TLS session over `tcp`, handshake done, for an https server.
    /// Boxed: it is large, and plain connections should not pay for it.
    tls: Option<Box<ClientConnection>>,
    /// Non-blocking, for waits through the recorder. A connection opened
    /// blocking (in setup, which runs off the fibers) is switched on its
    /// first cooperative use.
    nonblocking: bool,
}

impl Connection {
    /// Puts the socket in the mode a call needs. A blocking socket reads
    /// and writes under `SO_RCVTIMEO`/`SO_SNDTIMEO`; a non-blocking one
    /// ignores them, its waits carrying the timeout instead.
    fn set_mode(&mut self, nonblocking: bool, timeout: Duration) -> io::Result<()> {
        if self.nonblocking == nonblocking {
            return Ok(());
        }
        self.tcp.set_nonblocking(nonblocking)?;
        if !nonblocking {
            // Opened non-blocking, it never had them.
            self.tcp.set_read_timeout(Some(timeout))?;
            self.tcp.set_write_timeout(Some(timeout))?;
        }
        self.nonblocking = nonblocking;
        Ok(())
    }

    fn wire<'a>(&'a mut self, waiter: Waiter<'a>) -> Wire<'a> {
        let socket = Socket {
            tcp: &mut self.tcp,
            waiter,
            awaiting_reply: false,
        };
        match self.tls.as_deref_mut() {
            None => Wire::Plain(socket),
            Some(tls) => Wire::Tls(socket, tls),
        }
    }
}

/// What a socket operation that would block does.
#[derive(Clone, Copy)]
enum Waiter<'a> {
    /// The socket blocks by itself, its `SO_RCVTIMEO`/`SO_SNDTIMEO` set to
    /// the time left before each read or write: "would block" only comes
    /// back when that ran out.
    Blocking { deadline: Deadline },
    /// Waits through the recorder: on a fiber, the fiber is suspended and
    /// the thread runs the others; each wait gets the time left.
    Cooperative {
        rec: &'a Recorder,
        deadline: Deadline,
    },
}

impl<'a> Waiter<'a> {
    fn new(cooperative: Option<&'a Recorder>, deadline: Deadline) -> Waiter<'a> {
        match cooperative {
            None => Waiter::Blocking { deadline },
            Some(rec) => Waiter::Cooperative { rec, deadline },
        }
    }
}

/// A connection's socket in the mode of the call.
struct Socket<'a> {
    tcp: &'a mut TcpStream,
    waiter: Waiter<'a>,
    /// A request has just been sent: its response is almost never there
    /// yet, so on a fiber the first read waits first instead of trying a
    /// `read` that would fail.
    awaiting_reply: bool,
}

impl Socket<'_> {
    fn wait(&self, interest: Interest) -> io::Result<()> {
        match self.waiter {
            Waiter::Blocking { .. } => Err(io::ErrorKind::TimedOut.into()),
            Waiter::Cooperative { rec, deadline } => {
                rec.wait(self.tcp.as_raw_fd(), interest, Some(deadline.left()?))
            }
        }
    }

    /// On a thread, bounds the blocking read or write about to run by the
    /// time left; nothing on a fiber, whose waits carry it.
    fn bound(&self, interest: Interest) -> io::Result<()> {
        if let Waiter::Blocking { deadline } = self.waiter {
            let left = Some(deadline.left()?);
            match interest {
                Interest::Writable => self.tcp.set_write_timeout(left)?,
                Interest::Readable => self.tcp.set_read_timeout(left)?,
            }
        }
        Ok(())
    }

    /// Runs `op` on the socket, waiting each time it would block.
    fn retry<T>(
        &mut self,
        interest: Interest,
        mut op: impl FnMut(&mut TcpStream) -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            self.bound(interest)?;
            match op(self.tcp) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(interest)?,
                other => return other,
            }
        }
    }

    /// The wait before the first read of a response, on a fiber.
    fn await_reply(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.awaiting_reply) {
            self.wait(Interest::Readable)?;
        }
        Ok(())
    }

    /// Writes what TLS records `tls` has queued.
    fn send_records(&mut self, tls: &mut ClientConnection) -> io::Result<()> {
        while tls.wants_write() {
            if self.retry(Interest::Writable, |tcp| tls.write_tls(tcp))? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Reads TLS records from the socket and has rustls decrypt them (and
    /// answer, if it must); how many bytes came, 0 at the end of the
    /// stream.
    fn receive_records(&mut self, tls: &mut ClientConnection) -> io::Result<usize> {
        self.await_reply()?;
        let read = self.retry(Interest::Readable, |tcp| tls.read_tls(tcp))?;
        if let Err(error) = tls.process_new_packets() {
            // rustls queued an alert saying why; the peer may read it.
            let _ = tls.write_tls(self.tcp);
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
        self.send_records(tls)?;
        Ok(read)
    }

    /// Completes a TLS handshake: the client speaks first, then reads and
    /// writes as rustls asks until it is done.
    fn handshake(&mut self, tls: &mut ClientConnection) -> io::Result<()> {
        while tls.is_handshaking() {
            if tls.wants_write() {
                self.send_records(tls)?;
            } else if self.receive_records(tls)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        self.send_records(tls)
    }
}

/// A connection's byte stream, plain or TLS, in either mode: what
/// [`http1`] reads responses from and requests are written to.
enum Wire<'a> {
    Plain(Socket<'a>),
    Tls(Socket<'a>, &'a mut ClientConnection),
}

impl Wire<'_> {
    /// The TLS handshake, on a new connection; nothing for plain HTTP.
    fn handshake(&mut self) -> io::Result<()> {
        match self {
            Wire::Plain(_) => Ok(()),
            Wire::Tls(socket, tls) => socket.handshake(tls),
        }
    }

    /// Says that a request has just been sent (see
    /// [`Socket::awaiting_reply`]).
    fn expect_reply(&mut self) {
        let (Wire::Plain(socket) | Wire::Tls(socket, _)) = self;
        socket.awaiting_reply = matches!(socket.waiter, Waiter::Cooperative { .. });
    }
}

impl Read for Wire<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(socket) => {
                socket.await_reply()?;
                socket.retry(Interest::Readable, |tcp| tcp.read(buf))
            }
            Wire::Tls(socket, tls) => loop {
                match tls.reader().read(buf) {
                    // At the end of the stream rustls says so here (`Ok(0)`
                    // after a close_notify, `UnexpectedEof` without), so
                    // the loop ends.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        socket.receive_records(tls)?;
                    }
                    other => return other,
                }
            },
        }
    }
}

impl Write for Wire<'_> {
    /// Tries first: a socket's send buffer almost always has room.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(socket) => socket.retry(Interest::Writable, |tcp| tcp.write(buf)),
            Wire::Tls(socket, tls) => {
                let taken = tls.writer().write(buf)?;
                socket.send_records(tls)?;
                Ok(taken)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A connection that could not be opened: its label, and a phrase for a
/// setup message.
struct ConnectFailure {
    kind: ErrorKind,
    detail: String,
    /// What the user can do about it, for the setup message.
    hint: &'static str,
}

/// The way out of any failed connection in setup.
const COUNT_FAILURES: &str = "--set connect_at_start=false to count failed connections as results";

impl ConnectFailure {
    fn io(kind: ErrorKind, error: &io::Error) -> ConnectFailure {
        let text = error.to_string();
        let text = text
            .split(" (os error")
            .next()
            .unwrap_or(&text)
            .to_lowercase();
        let detail = if kind == ErrorKind::DnsError {
            format!("cannot resolve the host name ({text})")
        } else {
            text
        };
        ConnectFailure {
            kind,
            detail,
            hint: "start it, or",
        }
    }

    fn tls(kind: ErrorKind) -> ConnectFailure {
        let hint = match &kind {
            ErrorKind::Tls(why) if why.contains("unknown issuer") => {
                "give its CA with --set tls_ca=FILE, --set tls_verify=false to skip the check, or"
            }
            _ => "",
        };
        ConnectFailure {
            detail: kind.to_string(),
            kind,
            hint,
        }
    }
}

impl Client {
    /// A client for the servers of `plan`; `tls` is the process's TLS
    /// configuration, present when some server speaks https.
    pub fn new(plan: &Plan, tls: Option<tls::Config>) -> Client {
        let secure = plan
            .servers
            .iter()
            .map(|target| match (target.server.scheme, &tls) {
                (Scheme::Https, Some(config)) => tls::server_name(&target.server.host)
                    .ok()
                    .map(|name| (config.clone(), name)),
                _ => None,
            })
            .collect();
        Client {
            connections: (0..plan.servers.len()).map(|_| None).collect(),
            addresses: vec![Vec::new(); plan.servers.len()],
            secure,
            timeout: plan.options.timeout,
            out: Vec::with_capacity(1024),
            scratch: Vec::new(),
            reader: http1::Reader::default(),
            body: Vec::new(),
        }
    }

    /// Opens a connection to every server of the plan, or says which one
    /// cannot be reached; each gets `timeout_ms`.
    pub fn connect_all(&mut self, plan: &Plan) -> Result<(), String> {
        for (index, target) in plan.servers.iter().enumerate() {
            if self.connections[index].is_some() {
                continue;
            }
            let deadline = Deadline::after(self.timeout);
            self.connect(index, &target.server, None, deadline)
                .map_err(|failure| {
                let Server { host, port, .. } = &target.server;
                let hint = failure.hint;
                let space = if hint.is_empty() { "" } else { " " };
                format!(
                    "cannot reach {host}:{port}, the server of {}: {}; {hint}{space}{COUNT_FAILURES}",
                    target.first_use, failure.detail
                )
            })?;
        }
        Ok(())
    }

    /// Connects to `server`, and for https completes the TLS handshake:
    /// blocking, or when `cooperative` gives a recorder, without blocking
    /// and waiting through it.
    fn connect(
        &mut self,
        index: usize,
        server: &Server,
        cooperative: Option<&Recorder>,
        deadline: Deadline,
    ) -> Result<(), ConnectFailure> {
        let tcp = self.connect_tcp(index, server, cooperative, deadline)?;
        let tls = match (server.scheme, &self.secure[index]) {
            (Scheme::Http, _) => None,
            (Scheme::Https, None) => {
                return Err(ConnectFailure::tls(ErrorKind::tls(format_args!(
                    "tls: `{}` is not a name a certificate can be checked against",
                    server.host
                ))))
            }
            (Scheme::Https, Some((config, name))) => Some(Box::new(
                ClientConnection::new(config.clone(), name.clone())
                    .map_err(|e| ConnectFailure::tls(tls_kind(&e, &server.host)))?,
            )),
        };
        let mut connection = Connection {
            tcp,
            tls,
            nonblocking: cooperative.is_some(),
        };
        connection
            .wire(Waiter::new(cooperative, deadline))
            .handshake()
            .map_err(|e| ConnectFailure::tls(handshake_kind(&e, &server.host)))?;
        self.connections[index] = Some(connection);
        Ok(())
    }

    fn connect_tcp(
        &mut self,
        index: usize,
        server: &Server,
        cooperative: Option<&Recorder>,
        deadline: Deadline,
    ) -> Result<TcpStream, ConnectFailure> {
        if self.addresses[index].is_empty() {
            let found = (server.host.as_str(), server.port)
                .to_socket_addrs()
                .map_err(|e| ConnectFailure::io(ErrorKind::DnsError, &e))?;
            self.addresses[index] = found.collect();
        }
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
        for address in &self.addresses[index] {
            let connected = deadline.left().and_then(|left| match cooperative {
                None => TcpStream::connect_timeout(address, left),
                Some(rec) => connect_nonblocking(address, rec, left),
            });
            match connected {
                Ok(stream) => {
                    let configured = match cooperative {
                        None => stream
                            .set_nodelay(true)
                            .and_then(|()| stream.set_read_timeout(Some(self.timeout)))
                            .and_then(|()| stream.set_write_timeout(Some(self.timeout))),
                        Some(_) => stream.set_nodelay(true),
                    };
                    configured.map_err(|e| ConnectFailure::io(ErrorKind::ConnectError, &e))?;
                    return Ok(stream);
                }
                Err(error) => last = error,
            }
        }
        let kind = match last.kind() {
            io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ErrorKind::ConnectTimeout,
            _ => ErrorKind::ConnectError,
        };
        Err(ConnectFailure::io(kind, &last))
    }

    /// Sends `request` and reads its response, filling the request's
    /// captures into `vars`. On a fiber (`rec.is_cooperative()`), every
    /// wait goes through `rec`.
    pub fn exchange(
        &mut self,
        rec: &Recorder,
        plan: &Plan,
        request: &Request,
        number: u64,
        vars: &mut [String],
    ) -> Result<Reply, ErrorKind> {
        let cooperative = rec.is_cooperative().then_some(rec);
        let deadline = Deadline::after(self.timeout);
        self.render(request, number, vars);
        let index = request.target;
        let server = &plan.servers[index].server;
        for attempt in 0..2 {
            let reused = self.connections[index].is_some();
            if !reused {
                self.connect(index, server, cooperative, deadline)
                    .map_err(|failure| failure.kind)?;
            }
            match self.send_and_read(cooperative, deadline, index, request, vars) {
                Ok(reply) => return Ok(reply),
                Err(error) => {
                    self.connections[index] = None;
                    // A kept-alive connection the server closed while idle
                    // fails before any answer: try once on a new one.
                    if !(reused && error.nothing_read() && attempt == 0) {
                        return Err(read_kind(error, &server.host));
                    }
                }
            }
        }
        unreachable!("the second attempt always returns")
    }

    fn render(&mut self, request: &Request, number: u64, vars: &[String]) {
        self.out.clear();
        request.head.render(&mut self.out, number, vars);
        if let Some(body) = &request.body {
            self.scratch.clear();
            body.render(&mut self.scratch, number, vars);
            self.out.extend_from_slice(b"Content-Length: ");
            push_decimal(&mut self.out, self.scratch.len() as u64);
            self.out.extend_from_slice(b"\r\n\r\n");
            self.out.extend_from_slice(&self.scratch);
        }
    }

    /// Writes the rendered request on the connection to server `index` and
    /// reads its response; drops the connection if it cannot carry another
    /// request.
    fn send_and_read(
        &mut self,
        cooperative: Option<&Recorder>,
        deadline: Deadline,
        index: usize,
        request: &Request,
        vars: &mut [String],
    ) -> Result<Reply, ReadError> {
        let Some(connection) = self.connections[index].as_mut() else {
            unreachable!("connected by the caller")
        };
        let unsent = |error: io::Error| ReadError::Io {
            error,
            nothing_read: true,
        };
        connection
            .set_mode(cooperative.is_some(), self.timeout)
            .map_err(unsent)?;
        let mut wire = connection.wire(Waiter::new(cooperative, deadline));
        wire.write_all(&self.out).map_err(unsent)?;
        wire.expect_reply();
        let head = self.reader.read_head(&mut wire, request.head_method)?;
        let status = head.status;
        let mut missing = None;
        if status < 400 {
            for capture in &request.captures {
                if let CaptureFrom::Header(name) = &capture.from {
                    match capture::header(self.reader.head_bytes(&head), name) {
                        Some(value) => vars[capture.slot] = value,
                        None => missing = missing.or(Some(capture.slot)),
                    }
                }
                if let CaptureFrom::Cookies = &capture.from {
                    capture::keep_cookies(self.reader.head_bytes(&head), &mut vars[capture.slot]);
                }
            }
        }
        let keep = request.keep_body && status < 400;
        self.body.clear();
        let reusable = self
            .reader
            .read_body(&mut wire, &head, keep.then_some(&mut self.body))?;
        if !reusable {
            self.connections[index] = None;
        }
        if keep && missing.is_none() {
            missing = json_captures(request, &self.body, vars);
        }
        Ok(Reply { status, missing })
    }
}

/// Connects without blocking the thread: `connect` on a non-blocking
/// socket, a wait for it to become writable (connected or failed), then
/// its pending error, if any.
fn connect_nonblocking(
    address: &SocketAddr,
    rec: &Recorder,
    timeout: Duration,
) -> io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(*address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    match socket.connect(&(*address).into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
            rec.wait(socket.as_raw_fd(), Interest::Writable, Some(timeout))?;
            if let Some(error) = socket.take_error()? {
                return Err(error);
            }
        }
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

/// Fills the JSON captures of `request` from `body`; the slot of the first
/// that found nothing.
fn json_captures(request: &Request, body: &[u8], vars: &mut [String]) -> Option<usize> {
    let document: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    for capture in &request.captures {
        if let CaptureFrom::Json(path) = &capture.from {
            match document.as_ref().and_then(|d| path.find(d)) {
                Some(value) => vars[capture.slot] = value,
                None => return Some(capture.slot),
            }
        }
    }
    None
}

/// The rustls error an I/O error of a TLS wire carries, if any.
fn rustls_error(error: &io::Error) -> Option<&rustls::Error> {
    error.get_ref()?.downcast_ref::<rustls::Error>()
}

fn tls_kind(error: &rustls::Error, host: &str) -> ErrorKind {
    ErrorKind::tls(tls::Failure { error, host })
}

/// A failed handshake's label: TLS always says so, whatever failed.
fn handshake_kind(error: &io::Error, host: &str) -> ErrorKind {
    if let Some(error) = rustls_error(error) {
        return tls_kind(error, host);
    }
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            ErrorKind::tls("tls: handshake timeout")
        }
        io::ErrorKind::UnexpectedEof => ErrorKind::tls(format_args!(
            "tls: {host} closed the connection in the handshake"
        )),
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => ErrorKind::tls(format_args!(
            "tls: {host} reset the connection in the handshake"
        )),
        _ => ErrorKind::tls(format_args!(
            "tls: handshake failed ({})",
            ConnectFailure::io(ErrorKind::IoError, error).detail
        )),
    }
}

/// A failed exchange's label.
fn read_kind(error: ReadError, host: &str) -> ErrorKind {
    match error {
        ReadError::Closed { .. } => ErrorKind::Closed,
        ReadError::Malformed => ErrorKind::BadResponse,
        ReadError::Io { error, .. } => match rustls_error(&error) {
            Some(tls) => tls_kind(tls, host),
            None => io_kind(&error),
        },
    }
}

fn io_kind(error: &io::Error) -> ErrorKind {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ErrorKind::Timeout,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => ErrorKind::Reset,
        io::ErrorKind::UnexpectedEof => ErrorKind::Closed,
        _ => ErrorKind::IoError,
    }
}

#[cfg(test)]
mod tests;
