//! `.http` / `.rest` files as VS Code REST Client, the JetBrains HTTP
//! Client and httpyac write them (docs/http-plugin.md is the reference):
//!
//! ```text
//! @base = http://127.0.0.1:8080
//!
//! ### create
//! # @name create
//! POST {{base}}/items
//! Content-Type: application/json
//!
//! {"name": "item {{$number}}"}
//!
//! ### get
//! GET {{base}}/items/{{create.response.body.$.id}}
//! ```
//!
//! Requests are separated by `###` lines (the rest of the line is the
//! request's title); a block without a request line is skipped. Before
//! the request line come comments (`#`, `//`), `# @name` and file
//! variables; then the request line (`METHOD URL [HTTP/1.1]`, or a bare
//! URL for a GET), query lines (`?a=1`, `&b=2`), headers, a blank line,
//! and the body up to the next `###`. In the body, `< ./file` and
//! `<@ ./file` put a file in; response handlers (`> {% %}`, `> x.js`) and
//! saved responses (`<> file`, `>> file`) are read and never sent.
//!
//! Everything outside that grammar (a pre-request script, a script
//! block, a handler that does more than keep a value) is refused with its
//! line, never sent.

use std::path::{Path, PathBuf};

use crate::capture::JsonPath;
use crate::handler;
use crate::plan::{BodyPart, CaptureFrom, RawCapture, RawFile, RawHeader, RawRequest, RawVar};

/// Parses the text of `file`; `< ./x` paths are relative to its folder.
pub fn parse(file: &str, text: &str) -> Result<RawFile, String> {
    let dir = Path::new(file)
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut parsed = RawFile {
        templated: true,
        ..RawFile::default()
    };
    let mut start = 0;
    let mut title = String::new();
    for (index, line) in lines.iter().enumerate() {
        if let Some(rest) = line.strip_prefix("###") {
            Block::parse(file, &dir, &lines, start, index, &title, &mut parsed)?;
            start = index + 1;
            title = rest.trim_start_matches('#').trim().to_string();
        }
    }
    Block::parse(file, &dir, &lines, start, lines.len(), &title, &mut parsed)?;
    if parsed.requests.is_empty() {
        return Err(format!(
            "{file}: no request found (a request is a line such as `GET http://127.0.0.1:8080/`, \
             requests are separated by `###` lines)"
        ));
    }
    Ok(parsed)
}

/// Where a block's parser is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Comments, `# @name`, file variables.
    Before,
    /// Query lines and headers.
    Head,
    Body,
    /// After a response handler or a saved response: nothing more is
    /// sent.
    After,
}

struct Block<'a> {
    file: &'a str,
    dir: &'a Path,
    request: Option<RawRequest>,
    reference: Option<String>,
    no_cookie_jar: bool,
    state: State,
    /// Body items: a line of text, or a file put in.
    body: Vec<BodyItem>,
}

enum BodyItem {
    Line(String, usize),
    File(Vec<u8>),
    /// `<@ ./file`: its text, with variables; the line of the `<@` and
    /// the file's path, for messages.
    Templated(String, usize, String),
}

impl<'a> Block<'a> {
    /// Parses `lines[start..end]`, the block after a `###` line titled
    /// `title`, adding its variables and request to `parsed`.
    fn parse(
        file: &'a str,
        dir: &'a Path,
        lines: &[&str],
        start: usize,
        end: usize,
        title: &str,
        parsed: &mut RawFile,
    ) -> Result<(), String> {
        let mut block = Block {
            file,
            dir,
            request: None,
            reference: None,
            no_cookie_jar: false,
            state: State::Before,
            body: Vec::new(),
        };
        let mut index = start;
        while index < end {
            let number = index + 1;
            let line = lines[index];
            index += 1;
            let error = |message: String| format!("{file}:{number}: {message}");
            if block.state != State::Body || is_handler_line(line) {
                if let Some(script_end) = block
                    .special(line, number, lines, index, end)
                    .map_err(error)?
                {
                    index = script_end;
                    continue;
                }
            }
            match block.state {
                State::Before => block.before(line, number, title, parsed).map_err(error)?,
                State::Head => block.head(line, number).map_err(error)?,
                State::Body => block.body_line(line, number).map_err(error)?,
                State::After => {
                    if !line.trim().is_empty() && !is_comment(line) {
                        return Err(error(format!(
                            "unexpected `{}` after the response handler (a new request starts \
                             after a `###` line)",
                            line.trim()
                        )));
                    }
                }
            }
        }
        block.finish(parsed)
    }

    /// Handlers, saved responses and scripts, wherever they are: `Some`
    /// with the index of the line after them when `line` was one.
    fn special(
        &mut self,
        line: &str,
        number: usize,
        lines: &[&str],
        next: usize,
        end: usize,
    ) -> Result<Option<usize>, String> {
        let trimmed = line.trim_start();
        if self.state == State::Before {
            if trimmed.starts_with("< {%")
                || (trimmed.starts_with("< ") && trimmed.ends_with(".js"))
            {
                return Err(format!(
                    "pre-request scripts do not run in Gorgon; give values with file variables \
                     (`@name = value`), --set, an environment or a system variable such as \
                     {{{{$uuid}}}}, and to pass a value from a response: {}",
                    handler::INSTEAD
                ));
            }
            if trimmed.starts_with("{{") && !trimmed.contains("}}") {
                return Err(handler::script_block_refusal());
            }
            return Ok(None);
        }
        if trimmed.starts_with("??") {
            return Err(
                "assertions (`?? ...`) do not run in Gorgon: the report counts each status, and \
                 a status of 400 or more is a failed call"
                    .to_string(),
            );
        }
        if trimmed.starts_with("<>") || trimmed.starts_with(">>") {
            // A saved response (`<> file`) or where to save this one
            // (`>> file`, `>>! file`): for the editor only.
            self.state = State::After;
            return Ok(Some(next));
        }
        let Some(rest) = trimmed.strip_prefix('>') else {
            return Ok(None);
        };
        let rest = rest.trim();
        let (script, after) = if let Some(inline) = rest.strip_prefix("{%") {
            script_text(inline, lines, next, end)
                .ok_or_else(|| "this response handler has no closing `%}`".to_string())?
        } else if rest.ends_with(".js") {
            let path = self.dir.join(rest);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "cannot read the response handler {} ({e}); handlers do not run in Gorgon \
                     anyway: {}",
                    path.display(),
                    handler::INSTEAD
                )
            })?;
            (text, next)
        } else {
            return Ok(None);
        };
        let request = self.request.as_mut().expect("a handler follows a request");
        for (var, from) in handler::captures(&script)? {
            request.captures.push(RawCapture {
                var,
                from,
                line: number,
            });
        }
        self.state = State::After;
        Ok(Some(after))
    }

    fn before(
        &mut self,
        line: &str,
        number: usize,
        title: &str,
        parsed: &mut RawFile,
    ) -> Result<(), String> {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Ok(());
        }
        if let Some(comment) = comment_text(trimmed) {
            if let Some(name) = directive(comment, "name") {
                if !crate::template::is_name(name) {
                    return Err(format!(
                        "`{name}` cannot be a request name (letters, digits, `_`, `-`, `.`)"
                    ));
                }
                self.reference = Some(name.to_string());
            }
            if comment
                .strip_prefix('@')
                .is_some_and(|d| d.trim() == "no-cookie-jar")
            {
                self.no_cookie_jar = true;
            }
            if directive(comment, "loop").is_some() {
                return Err(
                    "`@loop` repeats a request inside one call, which Gorgon does not do: \
                     the number of calls (-n) is the loop"
                        .to_string(),
                );
            }
            return Ok(());
        }
        if let Some(definition) = trimmed.strip_prefix('@') {
            let (name, value) = variable(definition).ok_or_else(|| {
                format!("expected a file variable such as `@base = http://127.0.0.1:8080`, found `{trimmed}`")
            })?;
            parsed.vars.push(RawVar {
                name: name.to_string(),
                value: value.to_string(),
                line: number,
            });
            return Ok(());
        }
        let name = self.reference.clone().unwrap_or_else(|| title.to_string());
        let mut request = RawRequest::new(&name, number);
        request.reference = self.reference.clone();
        request.no_cookie_jar = self.no_cookie_jar;
        request_line(&mut request, trimmed)?;
        self.request = Some(request);
        self.state = State::Head;
        Ok(())
    }

    fn head(&mut self, line: &str, number: usize) -> Result<(), String> {
        let request = self.request.as_mut().expect("a request is open");
        let trimmed = line.trim();
        if trimmed.is_empty() {
            self.state = State::Body;
            return Ok(());
        }
        if is_comment(trimmed) {
            return Ok(());
        }
        // A long URL broken over lines: REST Client's `?a=1` / `&b=2`,
        // JetBrains' indented `/path` parts too.
        if trimmed.starts_with(['?', '&', '/']) && request.headers.is_empty() {
            request.url.push_str(trimmed);
            return Ok(());
        }
        if let Some(directive) = trimmed.strip_prefix("@capture ") {
            request.captures.push(capture(directive, number)?);
            return Ok(());
        }
        request.headers.push(header(trimmed, number)?);
        Ok(())
    }

    fn body_line(&mut self, line: &str, number: usize) -> Result<(), String> {
        let trimmed = line.trim();
        if trimmed == "{{" || trimmed.starts_with("{{@") || trimmed.starts_with("{{+") {
            return Err(handler::script_block_refusal());
        }
        let include = line
            .strip_prefix('<')
            .and_then(|rest| {
                let (kind, path) = rest.split_once(char::is_whitespace)?;
                Some((kind, path.trim()))
            })
            .filter(|(kind, path)| {
                !path.is_empty()
                    && (kind.is_empty() || kind.starts_with('@'))
                    && !kind.contains(['<', '>'])
            });
        let Some((kind, path)) = include else {
            self.body.push(BodyItem::Line(line.to_string(), number));
            return Ok(());
        };
        let path = self.resolve(path);
        let bytes = std::fs::read(&path).map_err(|e| {
            format!(
                "cannot read {} for the body ({e}; a path is relative to the requests file)",
                path.display()
            )
        })?;
        self.body.push(if kind.starts_with('@') {
            let text = String::from_utf8(bytes).map_err(|_| {
                format!(
                    "{} is not UTF-8 text, so `<@` cannot put variables in it; use `<` to \
                     send it as it is",
                    path.display()
                )
            })?;
            BodyItem::Templated(text, number, path.display().to_string())
        } else {
            BodyItem::File(bytes)
        });
        Ok(())
    }

    fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.dir.join(path)
        }
    }

    fn finish(self, parsed: &mut RawFile) -> Result<(), String> {
        let Some(mut request) = self.request else {
            return Ok(());
        };
        // REST Client's `X-REQUEST-TYPE: GraphQL`, JetBrains' `GRAPHQL URL`.
        let graphql = request.method == "GRAPHQL"
            || request.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("x-request-type")
                    && h.value.eq_ignore_ascii_case("graphql")
            });
        let multipart = request.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case("content-type")
                && h.value
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/")
        });
        let mut items = self.body;
        while matches!(items.last(), Some(BodyItem::Line(l, _)) if l.trim().is_empty()) {
            items.pop();
        }
        // Multipart bodies need CRLF line ends whatever the file has.
        let separator = if multipart { "\r\n" } else { "\n" };
        let mut parts: Vec<BodyPart> = Vec::new();
        let count = items.len();
        for (i, item) in items.into_iter().enumerate() {
            let last = i + 1 == count;
            let end = if last && !multipart { "" } else { separator };
            match item {
                BodyItem::Line(text, line) => push_line(&mut parts, &(text + end), line),
                BodyItem::Templated(text, line, path) => {
                    parts.push(BodyPart::Text {
                        text,
                        line,
                        file: Some(path),
                    });
                    parts.push(BodyPart::Bytes(end.as_bytes().to_vec()));
                }
                BodyItem::File(bytes) => {
                    parts.push(BodyPart::Bytes(bytes));
                    parts.push(BodyPart::Bytes(end.as_bytes().to_vec()));
                }
            }
        }
        request.body = parts;
        // `GET /path` with a `Host:` header, as REST Client allows, or
        // after httpyac's `{{host}}`.
        if request.url.starts_with('/') {
            request.url = match request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("host"))
            {
                Some(host) => format!("http://{}{}", host.value.trim(), request.url),
                None => format!("{{{{host}}}}{}", request.url),
            };
        }
        if graphql {
            graphql_body(self.file, &mut request)?;
        }
        parsed.requests.push(request);
        Ok(())
    }
}

/// A GraphQL query (and, after a blank line, its variables) as the JSON
/// body a GraphQL server expects, sent with POST.
fn graphql_body(file: &str, request: &mut RawRequest) -> Result<(), String> {
    let place = format!("{file}:{}", request.line);
    let mut text = String::new();
    for part in &request.body {
        match part {
            BodyPart::Text { text: t, .. } => text.push_str(t),
            BodyPart::Bytes(_) => {
                return Err(format!(
                    "{place}: a GraphQL query is written in the file, not put in with `<`"
                ))
            }
        }
    }
    let text = text.replace("\r\n", "\n");
    let (query, variables) = match text.split_once("\n\n") {
        Some((query, variables)) if !variables.trim().is_empty() => (query, Some(variables.trim())),
        _ => (text.as_str(), None),
    };
    let mut body = format!(
        "{{\"query\": {}",
        serde_json::to_string(query.trim()).expect("a string serialises")
    );
    if let Some(variables) = variables {
        body.push_str(&format!(", \"variables\": {variables}"));
    }
    body.push('}');
    let line = match request.body.first() {
        Some(BodyPart::Text { line, .. }) => *line,
        _ => request.line,
    };
    request.body = vec![BodyPart::Text {
        text: body,
        line,
        file: None,
    }];
    request.method = "POST".to_string();
    request
        .headers
        .retain(|h| !h.name.eq_ignore_ascii_case("x-request-type"));
    if !request
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("content-type"))
    {
        request.headers.push(RawHeader {
            name: "Content-Type".to_string(),
            value: "application/json".to_string(),
            line: request.line,
        });
    }
    Ok(())
}

/// Adds a line written in the file to the body, joined to the lines
/// right above it; `line` is where it was written.
fn push_line(parts: &mut Vec<BodyPart>, text: &str, line: usize) {
    if let Some(BodyPart::Text {
        text: last,
        file: None,
        ..
    }) = parts.last_mut()
    {
        last.push_str(text);
    } else {
        parts.push(BodyPart::Text {
            text: text.to_string(),
            line,
            file: None,
        });
    }
}

/// The script of `> {% ... %}` starting with `first` (the rest of the
/// `> {%` line), and the index of the line after it.
fn script_text(first: &str, lines: &[&str], next: usize, end: usize) -> Option<(String, usize)> {
    if let Some(close) = first.find("%}") {
        return Some((first[..close].to_string(), next));
    }
    let mut script = first.to_string();
    for (index, line) in lines.iter().enumerate().take(end).skip(next) {
        if let Some(close) = line.find("%}") {
            script.push('\n');
            script.push_str(&line[..close]);
            return Some((script, index + 1));
        }
        script.push('\n');
        script.push_str(line);
    }
    None
}

/// A response handler (`> {%`, `> x.js`) or saved response (`<>`, `>>`)
/// line, which may end a body.
fn is_handler_line(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed.starts_with("??")
        || trimmed.starts_with("<>")
        || trimmed.starts_with(">>")
        || trimmed
            .strip_prefix('>')
            .map(str::trim)
            .is_some_and(|rest| rest.starts_with("{%") || rest.ends_with(".js"))
}

fn is_comment(line: &str) -> bool {
    comment_text(line.trim_start()).is_some()
}

/// The text of a `#` or `//` comment.
fn comment_text(line: &str) -> Option<&str> {
    line.strip_prefix('#')
        .or_else(|| line.strip_prefix("//"))
        .map(str::trim)
}

/// `@NAME VALUE` or `@NAME = VALUE` in a comment.
fn directive<'t>(comment: &'t str, name: &str) -> Option<&'t str> {
    let rest = comment.strip_prefix('@')?.strip_prefix(name)?;
    if !rest.starts_with([' ', '\t', '=']) {
        return None;
    }
    let value = rest.trim_start().strip_prefix('=').unwrap_or(rest).trim();
    (!value.is_empty()).then_some(value)
}

/// `name = value` (or httpyac's `name := value`) after the `@`.
fn variable(text: &str) -> Option<(&str, &str)> {
    let (name, value) = text.split_once('=')?;
    let name = name.trim().trim_end_matches(':').trim();
    crate::template::is_name(name).then(|| (name, value.trim()))
}

/// Methods a request line may start with, in any case; any other word in
/// capitals is taken as a method too (WebDAV's, say).
const METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT",
];

/// Request kinds of the JetBrains client that are not HTTP requests.
const OTHER_PROTOCOLS: [&str; 2] = ["WEBSOCKET", "GRPC"];

fn request_line(request: &mut RawRequest, line: &str) -> Result<(), String> {
    let (first, rest) = line
        .split_once(char::is_whitespace)
        .map(|(f, r)| (f, r.trim()))
        .unwrap_or((line, ""));
    if first == "curl" {
        return Err(
            "cURL commands are not read: write the request as `METHOD URL`, its headers, a blank \
             line and its body"
                .to_string(),
        );
    }
    if first == "import" || first == "run" {
        return Err(format!(
            "`{first}` (another file's requests, in the JetBrains client) is not read: put the \
             requests in this file"
        ));
    }
    if OTHER_PROTOCOLS.contains(&first) {
        return Err(format!(
            "{first} requests are not supported: the plugin sends HTTP requests"
        ));
    }
    let is_method = METHODS.iter().any(|m| m.eq_ignore_ascii_case(first))
        || (!first.is_empty() && first.bytes().all(|b| b.is_ascii_uppercase()));
    let (method, target) = if is_method && !rest.is_empty() {
        (first.to_ascii_uppercase(), rest)
    } else if looks_like_url(line) {
        ("GET".to_string(), line)
    } else {
        return Err(format!(
            "expected a request line such as `GET http://127.0.0.1:8080/`, found `{line}`"
        ));
    };
    // `HTTP/1.1`, `HTTP/2`, JetBrains' `HTTP/2 (Prior Knowledge)`: the
    // request is the same whatever the version, and goes as HTTP/1.1.
    let url = match target.find(" HTTP/") {
        Some(at) if is_version(target[at + 1..].trim()) => target[..at].trim(),
        _ => target,
    };
    if method == "CONNECT" {
        return Err("CONNECT requests (proxy tunnels) cannot be replayed".to_string());
    }
    request.method = method;
    request.url = url.to_string();
    Ok(())
}

fn is_version(text: &str) -> bool {
    let version = text
        .strip_suffix("(Prior Knowledge)")
        .unwrap_or(text)
        .trim();
    version
        .strip_prefix("HTTP/")
        .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

fn looks_like_url(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || line.starts_with("{{")
}

fn header(line: &str, number: usize) -> Result<RawHeader, String> {
    let (name, value) = line.split_once(':').ok_or_else(|| {
        format!("expected a header `Name: value`, or a blank line before the body, found `{line}`")
    })?;
    let name = name.trim_end();
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(format!("`{name}` is not a valid header name"));
    }
    Ok(RawHeader {
        name: name.to_string(),
        value: value.trim().to_string(),
        line: number,
    })
}

/// The characters RFC 9110 allows in a method or header name.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The plugin's own shorthand: `@capture NAME = json PATH` or
/// `@capture NAME = header NAME` among the headers.
fn capture(directive: &str, line: usize) -> Result<RawCapture, String> {
    let usage = || {
        format!(
            "expected `@capture NAME = json PATH` or `@capture NAME = header HEADER-NAME`, \
             found `@capture {directive}`"
        )
    };
    let (var, source) = directive.split_once('=').ok_or_else(usage)?;
    let var = var.trim();
    if !crate::template::is_name(var) {
        return Err(format!(
            "`{var}` cannot be a variable name (letters, digits, `_`, `-`, `.`)"
        ));
    }
    let (kind, what) = source.trim().split_once(' ').ok_or_else(usage)?;
    let what = what.trim();
    let from = match kind {
        "json" => CaptureFrom::Json(JsonPath::parse(what)?),
        "header" if !what.is_empty() && what.bytes().all(is_token_byte) => {
            CaptureFrom::Header(what.to_string())
        }
        _ => return Err(usage()),
    };
    Ok(RawCapture {
        var: var.to_string(),
        from,
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_text(request: &RawRequest) -> String {
        request
            .body
            .iter()
            .map(|p| match p {
                BodyPart::Text { text, .. } => text.clone(),
                BodyPart::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            })
            .collect()
    }

    const FLOW: &str = "\u{feff}# a comment\r
@base = http://127.0.0.1:8080\r
\r
### create\r
POST {{base}}/items HTTP/1.1\r
Content-Type: application/json\r
@capture where = header Location\r
\r
{\"name\": \"item {{$number}}\"}\r
# not a comment inside a body\r
\r
\r
###\r
# @name get\r
// another comment\r
@late = 1\r
{{base}}/items/{{create.response.body.$.id}}\r
    ?a=1\r
    &b=2\r
> {%\r
    client.global.set(\"token\", response.body.token);\r
%}\r
<> 2026-01-01T000000.200.json\r
### empty\r
# nothing\r
";

    #[test]
    fn a_flow_parses() {
        let file = parse("flow.http", FLOW).unwrap();
        let names: Vec<&str> = file.vars.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["base", "late"]);
        let [create, get] = file.requests.as_slice() else {
            panic!("two requests: {:?}", file.requests)
        };
        assert_eq!(
            (create.name.as_str(), create.method.as_str(), create.line),
            ("create", "POST", 5)
        );
        assert_eq!(create.url, "{{base}}/items");
        assert_eq!(create.headers[0].name, "Content-Type");
        assert_eq!(create.headers[0].line, 6);
        assert_eq!(
            create.captures[0].from,
            CaptureFrom::Header("Location".into())
        );
        assert_eq!(
            body_text(create),
            "{\"name\": \"item {{$number}}\"}\n# not a comment inside a body"
        );
        assert!(matches!(create.body[0], BodyPart::Text { line: 9, .. }));
        assert_eq!(
            (
                get.name.as_str(),
                get.reference.as_deref(),
                get.method.as_str()
            ),
            ("get", Some("get"), "GET")
        );
        assert_eq!(
            get.url,
            "{{base}}/items/{{create.response.body.$.id}}?a=1&b=2"
        );
        assert_eq!(get.captures[0].var, "token");
        assert!(get.body.is_empty());
    }

    #[test]
    fn files_are_put_in_bodies_and_multipart_gets_crlf() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "A{{x}}").unwrap();
        let file = dir.path().join("m.http");
        let text = "POST http://h/\nContent-Type: multipart/form-data; boundary=B\n\n--B\n\
                    Content-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\n\n< ./a.txt\n\
                    --B\n\n<@ a.txt\n--B--\n";
        let parsed = parse(file.to_str().unwrap(), text).unwrap();
        let request = &parsed.requests[0];
        assert_eq!(
            body_text(request),
            "--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\n\
             A{{x}}\r\n--B\r\n\r\nA{{x}}\r\n--B--\r\n"
        );
        // `<` is sent as it is, `<@` is text with variables.
        assert!(matches!(request.body[1], BodyPart::Bytes(_)));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let cases = [
            ("### a\nget\n", "f:2: expected a request line"),
            ("### a\nGET http://h/\nAccept\n", "f:3: expected a header"),
            (
                "### a\nGET http://h/\n@capture id json x\n",
                "f:3: expected `@capture",
            ),
            ("@x http://h\n", "f:1: expected a file variable"),
            ("# nothing\n###\n\n", "f: no request found"),
            (
                "GET http://h/\n\n> {%\nclient.test('x', () => {});\n%}\n",
                "f:3: response handler scripts do not run in Gorgon",
            ),
            (
                "GET http://h/\n\n> {%\nclient.global.set('a', response.body.a);\n",
                "f:3: this response handler has no closing",
            ),
            (
                "< {% request.variables.set('a', 1) %}\nGET http://h/\n",
                "f:1: pre-request scripts do not run",
            ),
            (
                "GET http://h/\n\n{}\n> {% %}\nGET http://h/\n",
                "f:5: unexpected `GET http://h/` after the response handler",
            ),
            (
                "POST http://h/\n\n< ./nope.json\n",
                "f:3: cannot read ./nope.json",
            ),
            (
                "{{\n  exports.a = 1;\n}}\nGET http://h/\n",
                "f:1: script blocks",
            ),
            (
                "GET http://h/\n\n{{\n  exports.a = 1;\n}}\n",
                "f:3: script blocks",
            ),
        ];
        for (text, expected) in cases {
            let error = parse("f", text).unwrap_err();
            assert!(error.starts_with(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn a_path_is_a_url_with_a_host_header_or_httpyacs_host_variable() {
        let file = parse("f", "GET /a HTTP/1.1\nHost: h:81\n###\nGET /b\n").unwrap();
        assert_eq!(file.requests[0].url, "http://h:81/a");
        assert_eq!(file.requests[1].url, "{{host}}/b");
    }

    #[test]
    fn a_url_broken_over_lines_is_joined() {
        let text = "GET http://example.com:8080\n    /api\n    /html\n    /get\n    ?id=123\n    &value=content\nAccept: */*\n";
        let file = parse("f", text).unwrap();
        assert_eq!(
            file.requests[0].url,
            "http://example.com:8080/api/html/get?id=123&value=content"
        );
    }

    #[test]
    fn any_http_version_is_read_and_the_request_goes_as_http_1_1() {
        for line in [
            "GET http://h/a HTTP/2",
            "GET http://h/a HTTP/2 (Prior Knowledge)",
            "GET http://h/a HTTP/1.0",
        ] {
            let file = parse("f", line).unwrap();
            assert_eq!(file.requests[0].url, "http://h/a", "{line}");
        }
    }

    #[test]
    fn graphql_queries_become_json_posts() {
        for text in [
            "POST http://h/graphql\nX-Request-Type: GraphQL\n\nquery Q($id: ID) {\n  item(id: $id) { name }\n}\n\n{\"id\": \"{{id}}\"}\n",
            "GRAPHQL http://h/graphql\n\nquery Q($id: ID) {\n  item(id: $id) { name }\n}\n\n{\"id\": \"{{id}}\"}\n",
        ] {
            let file = parse("f", text).unwrap();
            let request = &file.requests[0];
            assert_eq!(request.method, "POST");
            assert_eq!(
                body_text(request),
                "{\"query\": \"query Q($id: ID) {\\n  item(id: $id) { name }\\n}\", \"variables\": {\"id\": \"{{id}}\"}}"
            );
            let names: Vec<&str> = request.headers.iter().map(|h| h.name.as_str()).collect();
            assert_eq!(names, ["Content-Type"]);
        }
    }

    #[test]
    fn what_other_tools_run_is_refused() {
        for (text, expected) in [
            ("curl http://h/\n", "f:1: cURL commands are not read"),
            (
                "import ./auth.http\n\nrun #Login\n",
                "f:1: `import` (another file's",
            ),
            ("GET http://h/\n\n?? status == 200\n", "f:3: assertions"),
            ("# @loop for 3\nGET http://h/\n", "f:1: `@loop`"),
            (
                "WEBSOCKET ws://h/\n",
                "f:1: WEBSOCKET requests are not supported",
            ),
        ] {
            let error = parse("f", text).unwrap_err();
            assert!(error.starts_with(expected), "{text:?}: {error}");
        }
    }
}
