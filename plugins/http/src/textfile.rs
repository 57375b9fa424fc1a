//! The plain text format, close to the `.http` files of editors' REST
//! clients (docs/http-plugin.md is the reference):
//!
//! ```text
//! # A comment. File variables come before the first request;
//! # `--set base=...` overrides them.
//! @base = http://127.0.0.1:8080
//!
//! ### create
//! POST {base}/items
//! Content-Type: application/json
//! @capture id = json id
//!
//! {"name": "item {number}"}
//!
//! ### get
//! GET {base}/items/{id}
//! ```
//!
//! A request is `### NAME`, a request line `METHOD URL [HTTP/1.1]`, header
//! lines and `@capture` lines, then after a blank line the body, which runs
//! to the next `###` line (trailing blank lines dropped).

use crate::plan::{CaptureFrom, RawCapture, RawFile, RawHeader, RawRequest};

/// Parses the text of `file` (its name is only for messages).
pub fn parse(file: &str, text: &str) -> Result<RawFile, String> {
    let mut parsed = RawFile {
        vars: Vec::new(),
        requests: Vec::new(),
        strict: true,
    };
    let mut state = State::Between;
    let mut current: Option<RawRequest> = None;
    let mut body: Vec<&str> = Vec::new();
    let error = |line: usize, message: String| format!("{file}:{line}: {message}");

    for (index, raw_line) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw_line.trim_end_matches('\r');
        if let Some(name) = line.strip_prefix("###") {
            if state == State::RequestLine {
                return Err(no_request_line(file, current.as_ref()));
            }
            finish(&mut parsed, current.take(), &mut body);
            current = Some(RawRequest::new(name.trim(), number));
            state = State::RequestLine;
            continue;
        }
        match state {
            State::Body => body.push(line),
            _ if line.trim().is_empty() => {
                if state == State::Head {
                    state = State::Body;
                    if let Some(request) = current.as_mut() {
                        request.body_line = number + 1;
                    }
                }
            }
            _ if line.trim_start().starts_with('#') => {}
            State::Between => {
                if let Some(definition) = line.strip_prefix('@') {
                    let (name, value) = variable(definition)
                        .ok_or_else(|| error(number, expected_variable(line)))?;
                    parsed
                        .vars
                        .push((name.to_string(), value.to_string(), number));
                } else {
                    // A file of one request may leave out the `###` line.
                    let mut request = RawRequest::new("", number);
                    request_line(&mut request, line).map_err(|m| error(number, m))?;
                    current = Some(request);
                    state = State::Head;
                }
            }
            State::RequestLine => {
                if line.starts_with('@') && variable(&line[1..]).is_some() {
                    return Err(error(
                        number,
                        "file variables (`@name = value`) go before the first request".into(),
                    ));
                }
                let request = current.as_mut().expect("a request is open");
                request_line(request, line).map_err(|m| error(number, m))?;
                request.line = number;
                state = State::Head;
            }
            State::Head => {
                let request = current.as_mut().expect("a request is open");
                if let Some(directive) = line.strip_prefix('@') {
                    let capture = capture(directive).map_err(|m| error(number, m))?;
                    request.captures.push(RawCapture {
                        line: number,
                        ..capture
                    });
                } else {
                    let header = header(line).map_err(|m| error(number, m))?;
                    request.headers.push(RawHeader {
                        line: number,
                        ..header
                    });
                }
            }
        }
    }
    if state == State::RequestLine {
        return Err(no_request_line(file, current.as_ref()));
    }
    finish(&mut parsed, current, &mut body);
    if parsed.requests.is_empty() {
        return Err(format!(
            "{file}: no request found (a request starts with `### NAME` and a line such as \
             `GET http://127.0.0.1:8080/`)"
        ));
    }
    Ok(parsed)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first request: comments and file variables.
    Between,
    /// After `### NAME`, waiting for `METHOD URL`.
    RequestLine,
    /// Headers and `@capture` lines.
    Head,
    /// After the blank line, up to the next `###`.
    Body,
}

fn finish(parsed: &mut RawFile, request: Option<RawRequest>, body: &mut Vec<&str>) {
    if let Some(mut request) = request {
        while body.last().is_some_and(|l| l.trim().is_empty()) {
            body.pop();
        }
        request.body = body.join("\n");
        parsed.requests.push(request);
    }
    body.clear();
}

fn no_request_line(file: &str, request: Option<&RawRequest>) -> String {
    let line = request.map_or(0, |r| r.line);
    format!("{file}:{line}: this request has no `METHOD URL` line")
}

fn expected_variable(line: &str) -> String {
    format!("expected a file variable such as `@base = http://127.0.0.1:8080`, found `{line}`")
}

/// `name = value` after the `@`.
fn variable(text: &str) -> Option<(&str, &str)> {
    let (name, value) = text.split_once('=')?;
    let name = name.trim();
    crate::template::is_name(name).then(|| (name, value.trim()))
}

fn request_line(request: &mut RawRequest, line: &str) -> Result<(), String> {
    let mut words = line.split_whitespace();
    let (method, url) = match (words.next(), words.next()) {
        (Some(method), Some(url)) if is_method(method) => (method, url),
        _ => {
            return Err(format!(
                "expected a request line such as `GET http://127.0.0.1:8080/`, found `{line}`"
            ))
        }
    };
    match words.next() {
        None | Some("HTTP/1.1") | Some("HTTP/1.0") => {}
        Some(other) => {
            return Err(format!(
                "unexpected `{other}` after the URL (only HTTP/1.1 is spoken; a URL has no spaces)"
            ))
        }
    }
    if let Some(extra) = words.next() {
        return Err(format!(
            "unexpected `{extra}` at the end of the request line"
        ));
    }
    request.method = method.to_string();
    request.url = url.to_string();
    Ok(())
}

fn is_method(word: &str) -> bool {
    !word.is_empty() && word.bytes().all(|b| b.is_ascii_uppercase())
}

fn header(line: &str) -> Result<RawHeader, String> {
    let (name, value) = line.split_once(':').ok_or_else(|| {
        format!(
            "expected a header `Name: value`, a `@capture`, or a blank line before the body, \
             found `{line}`"
        )
    })?;
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(format!("`{name}` is not a valid header name"));
    }
    Ok(RawHeader {
        name: name.to_string(),
        value: value.trim().to_string(),
        line: 0,
    })
}

/// The characters RFC 9110 allows in a header name.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `capture NAME = json PATH` or `capture NAME = header NAME` after the `@`.
fn capture(directive: &str) -> Result<RawCapture, String> {
    let usage = || {
        format!(
            "expected `@capture NAME = json PATH` or `@capture NAME = header HEADER-NAME`, \
             found `@{directive}`"
        )
    };
    let rest = directive.strip_prefix("capture ").ok_or_else(usage)?;
    let (var, source) = rest.split_once('=').ok_or_else(usage)?;
    let var = var.trim();
    if !crate::template::is_name(var) {
        return Err(format!(
            "`{var}` cannot be a variable name (letters, digits, `_`, `-`, `.`)"
        ));
    }
    let (kind, what) = source.trim().split_once(' ').ok_or_else(usage)?;
    let what = what.trim();
    let from = match kind {
        "json" => CaptureFrom::Json(crate::capture::JsonPath::parse(what)?),
        "header" if !what.is_empty() && what.bytes().all(is_token_byte) => {
            CaptureFrom::Header(what.to_string())
        }
        _ => return Err(usage()),
    };
    Ok(RawCapture {
        var: var.to_string(),
        from,
        line: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW: &str = "\
# a comment
@base = http://127.0.0.1:8080

### create
POST {base}/items HTTP/1.1
Content-Type: application/json
@capture id = json data.id
@capture where = header Location

{\"name\": \"item {number}\"}
# not a comment inside a body


### get
GET {base}/items/{id}
";

    #[test]
    fn a_flow_parses() {
        let file = parse("flow.http", FLOW).unwrap();
        assert_eq!(
            file.vars,
            vec![("base".into(), "http://127.0.0.1:8080".into(), 2)]
        );
        let [create, get] = file.requests.as_slice() else {
            panic!("two requests")
        };
        assert_eq!(
            (create.name.as_str(), create.method.as_str()),
            ("create", "POST")
        );
        assert_eq!(create.url, "{base}/items");
        assert_eq!(create.headers[0].name, "Content-Type");
        assert_eq!(create.headers[0].line, 6);
        assert_eq!(create.captures.len(), 2);
        assert_eq!(
            create.captures[1].from,
            CaptureFrom::Header("Location".into())
        );
        assert_eq!(
            create.body,
            "{\"name\": \"item {number}\"}\n# not a comment inside a body"
        );
        assert_eq!(create.body_line, 10);
        assert_eq!((get.name.as_str(), get.line), ("get", 15));
        assert_eq!(get.body, "");
    }

    #[test]
    fn a_single_request_needs_no_name() {
        let file = parse("one.http", "GET http://h/\nAccept: */*\n").unwrap();
        assert_eq!(file.requests.len(), 1);
        assert_eq!(file.requests[0].headers.len(), 1);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let cases = [
            ("### a\nget http://h/\n", "f:2: expected a request line"),
            ("### a\nGET http://h/\nAccept\n", "f:3: expected a header"),
            (
                "### a\nGET http://h/\n@capture id json x\n",
                "f:3: expected `@capture",
            ),
            ("### a\nGET http://h/ HTTP/2\n", "f:2: unexpected `HTTP/2`"),
            (
                "### a\n\n### b\nGET http://h/\n",
                "f:1: this request has no",
            ),
            ("@x http://h\n", "f:1: expected a file variable"),
            ("# nothing\n", "f: no request found"),
            ("### a\n@base = x\n", "f:2: file variables"),
        ];
        for (text, expected) in cases {
            let error = parse("f", text).unwrap_err();
            assert!(error.starts_with(expected), "{text:?}: {error}");
        }
    }
}
