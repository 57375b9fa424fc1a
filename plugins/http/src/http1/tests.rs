//! The framing against generated responses cut at random places: every
//! way a valid response can arrive parses to the same result, and cut
//! short, corrupted or random bytes fail cleanly (an error, never a panic
//! or a loop that does not end: the test stream ends, so a reader that
//! kept asking would get `Closed`).

use proptest::prelude::*;

use super::*;

/// A stream that hands out `data` in pieces of the given sizes, in turn.
struct Pieces<'a> {
    data: &'a [u8],
    sizes: &'a [usize],
    turn: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.sizes[self.turn % self.sizes.len()].max(1);
        self.turn += 1;
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// What reading one response gave: status, the kept body, reusable.
type Outcome = (u16, Vec<u8>, bool);

fn read(data: &[u8], sizes: &[usize], head_request: bool) -> Result<Outcome, ReadError> {
    let mut stream = Pieces {
        data,
        sizes,
        turn: 0,
    };
    let mut reader = Reader::default();
    let head = reader.read_head(&mut stream, head_request)?;
    let mut body = Vec::new();
    let reusable = reader.read_body(&mut stream, &head, Some(&mut body))?;
    Ok((head.status, body, reusable))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delimited {
    Length,
    /// Chunks of these sizes, at most (the last may be shorter).
    Chunked(usize),
    UntilClose,
}

/// A valid response and what reading it must give.
#[derive(Debug, Clone)]
struct Case {
    bytes: Vec<u8>,
    head_request: bool,
    expected: Outcome,
    /// Where the response's own bytes end (before any extra bytes).
    length: usize,
    delimited: Delimited,
    /// Bytes of a next response follow this one.
    extra: bool,
}

prop_compose! {
    fn case()(
        status in prop::sample::select(vec![200u16, 201, 204, 304, 404, 500]),
        interim in any::<bool>(),
        delimited in prop_oneof![
            Just(Delimited::Length),
            (1usize..40).prop_map(Delimited::Chunked),
            Just(Delimited::UntilClose),
        ],
        body in prop::collection::vec(any::<u8>(), 0..300),
        close in any::<bool>(),
        http10 in any::<bool>(),
        head_request in any::<bool>(),
        extension in any::<bool>(),
        trailer in any::<bool>(),
        extra in any::<bool>(),
    ) -> Case {
        let mut bytes = Vec::new();
        if interim {
            bytes.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let version = if http10 { "1.0" } else { "1.1" };
        bytes.extend_from_slice(format!("HTTP/{version} {status} Whatever\r\nServer: t\r\n").as_bytes());
        if http10 && !close {
            bytes.extend_from_slice(b"Connection: keep-alive\r\n");
        } else if close {
            bytes.extend_from_slice(b"Connection: close\r\n");
        }
        let bodyless = head_request || status == 204 || status == 304;
        match delimited {
            Delimited::Length => bytes.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes()),
            Delimited::Chunked(_) => bytes.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            Delimited::UntilClose => {}
        }
        bytes.extend_from_slice(b"\r\n");
        if !bodyless {
            match delimited {
                Delimited::Length | Delimited::UntilClose => bytes.extend_from_slice(&body),
                Delimited::Chunked(size) => {
                    for chunk in body.chunks(size) {
                        let ext = if extension { ";name=value" } else { "" };
                        bytes.extend_from_slice(format!("{:x}{ext}\r\n", chunk.len()).as_bytes());
                        bytes.extend_from_slice(chunk);
                        bytes.extend_from_slice(b"\r\n");
                    }
                    bytes.extend_from_slice(b"0\r\n");
                    if trailer {
                        bytes.extend_from_slice(b"Checksum: 1\r\n");
                    }
                    bytes.extend_from_slice(b"\r\n");
                }
            }
        }
        let length = bytes.len();
        // Extra bytes after a body delimited by the close are the body.
        let extra = extra && (bodyless || delimited != Delimited::UntilClose);
        if extra {
            bytes.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        }
        let until_close = !bodyless && delimited == Delimited::UntilClose;
        let expected_body = if bodyless { Vec::new() } else { body };
        Case {
            bytes,
            head_request,
            expected: (status, expected_body, !(close || extra || until_close)),
            length,
            delimited,
            extra,
        }
    }
}

fn sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..64, 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_split_of_a_valid_response_reads_the_same(case in case(), sizes in sizes()) {
        let whole = read(&case.bytes, &[usize::MAX], case.head_request).unwrap();
        prop_assert_eq!(&whole, &case.expected);
        let split = read(&case.bytes, &sizes, case.head_request).unwrap();
        if case.extra {
            // Whether bytes beyond the response are seen depends on when
            // they arrive: only the response itself must read the same.
            prop_assert_eq!((split.0, split.1), (whole.0, whole.1));
        } else {
            prop_assert_eq!(split, whole);
        }
    }

    #[test]
    fn a_response_cut_short_fails_cleanly(case in case(), cut in any::<prop::sample::Index>(), sizes in sizes()) {
        prop_assume!(case.delimited != Delimited::UntilClose || case.head_request);
        let at = cut.index(case.length);
        let result = read(&case.bytes[..at], &sizes, case.head_request);
        prop_assert!(
            matches!(result, Err(ReadError::Closed { .. })),
            "{:?}", result
        );
    }

    #[test]
    fn a_corrupted_response_never_panics(
        case in case(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        sizes in sizes(),
    ) {
        let mut bytes = case.bytes.clone();
        for (at, byte) in flips {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        let _ = read(&bytes, &sizes, case.head_request);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000), sizes in sizes()) {
        let _ = read(&bytes, &sizes, false);
        let mut prefixed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        prefixed.extend_from_slice(&bytes);
        let _ = read(&prefixed, &sizes, false);
    }
}

#[test]
fn nothing_at_all_is_an_idle_close() {
    let result = read(b"", &[1], false);
    assert!(matches!(
        result,
        Err(ReadError::Closed { nothing_read: true })
    ));
    let result = read(b"HTTP/1.1", &[1], false);
    assert!(matches!(
        result,
        Err(ReadError::Closed {
            nothing_read: false
        })
    ));
}

#[test]
fn malformed_responses_are_told_apart_from_closed_ones() {
    for bytes in [
        &b"HTTX/1.1 200 OK\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n",
    ] {
        let result = read(bytes, &[3], false);
        assert!(
            matches!(result, Err(ReadError::Malformed)),
            "{}: {result:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn a_head_that_never_ends_is_malformed_not_a_growing_buffer() {
    let mut bytes = b"HTTP/1.1 200 OK\r\n".to_vec();
    while bytes.len() < 2 * MAX_HEAD {
        bytes.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    assert!(matches!(
        read(&bytes, &[4096], false),
        Err(ReadError::Malformed)
    ));
}

#[test]
fn a_body_is_not_kept_unless_asked() {
    let bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Id: 7\r\n\r\nhello";
    let mut stream = Pieces {
        data: bytes,
        sizes: &[7],
        turn: 0,
    };
    let mut reader = Reader::default();
    let head = reader.read_head(&mut stream, false).unwrap();
    assert_eq!(head.body(), BodyKind::Length(5));
    assert!(reader.head_bytes(&head).ends_with(b"X-Id: 7\r\n\r\n"));
    assert!(reader.read_body(&mut stream, &head, None).unwrap());
}

#[test]
fn a_kept_body_over_the_limit_is_refused() {
    let bytes = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        MAX_KEPT_BODY + 1
    );
    assert!(matches!(
        read(bytes.as_bytes(), &[64], false),
        Err(ReadError::Malformed)
    ));
}
