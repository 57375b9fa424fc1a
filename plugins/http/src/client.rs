//! One lane's HTTP/1.1 client: a keep-alive connection per server over
//! `std::net::TcpStream`, and buffers reused from call to call.
//!
//! A call writes the whole request with one `write` and reads the response
//! with as few `read`s as it arrives in; nothing is allocated once the
//! buffers have grown to the size of the responses. docs/architecture.md
//! says why this beats an async client here.
//!
//! Two modes, chosen per call by [`Recorder::is_cooperative`]:
//!
//! - on a plain thread, the socket blocks, with `SO_RCVTIMEO`/`SO_SNDTIMEO`
//!   as the timeout: one `sendto` and one `recvfrom` per request;
//! - on a fiber (`gorgon run --fibers N`), the socket is non-blocking and
//!   every wait goes through [`Recorder::wait`], so the thread serves its
//!   other fibers meanwhile and one `epoll_wait` serves them all, as wrk
//!   does ([`Cooperative`]).

use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::Duration;

use gorgon_plugin_api::{Interest, Recorder};

use crate::capture;
use crate::plan::{CaptureFrom, Plan, Request};
use crate::template::push_decimal;
use crate::url::Server;

/// A failed exchange, as the short result label the report shows.
pub type ErrorKind = &'static str;

pub const CONNECT_REFUSED: ErrorKind = "connect refused";
pub const CONNECT_TIMEOUT: ErrorKind = "connect timeout";
pub const CONNECT_ERROR: ErrorKind = "connect error";
pub const DNS_ERROR: ErrorKind = "dns error";
pub const TIMEOUT: ErrorKind = "timeout";
pub const RESET: ErrorKind = "connection reset";
pub const CLOSED: ErrorKind = "connection closed";
pub const BAD_RESPONSE: ErrorKind = "bad response";
pub const IO_ERROR: ErrorKind = "io error";

/// The most a response head may take before it is called bad.
const MAX_HEAD: usize = 64 * 1024;
/// The most of a body kept for a JSON capture.
const MAX_KEPT_BODY: usize = 64 * 1024 * 1024;
const MAX_HEADERS: usize = 64;

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
    timeout: Duration,
    buffers: Buffers,
}

/// A kept-alive connection, and which mode its socket is in.
struct Connection {
    stream: TcpStream,
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
        self.stream.set_nonblocking(nonblocking)?;
        if !nonblocking {
            // Opened non-blocking, it never had them.
            self.stream.set_read_timeout(Some(timeout))?;
            self.stream.set_write_timeout(Some(timeout))?;
        }
        self.nonblocking = nonblocking;
        Ok(())
    }
}

/// The buffers a call reuses.
struct Buffers {
    out: Vec<u8>,
    scratch: Vec<u8>,
    /// The read buffer; its whole length is usable.
    input: Vec<u8>,
    /// A chunked body, decoded, when a capture needs it.
    body: Vec<u8>,
}

/// A non-blocking stream whose reads and writes wait through the
/// recorder: on a fiber, a wait suspends the fiber and lets the thread run
/// the others.
struct Cooperative<'a> {
    stream: &'a mut TcpStream,
    rec: &'a Recorder,
    /// Per wait, like `SO_RCVTIMEO` per read in blocking mode.
    timeout: Duration,
    /// A request has just been sent: its response is almost never there
    /// yet, so the first read waits first instead of trying a `read` that
    /// would fail.
    awaiting_reply: bool,
}

impl Cooperative<'_> {
    fn wait(&self, interest: Interest) -> io::Result<()> {
        self.rec
            .wait(self.stream.as_raw_fd(), interest, Some(self.timeout))
    }
}

impl Read for Cooperative<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if std::mem::take(&mut self.awaiting_reply) {
            self.wait(Interest::Readable)?;
        }
        loop {
            match self.stream.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(Interest::Readable)?,
                other => return other,
            }
        }
    }
}

impl Write for Cooperative<'_> {
    /// Tries first: a socket's send buffer almost always has room.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.stream.write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(Interest::Writable)?,
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How a read of the response failed.
struct ReadError {
    kind: ErrorKind,
    /// Nothing at all came back: on a reused connection, the server had
    /// closed it while idle, and the request may be sent again.
    nothing_read: bool,
}

/// Where the body is and what happens to the connection after it.
struct Framing {
    status: u16,
    head_len: usize,
    close: bool,
    body: BodyKind,
}

enum BodyKind {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

impl Client {
    pub fn new(plan: &Plan) -> Client {
        Client {
            connections: (0..plan.servers.len()).map(|_| None).collect(),
            addresses: vec![Vec::new(); plan.servers.len()],
            timeout: plan.options.timeout,
            buffers: Buffers {
                out: Vec::with_capacity(1024),
                scratch: Vec::new(),
                input: vec![0; 16 * 1024],
                body: Vec::new(),
            },
        }
    }

    /// Opens a connection to every server of the plan, or says which one
    /// cannot be reached.
    pub fn connect_all(&mut self, plan: &Plan) -> Result<(), String> {
        for (index, target) in plan.servers.iter().enumerate() {
            if self.connections[index].is_some() {
                continue;
            }
            self.connect(index, &target.server, None)
                .map_err(|(kind, error)| {
                    let Server { host, port, .. } = &target.server;
                    format!(
                        "cannot reach {host}:{port}, the server of {}: {}; start it, or --set \
                     connect_at_start=false to count failed connections as results",
                        target.first_use,
                        describe(kind, &error)
                    )
                })?;
        }
        Ok(())
    }

    /// Connects to `server`: blocking, or when `cooperative` gives a
    /// recorder, without blocking and waiting through it.
    fn connect(
        &mut self,
        index: usize,
        server: &Server,
        cooperative: Option<&Recorder>,
    ) -> Result<(), (ErrorKind, io::Error)> {
        if self.addresses[index].is_empty() {
            let found = (server.host.as_str(), server.port)
                .to_socket_addrs()
                .map_err(|e| (DNS_ERROR, e))?;
            self.addresses[index] = found.collect();
        }
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
        for address in &self.addresses[index] {
            let connected = match cooperative {
                None => TcpStream::connect_timeout(address, self.timeout),
                Some(rec) => connect_nonblocking(address, rec, self.timeout),
            };
            match connected {
                Ok(stream) => {
                    let configured = match cooperative {
                        None => stream
                            .set_nodelay(true)
                            .and_then(|()| stream.set_read_timeout(Some(self.timeout)))
                            .and_then(|()| stream.set_write_timeout(Some(self.timeout))),
                        Some(_) => stream.set_nodelay(true),
                    };
                    configured.map_err(|e| (CONNECT_ERROR, e))?;
                    self.connections[index] = Some(Connection {
                        stream,
                        nonblocking: cooperative.is_some(),
                    });
                    return Ok(());
                }
                Err(error) => last = error,
            }
        }
        let kind = match last.kind() {
            io::ErrorKind::ConnectionRefused => CONNECT_REFUSED,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => CONNECT_TIMEOUT,
            _ => CONNECT_ERROR,
        };
        Err((kind, last))
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
        self.buffers.render(request, number, vars);
        let index = request.target;
        for attempt in 0..2 {
            let reused = self.connections[index].is_some();
            if !reused {
                self.connect(index, &plan.servers[index].server, cooperative)
                    .map_err(|(kind, _)| kind)?;
            }
            match self.send_and_read(cooperative, index, request, vars) {
                Ok(reply) => return Ok(reply),
                Err(error) => {
                    self.connections[index] = None;
                    // A kept-alive connection the server closed while idle
                    // fails before any answer: try once on a new one.
                    if !(reused && error.nothing_read && attempt == 0) {
                        return Err(error.kind);
                    }
                }
            }
        }
        unreachable!("the second attempt always returns")
    }

    fn send_and_read(
        &mut self,
        cooperative: Option<&Recorder>,
        index: usize,
        request: &Request,
        vars: &mut [String],
    ) -> Result<Reply, ReadError> {
        let Some(connection) = self.connections[index].as_mut() else {
            unreachable!("connected by the caller")
        };
        let mode_error = |e: io::Error| ReadError {
            kind: io_kind(&e),
            nothing_read: false,
        };
        let (reply, reusable) = match cooperative {
            None => {
                connection
                    .set_mode(false, self.timeout)
                    .map_err(mode_error)?;
                self.buffers
                    .round_trip(&mut connection.stream, request, vars)?
            }
            Some(rec) => {
                connection
                    .set_mode(true, self.timeout)
                    .map_err(mode_error)?;
                let mut stream = Cooperative {
                    stream: &mut connection.stream,
                    rec,
                    timeout: self.timeout,
                    awaiting_reply: true,
                };
                self.buffers.round_trip(&mut stream, request, vars)?
            }
        };
        if !reusable {
            self.connections[index] = None;
        }
        Ok(reply)
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

impl Buffers {
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

    /// Writes the rendered request on `stream` and reads its response;
    /// the reply, and whether the connection can carry another request.
    fn round_trip<S: Read + Write>(
        &mut self,
        stream: &mut S,
        request: &Request,
        vars: &mut [String],
    ) -> Result<(Reply, bool), ReadError> {
        stream.write_all(&self.out).map_err(|e| ReadError {
            kind: io_kind(&e),
            nothing_read: true,
        })?;
        let (framing, filled) = read_head(stream, &mut self.input)?;
        let status = framing.status;
        let mut missing = None;
        if status < 400 {
            for capture in &request.captures {
                if let CaptureFrom::Header(name) = &capture.from {
                    match capture::header(&self.input[..framing.head_len], name) {
                        Some(value) => vars[capture.slot] = value,
                        None => missing = missing.or(Some(capture.slot)),
                    }
                }
            }
        }
        let keep = request.keep_body && status < 400;
        let body = if request.head_method {
            BodyKind::None
        } else {
            framing.body
        };
        self.body.clear();
        let (body_range, leftover, until_close) = match body {
            BodyKind::None => (
                framing.head_len..framing.head_len,
                filled > framing.head_len,
                false,
            ),
            BodyKind::Length(length) => {
                let end = read_length(
                    stream,
                    &mut self.input,
                    framing.head_len,
                    filled,
                    length,
                    keep,
                )?;
                (framing.head_len..framing.head_len + length, end, false)
            }
            BodyKind::Chunked => {
                let leftover = read_chunked(
                    stream,
                    &mut self.input,
                    framing.head_len,
                    filled,
                    keep.then_some(&mut self.body),
                )?;
                (0..0, leftover, false)
            }
            BodyKind::UntilClose => {
                read_to_close(
                    stream,
                    &mut self.input[..],
                    framing.head_len,
                    filled,
                    keep.then_some(&mut self.body),
                )?;
                (0..0, false, true)
            }
        };
        // Bytes after the response mean the stream is out of step; a
        // `Connection: close` means the server will not read another.
        let reusable = !(framing.close || leftover || until_close);
        if keep && missing.is_none() {
            let body = match body {
                BodyKind::Length(_) => &self.input[body_range],
                _ => &self.body[..],
            };
            missing = json_captures(request, body, vars);
        }
        Ok((Reply { status, missing }, reusable))
    }
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

/// An error as a phrase: "connection refused", without "(os error 111)".
fn describe(kind: ErrorKind, error: &io::Error) -> String {
    let text = error.to_string();
    let text = text
        .split(" (os error")
        .next()
        .unwrap_or(&text)
        .to_lowercase();
    if kind == DNS_ERROR {
        format!("cannot resolve the host name ({text})")
    } else {
        text
    }
}

fn io_kind(error: &io::Error) -> ErrorKind {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => TIMEOUT,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => RESET,
        io::ErrorKind::UnexpectedEof => CLOSED,
        _ => IO_ERROR,
    }
}

fn bad_response() -> ReadError {
    ReadError {
        kind: BAD_RESPONSE,
        nothing_read: false,
    }
}

/// Reads more into `input[filled..]`, growing it when full. End of stream
/// is an error: every caller still expects bytes.
fn fill<S: Read>(stream: &mut S, input: &mut Vec<u8>, filled: &mut usize) -> Result<(), ReadError> {
    if *filled == input.len() {
        input.resize(input.len() * 2, 0);
    }
    match stream.read(&mut input[*filled..]) {
        Ok(0) => Err(ReadError {
            kind: CLOSED,
            nothing_read: false,
        }),
        Ok(n) => {
            *filled += n;
            Ok(())
        }
        Err(error) => Err(ReadError {
            kind: io_kind(&error),
            nothing_read: false,
        }),
    }
}

/// Reads until a whole response head is in `input`; returns its framing
/// and how many bytes of `input` are filled. Interim `1xx` responses are
/// skipped.
fn read_head<S: Read>(stream: &mut S, input: &mut Vec<u8>) -> Result<(Framing, usize), ReadError> {
    let mut filled = 0;
    loop {
        if filled > 0 {
            // Uninitialised: zeroing 64 headers would cost more than
            // parsing a short response.
            let mut headers =
                [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut []);
            match httparse::ParserConfig::default().parse_response_with_uninit_headers(
                &mut response,
                &input[..filled],
                &mut headers,
            ) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let framing = framing(&response, head_len)?;
                    if (100..200).contains(&framing.status) && framing.status != 101 {
                        input.copy_within(head_len..filled, 0);
                        filled -= head_len;
                        continue;
                    }
                    return Ok((framing, filled));
                }
                Ok(httparse::Status::Partial) if filled < MAX_HEAD => {}
                _ => return Err(bad_response()),
            }
        }
        fill(stream, input, &mut filled).map_err(|mut error| {
            // The server closed or reset the connection without a word:
            // it had closed it while idle.
            error.nothing_read = filled == 0 && matches!(error.kind, CLOSED | RESET);
            error
        })?;
    }
}

fn framing(response: &httparse::Response<'_, '_>, head_len: usize) -> Result<Framing, ReadError> {
    let status = response.code.ok_or_else(bad_response)?;
    let mut close = response.version == Some(0);
    let mut length = None;
    let mut chunked = false;
    for header in response.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(header.value).map_err(|_| bad_response())?;
            length = Some(text.trim().parse::<usize>().map_err(|_| bad_response())?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = contains_token(header.value, b"chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            if contains_token(header.value, b"close") {
                close = true;
            } else if contains_token(header.value, b"keep-alive") {
                close = false;
            }
        }
    }
    let body = if status == 204 || status == 304 || (100..200).contains(&status) {
        BodyKind::None
    } else if chunked {
        BodyKind::Chunked
    } else if let Some(length) = length {
        BodyKind::Length(length)
    } else {
        BodyKind::UntilClose
    };
    Ok(Framing {
        status,
        head_len,
        close,
        body,
    })
}

fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token))
}

/// Reads a body of `length` bytes that starts at `start`. Kept, it ends up
/// whole in `input`; otherwise it is read through and dropped. Returns
/// whether bytes beyond the body arrived.
fn read_length<S: Read>(
    stream: &mut S,
    input: &mut Vec<u8>,
    start: usize,
    mut filled: usize,
    length: usize,
    keep: bool,
) -> Result<bool, ReadError> {
    let end = start + length;
    if keep {
        if length > MAX_KEPT_BODY {
            return Err(bad_response());
        }
        if input.len() < end {
            input.resize(end, 0);
        }
        while filled < end {
            fill(stream, input, &mut filled)?;
        }
        return Ok(filled > end);
    }
    if filled >= end {
        return Ok(filled > end);
    }
    let mut remaining = end - filled;
    while remaining > 0 {
        let mut taken = 0;
        fill(stream, input, &mut taken)?;
        if taken > remaining {
            return Ok(true);
        }
        remaining -= taken;
    }
    Ok(false)
}

/// Reads a chunked body that starts at `pos`; appends its data to `keep`
/// if given. Returns whether bytes beyond the body arrived.
fn read_chunked<S: Read>(
    stream: &mut S,
    input: &mut Vec<u8>,
    mut pos: usize,
    mut filled: usize,
    mut keep: Option<&mut Vec<u8>>,
) -> Result<bool, ReadError> {
    // Moves what is unread to the front and reads more after it.
    let more = |input: &mut Vec<u8>, pos: &mut usize, filled: &mut usize, stream: &mut S| {
        input.copy_within(*pos..*filled, 0);
        *filled -= *pos;
        *pos = 0;
        fill(stream, input, filled)
    };
    let line_end = |input: &[u8], pos: usize, filled: usize| {
        input[pos..filled]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|i| pos + i)
    };
    loop {
        let end = loop {
            match line_end(input, pos, filled) {
                Some(end) => break end,
                None if filled - pos > 1024 => return Err(bad_response()),
                None => more(input, &mut pos, &mut filled, stream)?,
            }
        };
        let size_text = input[pos..end].split(|b| *b == b';').next().unwrap_or(b"");
        let size = std::str::from_utf8(size_text)
            .ok()
            .and_then(|t| usize::from_str_radix(t.trim(), 16).ok())
            .ok_or_else(bad_response)?;
        pos = end + 2;
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let end = loop {
                    match line_end(input, pos, filled) {
                        Some(end) => break end,
                        None if filled - pos > MAX_HEAD => return Err(bad_response()),
                        None => more(input, &mut pos, &mut filled, stream)?,
                    }
                };
                let empty = end == pos;
                pos = end + 2;
                if empty {
                    return Ok(filled > pos);
                }
            }
        }
        let mut remaining = size;
        while remaining > 0 {
            if pos == filled {
                more(input, &mut pos, &mut filled, stream)?;
            }
            let take = remaining.min(filled - pos);
            if let Some(body) = keep.as_deref_mut() {
                if body.len() + take > MAX_KEPT_BODY {
                    return Err(bad_response());
                }
                body.extend_from_slice(&input[pos..pos + take]);
            }
            pos += take;
            remaining -= take;
        }
        while filled - pos < 2 {
            more(input, &mut pos, &mut filled, stream)?;
        }
        if &input[pos..pos + 2] != b"\r\n" {
            return Err(bad_response());
        }
        pos += 2;
    }
}

/// Reads a body that ends when the server closes the connection.
fn read_to_close<S: Read>(
    stream: &mut S,
    input: &mut [u8],
    start: usize,
    filled: usize,
    mut keep: Option<&mut Vec<u8>>,
) -> Result<(), ReadError> {
    if let Some(body) = keep.as_deref_mut() {
        body.extend_from_slice(&input[start..filled]);
    }
    loop {
        match stream.read(input) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                if let Some(body) = keep.as_deref_mut() {
                    if body.len() + n > MAX_KEPT_BODY {
                        return Err(bad_response());
                    }
                    body.extend_from_slice(&input[..n]);
                }
            }
            Err(error) => {
                return Err(ReadError {
                    kind: io_kind(&error),
                    nothing_read: false,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
