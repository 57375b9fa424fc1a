//! HTTP/1.1 response framing over any byte stream: the head, then a body
//! delimited by `Content-Length`, by chunks, or by the end of the stream.
//!
//! It knows nothing of sockets or TLS: it reads from any [`Read`], so the
//! plain and the TLS transports share it, and the tests feed it responses
//! cut at random places. `httparse` parses the head and each chunk-size
//! line: it is the parser hyper uses, fuzzed for years, and does not
//! allocate. The body is read through a reused buffer and dropped unless
//! the caller asks to keep it (a JSON capture needs it); nothing read is
//! held past the next response.

use std::io::{self, Read};
use std::mem::MaybeUninit;

/// The most a response head (or a chunked body's trailer) may take before
/// the response is called malformed.
pub const MAX_HEAD: usize = 64 * 1024;
/// The most of a body kept for a capture.
pub const MAX_KEPT_BODY: usize = 64 * 1024 * 1024;
/// A chunk-size line longer than this (extensions included) is malformed.
const MAX_CHUNK_LINE: usize = 1024;
const MAX_HEADERS: usize = 64;
const INITIAL_BUFFER: usize = 16 * 1024;

/// Why a response could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The stream ended before the response did. `nothing_read`: not a
    /// byte of it came, so on a kept-alive connection the server had
    /// closed it while idle and the request may be sent again.
    Closed { nothing_read: bool },
    /// The stream failed (a timeout, a reset, a TLS error).
    Io {
        error: io::Error,
        nothing_read: bool,
    },
    /// The bytes are not an HTTP/1.1 response, or one too large to keep.
    Malformed,
}

impl ReadError {
    /// Nothing of the response arrived: see [`ReadError::Closed`].
    pub fn nothing_read(&self) -> bool {
        match self {
            ReadError::Closed { nothing_read } | ReadError::Io { nothing_read, .. } => {
                *nothing_read
            }
            ReadError::Malformed => false,
        }
    }
}

/// How a response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A parsed response head; its bytes stay at the front of the reader's
/// buffer until the body is read ([`Reader::head_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    len: usize,
    body: BodyKind,
    /// `Connection: close`, or an HTTP/1.0 response without keep-alive.
    close: bool,
}

impl Head {
    /// How the body is delimited.
    #[cfg(test)]
    pub fn body(&self) -> BodyKind {
        self.body
    }
}

/// Reads responses one after the other through one reused buffer.
pub struct Reader {
    /// The whole length is usable; `pos..end` is read but not consumed.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

impl Default for Reader {
    fn default() -> Reader {
        Reader {
            buf: vec![0; INITIAL_BUFFER],
            pos: 0,
            end: 0,
        }
    }
}

impl Reader {
    /// Reads until a whole response head is in, skipping interim `1xx`
    /// responses. `head_request`: the request was a `HEAD`, so the
    /// response has no body whatever its headers say.
    pub fn read_head<S: Read>(
        &mut self,
        stream: &mut S,
        head_request: bool,
    ) -> Result<Head, ReadError> {
        self.pos = 0;
        self.end = 0;
        loop {
            if self.end > 0 {
                if let Some(head) = self.parse_head(head_request)? {
                    if (100..200).contains(&head.status) && head.status != 101 {
                        self.buf.copy_within(head.len..self.end, 0);
                        self.end -= head.len;
                        continue;
                    }
                    self.pos = head.len;
                    return Ok(head);
                }
                if self.end >= MAX_HEAD {
                    return Err(ReadError::Malformed);
                }
            }
            let nothing_read = self.end == 0;
            self.fill(stream).map_err(|error| match error {
                // The server closed or reset the connection without a
                // word: it had closed it while idle.
                ReadError::Closed { .. } => ReadError::Closed { nothing_read },
                ReadError::Io { error, .. } => {
                    let reset = matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                    );
                    ReadError::Io {
                        error,
                        nothing_read: nothing_read && reset,
                    }
                }
                other => other,
            })?;
        }
    }

    /// The head's bytes, for header captures.
    pub fn head_bytes(&self, head: &Head) -> &[u8] {
        &self.buf[..head.len]
    }

    /// Parses `buf[..end]` as a head: `None` while it is incomplete.
    fn parse_head(&self, head_request: bool) -> Result<Option<Head>, ReadError> {
        // Uninitialised: zeroing 64 headers would cost more than parsing
        // a short response.
        let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            &self.buf[..self.end],
            &mut headers,
        ) {
            Ok(httparse::Status::Complete(len)) => framing(&response, len, head_request).map(Some),
            Ok(httparse::Status::Partial) => Ok(None),
            Err(_) => Err(ReadError::Malformed),
        }
    }

    /// Reads the body of `head`, appending it to `keep` if given; returns
    /// whether the connection can carry another request: not after
    /// `Connection: close` or a body delimited by the close, nor when bytes
    /// beyond the response arrived (the stream is out of step).
    pub fn read_body<S: Read>(
        &mut self,
        stream: &mut S,
        head: &Head,
        mut keep: Option<&mut Vec<u8>>,
    ) -> Result<bool, ReadError> {
        match head.body {
            BodyKind::None => {}
            BodyKind::Length(length) => {
                if keep.is_some() && length > MAX_KEPT_BODY as u64 {
                    return Err(ReadError::Malformed);
                }
                self.consume(stream, length, keep)?;
            }
            BodyKind::Chunked => self.read_chunks(stream, keep)?,
            BodyKind::UntilClose => {
                loop {
                    let available = (self.end - self.pos) as u64;
                    self.consume(stream, available, keep.as_deref_mut())?;
                    match self.fill(stream) {
                        Ok(()) => {}
                        Err(ReadError::Closed { .. }) => break,
                        Err(error) => return Err(error),
                    }
                }
                return Ok(false);
            }
        }
        Ok(!head.close && self.pos == self.end)
    }

    /// Reads a chunked body: size lines, data, then the trailer.
    fn read_chunks<S: Read>(
        &mut self,
        stream: &mut S,
        mut keep: Option<&mut Vec<u8>>,
    ) -> Result<(), ReadError> {
        loop {
            let (line, size) = loop {
                match httparse::parse_chunk_size(&self.buf[self.pos..self.end]) {
                    Ok(httparse::Status::Complete(found)) => break found,
                    Ok(httparse::Status::Partial) if self.end - self.pos < MAX_CHUNK_LINE => {
                        self.more(stream)?;
                    }
                    _ => return Err(ReadError::Malformed),
                }
            };
            self.pos += line;
            if size == 0 {
                return self.read_trailer(stream);
            }
            self.consume(stream, size, keep.as_deref_mut())?;
            while self.end - self.pos < 2 {
                self.more(stream)?;
            }
            if &self.buf[self.pos..self.pos + 2] != b"\r\n" {
                return Err(ReadError::Malformed);
            }
            self.pos += 2;
        }
    }

    /// Reads the trailer fields after the last chunk, up to the empty line.
    fn read_trailer<S: Read>(&mut self, stream: &mut S) -> Result<(), ReadError> {
        loop {
            let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match httparse::parse_headers(&self.buf[self.pos..self.end], &mut fields) {
                Ok(httparse::Status::Complete((len, _))) => {
                    self.pos += len;
                    return Ok(());
                }
                Ok(httparse::Status::Partial) if self.end - self.pos < MAX_HEAD => {
                    self.more(stream)?;
                }
                _ => return Err(ReadError::Malformed),
            }
        }
    }

    /// Reads past `length` bytes of body, appending them to `keep`.
    fn consume<S: Read>(
        &mut self,
        stream: &mut S,
        length: u64,
        mut keep: Option<&mut Vec<u8>>,
    ) -> Result<(), ReadError> {
        let mut remaining = length;
        while remaining > 0 {
            if self.pos == self.end {
                self.pos = 0;
                self.end = 0;
                self.fill(stream)?;
            }
            let take = remaining.min((self.end - self.pos) as u64) as usize;
            if let Some(body) = keep.as_deref_mut() {
                if body.len() + take > MAX_KEPT_BODY {
                    return Err(ReadError::Malformed);
                }
                body.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            }
            self.pos += take;
            remaining -= take as u64;
        }
        Ok(())
    }

    /// Moves what is unread to the front and reads more after it.
    fn more<S: Read>(&mut self, stream: &mut S) -> Result<(), ReadError> {
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        self.fill(stream)
    }

    /// Reads more into `buf[end..]`, growing it when full (only a head or
    /// a trailer can fill it, and both are bounded). The end of the stream
    /// is an error: every caller still expects bytes.
    fn fill<S: Read>(&mut self, stream: &mut S) -> Result<(), ReadError> {
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            return match stream.read(&mut self.buf[self.end..]) {
                Ok(0) => Err(ReadError::Closed {
                    nothing_read: false,
                }),
                Ok(n) => {
                    self.end += n;
                    Ok(())
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // A TLS stream that ends without its close_notify.
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                    Err(ReadError::Closed {
                        nothing_read: false,
                    })
                }
                Err(error) => Err(ReadError::Io {
                    error,
                    nothing_read: false,
                }),
            };
        }
    }
}

/// Where the body of a parsed head is and what happens to the connection
/// after it.
fn framing(
    response: &httparse::Response<'_, '_>,
    len: usize,
    head_request: bool,
) -> Result<Head, ReadError> {
    let status = response.code.ok_or(ReadError::Malformed)?;
    let mut close = response.version == Some(0);
    let mut length = None;
    let mut chunked = false;
    for header in response.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value)
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .ok_or(ReadError::Malformed)?;
            if length.is_some_and(|known| known != value) {
                return Err(ReadError::Malformed);
            }
            length = Some(value);
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
    let body = if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
        BodyKind::None
    } else if chunked {
        BodyKind::Chunked
    } else if let Some(length) = length {
        BodyKind::Length(length)
    } else {
        BodyKind::UntilClose
    };
    Ok(Head {
        status,
        len,
        body,
        close,
    })
}

fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests;
