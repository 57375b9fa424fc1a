//! From a parsed file (text or HAR) to the requests a call sends: names
//! resolved, every `{{variable}}` checked, request heads pre-rendered.
//!
//! Everything that can be wrong with the file is found here, once per
//! process before the first call, and told as `FILE:LINE: sentence`:
//! nothing the plugin did not understand is ever sent.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::capture::JsonPath;
use crate::system::{self, System};
use crate::template::{self, Piece, Template, Unresolved};
use crate::url::{self, Server};
use crate::vars::Sources;

/// A file as written, before names are resolved.
#[derive(Debug, Default)]
pub struct RawFile {
    /// File variables (`@name = value`), wherever they are in the file.
    pub vars: Vec<RawVar>,
    pub requests: Vec<RawRequest>,
    /// Whether `{{expressions}}` are substituted (text files) or the
    /// text is sent as it is (HAR files, which were not written for
    /// gorgon).
    pub templated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawVar {
    pub name: String,
    pub value: String,
    pub line: usize,
}

#[derive(Debug, Default)]
pub struct RawRequest {
    /// The report's name for it; empty when the file gave none.
    pub name: String,
    /// The name later requests use in `{{NAME.response...}}`.
    pub reference: Option<String>,
    /// The line of the request line (`METHOD URL`); 0 in a HAR.
    pub line: usize,
    /// How messages point at a request that has no line (a HAR entry).
    pub place: String,
    /// The host the report names when the file talks to several: the
    /// recorded one for a HAR entry (wherever it is sent now), else empty
    /// for the host it is sent to.
    pub host: String,
    pub method: String,
    pub url: String,
    pub headers: Vec<RawHeader>,
    pub body: Vec<BodyPart>,
    pub captures: Vec<RawCapture>,
    /// `# @no-cookie-jar`: this request neither sends nor keeps cookies.
    pub no_cookie_jar: bool,
}

/// A piece of a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyPart {
    /// Text with variables, written in the requests file from `line` on,
    /// or read from `file` (a `<@ ./file` on `line`).
    Text {
        text: String,
        line: usize,
        file: Option<String>,
    },
    /// Bytes sent as they are: a `< ./file`, a HAR body.
    Bytes(Vec<u8>),
}

impl RawRequest {
    pub fn new(name: &str, line: usize) -> RawRequest {
        RawRequest {
            name: name.to_string(),
            line,
            ..RawRequest::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader {
    pub name: String,
    pub value: String,
    pub line: usize,
}

/// A value a request's response gives to later requests under `var`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCapture {
    pub var: String,
    pub from: CaptureFrom,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureFrom {
    Json(JsonPath),
    Header(String),
    /// The cookies the response sets, kept in a per-server cookie jar.
    Cookies,
}

/// Settings from `--set`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The deadline of a request's whole exchange: connecting, writing,
    /// and reading the complete response.
    pub timeout: Duration,
    /// Connect to every server in each thread's setup and refuse to start
    /// if one cannot be reached.
    pub connect_at_start: bool,
    /// Run the threads under `SCHED_BATCH` (see `scheduling`).
    pub batch_scheduling: bool,
}

/// Everything a call needs, shared by the threads of a worker.
#[derive(Debug)]
pub struct Plan {
    pub requests: Vec<Request>,
    pub servers: Vec<Target>,
    /// The names of the captured variables, by slot.
    pub var_names: Vec<Arc<str>>,
    /// The slots of the cookie jars (one per server), emptied at the
    /// start of each call.
    pub cookie_jars: Vec<usize>,
    pub options: Options,
}

/// A server and where the file first mentions it, for messages.
#[derive(Debug, Clone)]
pub struct Target {
    pub server: Server,
    pub first_use: String,
}

#[derive(Debug)]
pub struct Request {
    /// The measurement name.
    pub name: String,
    /// Whether the request is timed as a measurement: a file of one
    /// unnamed request has none, since it would repeat the call's own line.
    pub measured: bool,
    pub target: usize,
    /// Request line and headers, up to and including the blank line when
    /// the body is static (then with the body too).
    pub head: Template,
    /// The captured values the head uses: one with a line break fails
    /// the call instead of being sent.
    pub head_slots: Vec<usize>,
    /// A body with per-call values, rendered after its Content-Length.
    pub body: Option<Template>,
    /// A HEAD request: the response has no body whatever it says.
    pub head_method: bool,
    pub captures: Vec<Capture>,
    /// Some capture reads the body (kept whole, not streamed past).
    pub keep_body: bool,
    /// Later requests use a value this one captures, so its failure ends
    /// the call.
    pub ends_call_on_failure: bool,
}

#[derive(Debug)]
pub struct Capture {
    pub slot: usize,
    pub from: CaptureFrom,
}

/// Headers the plugin writes itself; a file's own are dropped.
const COMPUTED_HEADERS: [&str; 2] = ["content-length", "transfer-encoding"];

/// Above this many requests, measurements are per server, not per
/// request (unless `--set measure=requests`): each measurement name costs
/// every thread a histogram.
const MAX_MEASURED_REQUESTS: usize = 100;

/// Resolves `raw`, read from `file`. `param` looks up `--set` values,
/// which take precedence over everything the file and its environments
/// define.
pub fn compile(
    file: &str,
    raw: RawFile,
    param: &dyn Fn(&str) -> Option<String>,
    options: Options,
) -> Result<Plan, String> {
    let dir = Path::new(file).parent().unwrap_or(Path::new("."));
    let sources = if raw.templated {
        Sources::load(file, dir, param)?
    } else {
        Sources::none()
    };
    let mut resolver = Resolver {
        file,
        sources: &sources,
        param,
        file_vars: raw
            .vars
            .iter()
            .map(|v| (v.name.clone(), v.clone()))
            .collect(),
        captured: HashMap::new(),
        named: HashMap::new(),
        references: HashMap::new(),
        var_names: Vec::new(),
        resolving: Vec::new(),
    };
    let mut servers: Vec<Target> = Vec::new();
    let mut requests: Vec<Request> = Vec::new();
    let mut paths = Vec::new();
    // A file of requests keeps cookies from request to request, as the
    // editors' clients do; a HAR replays the cookies it recorded.
    let cookie_jar = raw.templated && raw.requests.len() > 1;
    let mut jars: HashMap<usize, usize> = HashMap::new();

    for (index, request) in raw.requests.iter().enumerate() {
        let at = |line: usize| place(file, line, request);
        let later = &raw.requests[index..];
        let url = if raw.templated {
            resolver
                .compile(&mut requests, &request.url, true)
                .map_err(|u| resolver.explain(u, &request.url, request.line, later, &at))?
        } else {
            Template::text(request.url.as_str())
        };
        let (server, path) = url::split(&url).map_err(|m| format!("{}: {m}", at(request.line)))?;
        if path.has_line_break() {
            return Err(format!(
                "{}: the URL has a line break (CR or LF), which would split the request",
                at(request.line)
            ));
        }
        let path = path.for_url();
        let target = match servers.iter().position(|t| t.server == server) {
            Some(known) => known,
            None => {
                let first_use = match request.name.as_str() {
                    "" => format!("{} ({})", request.method, at(request.line)),
                    name => format!("request `{name}` ({})", at(request.line)),
                };
                servers.push(Target {
                    server: server.clone(),
                    first_use,
                });
                servers.len() - 1
            }
        };
        paths.push(display_path(&request.url));

        let mut head = Template::text(format!("{} ", request.method));
        head.append(&path);
        let has_host = request
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("host"));
        head.push_text(
            if has_host {
                b" HTTP/1.1\r\n".to_vec()
            } else {
                format!(" HTTP/1.1\r\nHost: {}\r\n", server.authority).into_bytes()
            }
            .as_slice(),
        );
        for header in &request.headers {
            if COMPUTED_HEADERS.contains(&header.name.to_ascii_lowercase().as_str()) {
                continue;
            }
            let value = if raw.templated {
                resolver
                    .compile(&mut requests, &header.value, true)
                    .map_err(|u| resolver.explain(u, &header.value, header.line, later, &at))?
            } else {
                Template::text(header.value.as_str())
            };
            let value = if raw.templated && header.name.eq_ignore_ascii_case("authorization") {
                authorization(value).map_err(|m| format!("{}: {m}", at(header.line)))?
            } else {
                value
            };
            if value.has_line_break() {
                return Err(format!(
                    "{}: the value of header {} has a line break (CR or LF), which would split \
                     the request",
                    at(header.line),
                    header.name
                ));
            }
            head.push_text(format!("{}: ", header.name).as_bytes());
            head.append(&value);
            head.push_text(b"\r\n");
        }
        let jar = (cookie_jar && !request.no_cookie_jar).then(|| {
            *jars
                .entry(target)
                .or_insert_with(|| resolver.new_slot(&format!("cookies of {}", server.authority)))
        });
        let has_cookie = request
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("cookie"));
        if let Some(slot) = jar.filter(|_| !has_cookie) {
            head.pieces.push(Piece::Cookie(slot));
        }
        let mut body = Template::default();
        for part in &request.body {
            match part {
                BodyPart::Bytes(bytes) => body.push_text(bytes),
                BodyPart::Text {
                    text,
                    line,
                    file: None,
                } if raw.templated => body.append(
                    &resolver
                        .compile(&mut requests, text, false)
                        .map_err(|u| resolver.explain(u, text, *line, later, &at))?,
                ),
                BodyPart::Text {
                    text,
                    line,
                    file: Some(path),
                } if raw.templated => {
                    body.append(&resolver.compile(&mut requests, text, false).map_err(|u| {
                        let line_in_file = 1 + text[..u.offset].matches('\n').count();
                        let at_include = Unresolved { offset: 0, ..u };
                        let message = resolver.explain(at_include, "", *line, later, &at);
                        message.replacen(": ", &format!(": in {path}, line {line_in_file}: "), 1)
                    })?)
                }
                BodyPart::Text { text, .. } => body.push_text(text.as_bytes()),
            }
        }
        let needs_length =
            !body.pieces.is_empty() || matches!(request.method.as_str(), "POST" | "PUT" | "PATCH");
        let head_slots = {
            let mut slots: Vec<usize> = head.slots().collect();
            slots.sort_unstable();
            slots.dedup();
            slots
        };
        let body = match body.as_static() {
            Some(text) => {
                if needs_length {
                    head.push_text(format!("Content-Length: {}\r\n", text.len()).as_bytes());
                }
                head.push_text(b"\r\n");
                head.append(&body);
                None
            }
            None => Some(body),
        };
        requests.push(Request {
            name: String::new(),
            measured: false,
            target,
            head,
            head_slots,
            body,
            head_method: request.method == "HEAD",
            captures: jar
                .map(|slot| Capture {
                    slot,
                    from: CaptureFrom::Cookies,
                })
                .into_iter()
                .collect(),
            keep_body: false,
            ends_call_on_failure: false,
        });
        resolver.register(index, request, &mut requests, &at)?;
    }

    let measure = measure_mode(param, requests.len())?;
    let hosts: Vec<&str> = requests
        .iter()
        .zip(&raw.requests)
        .map(|(request, raw)| match raw.host.as_str() {
            "" => servers[request.target].server.authority.as_str(),
            recorded => recorded,
        })
        .collect();
    let several_hosts = hosts.windows(2).any(|pair| pair[0] != pair[1]);
    let mut names_seen: HashMap<String, usize> = HashMap::new();
    for (index, (request, raw_request)) in requests.iter_mut().zip(&raw.requests).enumerate() {
        request.keep_body = request
            .captures
            .iter()
            .any(|c| matches!(c.from, CaptureFrom::Json(_)));
        request.ends_call_on_failure = request
            .captures
            .iter()
            .any(|c| !matches!(c.from, CaptureFrom::Cookies));
        let authority = hosts[index];
        request.measured = match measure {
            Measure::Requests => raw.requests.len() > 1 || !raw_request.name.is_empty(),
            Measure::Hosts => true,
            Measure::None => false,
        };
        request.name = match measure {
            Measure::Hosts => authority.to_string(),
            _ if !raw_request.name.is_empty() => unique(raw_request.name.clone(), &mut names_seen),
            _ => {
                let path = &paths[index];
                let name = if several_hosts {
                    format!("{} {authority}{path}", raw_request.method)
                } else {
                    format!("{} {path}", raw_request.method)
                };
                unique(shorten(name), &mut names_seen)
            }
        };
    }
    Ok(Plan {
        requests,
        servers,
        var_names: resolver.var_names,
        cookie_jars: jars.into_values().collect(),
        options,
    })
}

/// An `Authorization` value as the editors' clients send it: REST
/// Client's `Basic user:password` (or `Basic user password`) is encoded
/// as Basic authentication requires. Schemes that need more than a
/// header (Digest's challenge, AWS signatures) are refused.
fn authorization(value: Template) -> Result<Template, String> {
    let Some(text) = value
        .as_static()
        .map(|t| String::from_utf8_lossy(t).into_owned())
    else {
        return Ok(value);
    };
    let (scheme, rest) = text.split_once(' ').unwrap_or((&text, ""));
    let rest = rest.trim();
    match scheme.to_ascii_lowercase().as_str() {
        "basic" if rest.contains([':', ' ']) => {
            use base64::Engine;
            let credentials = match rest.split_once(':') {
                Some(_) => rest.to_string(),
                None => rest.replacen(' ', ":", 1),
            };
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            Ok(Template::text(format!("Basic {encoded}")))
        }
        "digest" if !rest.contains('=') => Err(
            "Digest authentication answers a challenge from the server, which the plugin does \
             not do; send a token in the header instead"
                .to_string(),
        ),
        "aws" => Err(
            "AWS signatures are computed per request, which the plugin does not do; send a \
             token in the header instead"
                .to_string(),
        ),
        _ => Ok(value),
    }
}

/// `FILE:LINE`, or `FILE: entry N of log.entries` for a HAR.
fn place(file: &str, line: usize, request: &RawRequest) -> String {
    if line > 0 {
        format!("{file}:{line}")
    } else {
        format!("{file}: {}", request.place)
    }
}

/// How requests are measured (`--set measure=`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Measure {
    Requests,
    Hosts,
    None,
}

fn measure_mode(
    param: &dyn Fn(&str) -> Option<String>,
    requests: usize,
) -> Result<Measure, String> {
    match param("measure").as_deref().map(str::trim) {
        None if requests > MAX_MEASURED_REQUESTS => Ok(Measure::Hosts),
        None | Some("requests") => Ok(Measure::Requests),
        Some("hosts") => Ok(Measure::Hosts),
        Some("none") => Ok(Measure::None),
        Some(other) => Err(format!(
            "measure must be requests, hosts or none, not {other:?}"
        )),
    }
}

/// Where the variables of a text file come from, and the captures its
/// requests make for later ones.
struct Resolver<'a> {
    file: &'a str,
    sources: &'a Sources,
    param: &'a dyn Fn(&str) -> Option<String>,
    file_vars: HashMap<String, RawVar>,
    /// Variables set from a response (`@capture`, a handler's
    /// `client.global.set`), by the requests compiled so far.
    captured: HashMap<String, usize>,
    /// Requests compiled so far, by the name `{{NAME.response...}}` uses.
    named: HashMap<String, usize>,
    /// `{{NAME.response...}}` expressions already given a slot.
    references: HashMap<String, usize>,
    var_names: Vec<Arc<str>>,
    /// The variables being resolved, to catch `@a = {{b}}`, `@b = {{a}}`.
    resolving: Vec<String>,
}

impl Resolver<'_> {
    fn compile(
        &mut self,
        requests: &mut [Request],
        text: &str,
        in_head: bool,
    ) -> Result<Template, Unresolved> {
        Template::compile(text, &mut |expression| {
            let value = self.resolve(requests, expression)?;
            if in_head && value.has_line_break() {
                return Err(format!(
                    "{{{{{expression}}}}} has a line break (CR or LF), which cannot go in a \
                     request line or header"
                ));
            }
            Ok(value)
        })
    }

    /// An error at byte `unresolved.offset` of `text`, written from
    /// `line` on, as one sentence.
    fn explain(
        &self,
        unresolved: Unresolved,
        text: &str,
        line: usize,
        later: &[RawRequest],
        at: &dyn Fn(usize) -> String,
    ) -> String {
        let line = if line > 0 {
            line + text[..unresolved.offset].matches('\n').count()
        } else {
            0
        };
        let message = match unresolved.message.strip_prefix(UNDEFINED) {
            Some(name) => self.undefined(name, later),
            None => unresolved.message,
        };
        format!("{}: {message}", at(line))
    }

    fn resolve(&mut self, requests: &mut [Request], expression: &str) -> Result<Template, String> {
        if expression.starts_with('$') {
            return self.system(expression);
        }
        if template::is_name(expression) {
            if let Some(value) = (self.param)(expression) {
                return Ok(Template::text(value));
            }
            if let Some(slot) = self.captured.get(expression) {
                return Ok(var(*slot));
            }
            if let Some(var) = self.file_vars.get(expression).cloned() {
                return self.nested(requests, &var.name, &var.value, Some(var.line));
            }
            if let Some(value) = self.sources.env.get(expression).cloned() {
                return self.nested(requests, expression, &value, None);
            }
            if let Some(value) = self.sources.shared.get(expression).cloned() {
                return self.nested(requests, expression, &value, None);
            }
            if let Some(value) = self.sources.dotenv(expression) {
                return Ok(Template::text(value));
            }
        }
        if let Some(reference) = self.reference(requests, expression) {
            return reference;
        }
        if template::is_name(expression) {
            return Err(format!("{UNDEFINED}{expression}"));
        }
        Err(format!(
            "{{{{{expression}}}}} is not a variable the plugin understands (a name, a \
             {{{{$system}}}} variable or NAME.response.body.$.PATH; scripts do not run in Gorgon)"
        ))
    }

    /// A variable's value, itself a template.
    fn nested(
        &mut self,
        requests: &mut [Request],
        name: &str,
        value: &str,
        line: Option<usize>,
    ) -> Result<Template, String> {
        if self.resolving.iter().any(|n| n == name) {
            return Err(format!(
                "{{{{{name}}}}} is defined in terms of itself ({} -> {name})",
                self.resolving.join(" -> ")
            ));
        }
        self.resolving.push(name.to_string());
        let result = self.compile(requests, value, false);
        self.resolving.pop();
        result.map_err(|u| match line {
            Some(line) if !u.message.contains(self.file) => {
                let message = match u.message.strip_prefix(UNDEFINED) {
                    Some(inner) => self.undefined(inner, &[]),
                    None => u.message,
                };
                format!(
                    "{message} (in the file variable @{name}, {}:{line})",
                    self.file
                )
            }
            _ => u.message,
        })
    }

    fn system(&mut self, expression: &str) -> Result<Template, String> {
        let (name, argument) = expression
            .split_once(char::is_whitespace)
            .map(|(n, a)| (n, a.trim()))
            .unwrap_or((expression, ""));
        match name {
            "$number" if argument.is_empty() => Ok(Template {
                pieces: vec![Piece::Number],
            }),
            "$shared" => match self.sources.shared.get(argument).cloned() {
                Some(value) => Ok(Template::text(value)),
                None => Err(format!(
                    "{{{{{expression}}}}}: no `{argument}` in the $shared environment"
                )),
            },
            "$processEnv" => {
                let variable = self.indirect(argument)?;
                std::env::var(&variable).map(Template::text).map_err(|_| {
                    format!("{{{{{expression}}}}}: the environment variable {variable} is not set")
                })
            }
            "$dotenv" => {
                let variable = self.indirect(argument)?;
                self.sources
                    .dotenv(&variable)
                    .map(Template::text)
                    .ok_or_else(|| self.sources.dotenv_missing(&variable))
            }
            "$aadToken" | "$aadV2Token" | "$oidcAccessToken" => Err(format!(
                "{{{{{name}}}}} asks an identity provider for a token, which Gorgon does not \
                 do: fetch one beforehand and pass it with --set token=VALUE as {{{{token}}}}"
            )),
            _ => {
                if let Some(variable) = name.strip_prefix("$env.") {
                    return std::env::var(variable).map(Template::text).map_err(|_| {
                        format!(
                            "{{{{{expression}}}}}: the environment variable {variable} is not set"
                        )
                    });
                }
                match system::parse(expression) {
                    Some(Ok(System::Number)) => Ok(Template {
                        pieces: vec![Piece::Number],
                    }),
                    Some(Ok(value)) => Ok(Template {
                        pieces: vec![Piece::System(Arc::new(value))],
                    }),
                    Some(Err(message)) => Err(message),
                    None => Err(format!(
                        "{{{{{expression}}}}} is not a system variable the plugin knows (it knows {})",
                        system::KNOWN
                    )),
                }
            }
        }
    }

    /// `NAME`, or with REST Client's `%NAME` the value of the variable
    /// NAME.
    fn indirect(&self, argument: &str) -> Result<String, String> {
        let Some(name) = argument.strip_prefix('%') else {
            return Ok(argument.to_string());
        };
        (self.param)(name)
            .or_else(|| self.file_vars.get(name).map(|v| v.value.clone()))
            .or_else(|| self.sources.env.get(name).cloned())
            .or_else(|| self.sources.shared.get(name).cloned())
            .ok_or_else(|| format!("%{name} names no variable of the chosen environment or --set"))
    }

    /// `{{NAME.response.body.PATH}}`, `{{NAME.response.headers.HEADER}}`
    /// (REST Client), or httpyac's `{{NAME.PATH}}`: a capture on the
    /// earlier request NAME. `None` when `expression` names no request.
    fn reference(
        &mut self,
        requests: &mut [Request],
        expression: &str,
    ) -> Option<Result<Template, String>> {
        let (request_name, rest) = expression.split_once('.')?;
        if let Some(slot) = self.references.get(expression) {
            return Some(Ok(var(*slot)));
        }
        let Some(&index) = self.named.get(request_name) else {
            return rest.starts_with("response.").then(|| {
                Err(format!(
                    "{{{{{expression}}}}}: no request before this one is named `{request_name}` \
                     (name one with `# @name {request_name}` above its request line)"
                ))
            });
        };
        let from = if let Some(path) = rest.strip_prefix("response.body") {
            let path = path.strip_prefix('.').unwrap_or(path);
            let path = if path == "*" || path.is_empty() {
                "$"
            } else {
                path
            };
            if path.starts_with('/') {
                return Some(Err(format!(
                    "{{{{{expression}}}}}: XPath into XML bodies is not supported; a JSONPath \
                     such as response.body.$.id reads JSON bodies"
                )));
            }
            JsonPath::parse(path).map(CaptureFrom::Json)
        } else if let Some(header) = rest.strip_prefix("response.headers.") {
            Ok(CaptureFrom::Header(header.to_string()))
        } else if rest.starts_with("request.") || rest.starts_with("response.") {
            Err(format!(
                "{{{{{expression}}}}}: only a response's body (response.body.$.PATH) and headers \
                 (response.headers.NAME) can be used"
            ))
        } else {
            JsonPath::parse(rest).map(CaptureFrom::Json)
        };
        Some(from.map(|from| {
            let slot = self.new_slot(expression);
            self.references.insert(expression.to_string(), slot);
            requests[index].captures.push(Capture { slot, from });
            var(slot)
        }))
    }

    fn new_slot(&mut self, name: &str) -> usize {
        self.var_names.push(name.into());
        self.var_names.len() - 1
    }

    /// After request `index` is compiled: its captures become variables
    /// for the requests after it, and its name a target of references.
    fn register(
        &mut self,
        index: usize,
        request: &RawRequest,
        requests: &mut [Request],
        at: &dyn Fn(usize) -> String,
    ) -> Result<(), String> {
        for capture in &request.captures {
            if (self.param)(&capture.var).is_some() || self.file_vars.contains_key(&capture.var) {
                return Err(format!(
                    "{}: `{}` is already a file variable or a --set parameter; capture it under \
                     another name",
                    at(capture.line),
                    capture.var
                ));
            }
            let slot = match self.captured.get(&capture.var) {
                Some(slot) => *slot,
                None => {
                    let slot = self.new_slot(&capture.var);
                    self.captured.insert(capture.var.clone(), slot);
                    slot
                }
            };
            requests[index].captures.push(Capture {
                slot,
                from: capture.from.clone(),
            });
        }
        for name in [request.reference.as_ref(), Some(&request.name)]
            .into_iter()
            .flatten()
        {
            if template::is_name(name) {
                self.named.insert(name.clone(), index);
                // A later request of the same name gets its own captures.
                self.references
                    .retain(|expression, _| !expression.starts_with(&format!("{name}.")));
            }
        }
        Ok(())
    }

    /// Why `{{name}}` is undefined, and where it could be defined.
    fn undefined(&self, name: &str, later: &[RawRequest]) -> String {
        let captured_later = later.iter().enumerate().find_map(|(i, r)| {
            r.captures
                .iter()
                .find(|c| c.var == name)
                .map(|c| (i, c.line, r))
        });
        match captured_later {
            Some((0, _, _)) => format!(
                "{{{{{name}}}}} is set from this request's own response, so this request cannot \
                 use it"
            ),
            Some((_, line, r)) => format!(
                "{{{{{name}}}}} is set by a later request (`{}`, line {line}); a value can only \
                 be used after the request that sets it",
                r.name
            ),
            None => match self.sources.environments_defining(name) {
                Some(hint) => format!("{{{{{name}}}}} is not defined: {hint}"),
                None => format!(
                    "{{{{{name}}}}} is not defined: set it with --set {name}=VALUE, write \
                     `@{name} = VALUE` in the file, or define it in an environment of \
                     http-client.env.json chosen with --set env=NAME"
                ),
            },
        }
    }
}

/// Marks an undefined name in an error, for `explain` to say more.
const UNDEFINED: &str = "\0undefined ";

fn var(slot: usize) -> Template {
    Template {
        pieces: vec![Piece::Var(slot)],
    }
}

/// The path of a URL as written, for a default request name: `/items/{{id}}`.
fn display_path(url: &str) -> String {
    let rest = match url.find("://") {
        Some(i) => &url[i + 3..],
        // `{{base}}/items`: whatever the leading variable holds.
        None if url.starts_with("{{") => url.find("}}").map_or("", |i| &url[i + 2..]),
        None => url,
    };
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    let path = path.split(['?', '#']).next().unwrap_or("/");
    if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    }
}

/// Long names (a recorded URL with a hash in its path) are cut to keep
/// the report readable.
fn shorten(name: String) -> String {
    const MAX: usize = 80;
    if name.chars().count() <= MAX {
        return name;
    }
    let kept: String = name.chars().take(MAX - 1).collect();
    format!("{kept}…")
}

/// Each name is a line of the report: a repeated name gets a counter.
fn unique(name: String, seen: &mut HashMap<String, usize>) -> String {
    let count = seen.entry(name.clone()).or_insert(0);
    *count += 1;
    match *count {
        1 => name,
        n => format!("{name} #{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::textfile;

    fn options() -> Options {
        Options {
            timeout: Duration::from_secs(1),
            connect_at_start: true,
            batch_scheduling: false,
        }
    }

    fn plan(text: &str, params: &[(&str, &str)]) -> Result<Plan, String> {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let param = move |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        compile(
            "f.http",
            textfile::parse("f.http", text)?,
            &param,
            options(),
        )
    }

    /// Per-call values for `plan`: the named ones set, the others (cookie
    /// jars) empty.
    fn vars(plan: &Plan, set: &[(&str, &str)]) -> Vec<String> {
        plan.var_names
            .iter()
            .map(|name| {
                set.iter()
                    .find(|(n, _)| **n == **name)
                    .map_or(String::new(), |(_, v)| v.to_string())
            })
            .collect()
    }

    fn render(request: &Request, number: u64, vars: &[String]) -> String {
        let mut out = Vec::new();
        request.head.render(&mut out, number, vars);
        if let Some(body) = &request.body {
            let mut text = Vec::new();
            body.render(&mut text, number, vars);
            out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", text.len()).as_bytes());
            out.extend_from_slice(&text);
        }
        String::from_utf8(out).unwrap()
    }

    const FLOW: &str = "\
@host = 127.0.0.1
@base = http://{{host}}:8080
### create
# @name create
POST {{base}}/items
Content-Type: application/json
Content-Length: 999

{\"n\": {{$number}}}
### get
GET {{base}}/items/{{create.response.body.$.id}}
";

    #[test]
    fn a_flow_compiles_to_requests() {
        let plan = plan(FLOW, &[]).unwrap();
        assert_eq!(plan.servers.len(), 1);
        assert_eq!(plan.servers[0].server.port, 8080);
        let id = "create.response.body.$.id";
        assert_eq!(
            plan.var_names.iter().map(|n| &**n).collect::<Vec<_>>(),
            ["cookies of 127.0.0.1:8080", id]
        );
        let create = &plan.requests[0];
        assert!(create.keep_body);
        assert_eq!(
            render(create, 7, &vars(&plan, &[])),
            "POST /items HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n\
             Content-Length: 8\r\n\r\n{\"n\": 7}"
        );
        let get = &plan.requests[1];
        assert_eq!(
            render(get, 7, &vars(&plan, &[(id, "42")])),
            "GET /items/42 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
        );
        assert_eq!(get.head_slots, [1]);
        // The cookies the server set come back in the next request.
        let with_cookies = vars(&plan, &[(id, "42"), ("cookies of 127.0.0.1:8080", "s=1")]);
        assert!(
            render(get, 7, &with_cookies).ends_with("Host: 127.0.0.1:8080\r\nCookie: s=1\r\n\r\n")
        );
    }

    #[test]
    fn set_parameters_override_file_variables() {
        let plan = plan(FLOW, &[("host", "10.0.0.9")]).unwrap();
        assert_eq!(plan.servers[0].server.host, "10.0.0.9");
    }

    #[test]
    fn a_static_post_has_its_length_in_the_head() {
        let plan = plan("POST http://h/x\n", &[]).unwrap();
        assert_eq!(plan.requests[0].name, "POST /x");
        assert_eq!(
            render(&plan.requests[0], 0, &[]),
            "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
        );
        assert!(plan.requests[0].head.as_static().is_some());
    }

    #[test]
    fn names_show_the_host_when_there_are_several_and_repeat_with_a_counter() {
        let long = "a".repeat(100);
        let text = format!("GET http://a/x\n###\nGET http://b:81/x\n###\nGET http://a/x\n###\nGET http://a/{long}\n");
        let plan = plan(&text, &[]).unwrap();
        let names: Vec<&str> = plan.requests.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(&names[..3], ["GET a/x", "GET b:81/x", "GET a/x #2"]);
        assert_eq!(names[3].chars().count(), 80);
    }

    #[test]
    fn variable_errors_say_where_and_why() {
        let cases = [
            ("GET http://h/{{nope}}\n", "f.http:1: {{nope}} is not defined: set it with --set nope=VALUE"),
            (
                "### a\nGET http://h/{{id}}\n### b\nGET http://h/\n@capture id = json id\n",
                "f.http:2: {{id}} is set by a later request (`b`, line 5)",
            ),
            (
                "### a\nGET http://h/{{id}}\n@capture id = json id\n",
                "f.http:2: {{id}} is set from this request's own response",
            ),
            (
                "### a\nPOST http://h/\n\n{\"a\": 1,\n \"b\": {{oops}}}\n",
                "f.http:5: {{oops}} is not defined",
            ),
            (
                "@base = http://h\n### a\nGET {{base}}/\n@capture base = json x\n",
                "f.http:4: `base` is already a file variable",
            ),
            (
                "@a = {{b}}\nGET http://h/{{a}}\n",
                "f.http:2: {{b}} is not defined: set it with --set b=VALUE, write `@b = VALUE` in the file, or define it in an environment of http-client.env.json chosen with --set env=NAME (in the file variable @a, f.http:1)",
            ),
            ("@a = {{b}}\n@b = {{a}}\nGET http://h/{{a}}\n", "f.http:3: {{a}} is defined in terms of itself"),
            ("GET http://h/{{login.response.body.$.token}}\n", "f.http:1: {{login.response.body.$.token}}: no request before this one is named `login`"),
            ("GET http://h/{{$nope}}\n", "f.http:1: {{$nope}} is not a system variable"),
            (
                "# @name a\nGET http://h/\n###\nGET http://h/{{a.response.body.//reply[1]/@id}}\n",
                "f.http:4: {{a.response.body.//reply[1]/@id}}: XPath into XML bodies is not supported",
            ),
            ("GET http://h/{{$aadToken}}\n", "f.http:1: {{$aadToken}} asks an identity provider"),
            ("GET http://h/{{$processEnv GORGON_SURELY_UNSET}}\n", "f.http:1: {{$processEnv GORGON_SURELY_UNSET}}: the environment variable GORGON_SURELY_UNSET is not set"),
            ("GET http://h/\nX: {{a\n", "f.http:2: `{{` opens a variable that is not closed"),
            ("GET http://h/{{a + 1}}\n", "f.http:1: {{a + 1}} is not a variable the plugin understands"),
            (
                "GET ftp://h/\n",
                "f.http:1: a URL must start with http:// or https://",
            ),
        ];
        for (text, expected) in cases {
            let error = plan(text, &[]).unwrap_err();
            assert!(error.starts_with(expected), "{text:?}:\n{error}");
        }
    }

    #[test]
    fn an_error_in_a_templated_file_says_where_in_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.json"), "{\n  \"a\": {{nope}}\n}").unwrap();
        let file = dir.path().join("f.http");
        let file = file.to_str().unwrap();
        let text = "POST http://h/\n\nbefore\n<@ ./b.json\n{{also_nope}}\n";
        let none = |_: &str| None;
        let error =
            compile(file, textfile::parse(file, text).unwrap(), &none, options()).unwrap_err();
        assert!(
            error.starts_with(&format!("{file}:4: in "))
                && error.contains("b.json, line 2: {{nope}}"),
            "{error}"
        );
        let text = "POST http://h/\n\nbefore\n< ./b.json\n{{also_nope}}\n";
        let error =
            compile(file, textfile::parse(file, text).unwrap(), &none, options()).unwrap_err();
        assert!(
            error.starts_with(&format!("{file}:5: {{{{also_nope}}}}")),
            "{error}"
        );
    }

    #[test]
    fn line_breaks_never_reach_a_head() {
        let error = plan(
            "GET http://h/\nAuthorization: Bearer {{t}}\n",
            &[("t", "a\r\nX: y")],
        )
        .unwrap_err();
        assert!(
            error.starts_with("f.http:2: {{t}} has a line break"),
            "{error}"
        );
        // In a body it is only text.
        plan("POST http://h/\n\n{{t}}\n", &[("t", "a\r\nb")]).unwrap();
        // A recording's own values are checked too.
        let har = r#"{"log": {"entries": [{"request": {"method": "GET", "url": "http://h/a\r\nX: 1",
            "headers": [{"name": "A", "value": "b\nc"}]}}]}}"#;
        let none = |_: &str| None;
        let error = compile(
            "x.har",
            crate::har::parse("x.har", har, &none).unwrap(),
            &none,
            options(),
        )
        .unwrap_err();
        assert!(error.contains("line break"), "{error}");
    }

    #[test]
    fn basic_credentials_are_encoded_and_challenges_refused() {
        let basic = plan(
            "GET http://h/\nAuthorization: Basic {{user}}:pw\n###\nGET http://h/\nauthorization: basic u pw\n###\nGET http://h/\nAuthorization: Basic dTpwdw==\n",
            &[("user", "u")],
        )
        .unwrap();
        for request in &basic.requests {
            let head = render(request, 0, &vars(&basic, &[]));
            assert!(
                head.to_ascii_lowercase()
                    .contains("authorization: basic dtpwdw==\r\n"),
                "{head}"
            );
        }
        let error = plan("GET http://h/\nAuthorization: Digest u pw\n", &[]).unwrap_err();
        assert!(
            error.starts_with("f.http:2: Digest authentication"),
            "{error}"
        );
    }

    /// REST Client's README: file variables, request variables through
    /// file variables, a form body.
    const REST_CLIENT: &str = "\
@baseUrl = http://example.com/api

# @name login
POST {{baseUrl}}/api/login HTTP/1.1
Content-Type: application/x-www-form-urlencoded

name=foo&password=bar

###

@authToken = {{login.response.headers.X-AuthToken}}

# @name createComment
POST {{baseUrl}}/comments HTTP/1.1
Authorization: {{authToken}}
Content-Type: application/json

{
    \"content\": \"fake content\"
}

###

@commentId = {{createComment.response.body.$.id}}

# @name getCreatedComment
GET {{baseUrl}}/comments/{{commentId}} HTTP/1.1
Authorization: {{authToken}}
";

    /// The JetBrains client's samples: titles, a multipart form, dynamic
    /// variables, a handler keeping a token, a saved response.
    const JETBRAINS: &str = "\
### Send POST request with body as parameters
POST http://httpbin.org/post
Content-Type: application/x-www-form-urlencoded

id=999&value=content

### Send request with dynamic variables in request's body
POST http://httpbin.org/post
Content-Type: application/json

{
  \"id\": \"{{$random.uuid}}\",
  \"price\": {{$random.integer()}},
  \"ts\": {{$timestamp}},
  \"value\": \"content\"
}

<> 2021-04-06T055707.200.json

### Authorization by token, part 1. Retrieve and save token.
POST http://httpbin.org/post
Content-Type: application/json

{
  \"token\": \"my-secret-token\"
}

> {% client.global.set(\"auth_token\", response.body.json.token); %}

### Authorization by token, part 2. Use token to authorize.
GET http://httpbin.org/headers
Authorization: Bearer {{auth_token}}
";

    #[test]
    fn the_tools_documentation_samples_compile() {
        let rest_client = plan(REST_CLIENT, &[]).unwrap();
        let [login, create, get] = rest_client.requests.as_slice() else {
            panic!("three requests")
        };
        assert_eq!(
            (login.name.as_str(), create.name.as_str()),
            ("login", "createComment")
        );
        let headers: Vec<&CaptureFrom> = login
            .captures
            .iter()
            .map(|c| &c.from)
            .filter(|from| **from != CaptureFrom::Cookies)
            .collect();
        assert_eq!(
            headers,
            [&CaptureFrom::Header("X-AuthToken".into())],
            "one capture however often it is used"
        );
        assert!(create.keep_body);
        let head = render(
            get,
            0,
            &vars(
                &rest_client,
                &[
                    ("login.response.headers.X-AuthToken", "tok"),
                    ("createComment.response.body.$.id", "42"),
                ],
            ),
        );
        assert!(
            head.starts_with("GET /api/comments/42 HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(head.contains("Authorization: tok\r\n"), "{head}");

        let jetbrains = plan(JETBRAINS, &[]).unwrap();
        assert_eq!(jetbrains.requests.len(), 4);
        assert_eq!(
            jetbrains.requests[3].name,
            "Authorization by token, part 2. Use token to authorize."
        );
        assert!(jetbrains.requests[2]
            .captures
            .iter()
            .any(|c| matches!(c.from, CaptureFrom::Json(_))));
        let mut body = Vec::new();
        jetbrains.requests[1]
            .body
            .as_ref()
            .unwrap()
            .render(&mut body, 0, &[]);
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(body["price"].as_u64().unwrap() < 1000);
    }

    #[test]
    fn many_requests_are_measured_per_server() {
        let text = "GET http://h/x\n###\n".repeat(MAX_MEASURED_REQUESTS + 1);
        let plan = plan(&text, &[]).unwrap();
        assert!(plan.requests.iter().all(|r| r.measured && r.name == "h"));
    }
}
