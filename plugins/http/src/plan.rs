//! From a parsed file (text or HAR) to the requests a call sends: names
//! resolved, every `{variable}` checked, request heads pre-rendered.
//!
//! Everything that can be wrong with the file is found here, once per
//! process before the first call, and told as `FILE:LINE: sentence`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::capture::JsonPath;
use crate::template::{Lookup, Template};
use crate::url::{self, Server};

/// A file as written, before names are resolved.
#[derive(Debug)]
pub struct RawFile {
    /// File variables: name, value, line.
    pub vars: Vec<(String, String, usize)>,
    pub requests: Vec<RawRequest>,
    /// Whether an unknown `{name}` is an error (text files) or literal
    /// text (HAR files, which were not written for gorgon).
    pub strict: bool,
}

#[derive(Debug, Default)]
pub struct RawRequest {
    /// Empty when the file gave none.
    pub name: String,
    /// The line of the request line (`METHOD URL`); 0 in a HAR.
    pub line: usize,
    /// How messages point at a request that has no line (a HAR entry).
    pub place: String,
    pub method: String,
    pub url: String,
    pub headers: Vec<RawHeader>,
    pub body: String,
    pub body_line: usize,
    pub captures: Vec<RawCapture>,
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
}

/// Settings from `--set`.
#[derive(Debug, Clone)]
pub struct Options {
    /// For connecting, and for each read or write.
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
    /// A body with per-call values, rendered after its Content-Length.
    pub body: Option<Template>,
    /// A HEAD request: the response has no body whatever it says.
    pub head_method: bool,
    pub captures: Vec<Capture>,
    /// Some capture reads the body (kept whole, not streamed past).
    pub keep_body: bool,
}

#[derive(Debug)]
pub struct Capture {
    pub slot: usize,
    pub from: CaptureFrom,
}

/// Headers the plugin writes itself; a file's own are dropped.
const COMPUTED_HEADERS: [&str; 2] = ["content-length", "transfer-encoding"];

/// Resolves `raw`. `param` looks up `--set` values, which take precedence
/// over the file's variables.
pub fn compile(
    file: &str,
    raw: RawFile,
    param: &dyn Fn(&str) -> Option<String>,
    options: Options,
) -> Result<Plan, String> {
    let vars = file_variables(file, &raw.vars, param)?;
    let mut captured: HashMap<String, usize> = HashMap::new();
    let mut var_names: Vec<Arc<str>> = Vec::new();
    let mut servers: Vec<Target> = Vec::new();
    let mut requests = Vec::new();
    let mut names_seen: HashMap<String, usize> = HashMap::new();

    for (index, request) in raw.requests.iter().enumerate() {
        let at = |line: usize| {
            if line > 0 {
                format!("{file}:{line}")
            } else {
                format!("{file}: {}", request.place)
            }
        };
        let lookup = |name: &str| {
            if name == "number" {
                Lookup::Number
            } else if let Some(slot) = captured.get(name) {
                Lookup::Captured(*slot)
            } else if let Some(value) = param(name).or_else(|| vars.get(name).cloned()) {
                Lookup::Value(value)
            } else {
                Lookup::Unknown
            }
        };
        let compile_text = |text: &str, line: usize| {
            Template::compile(text, &lookup, raw.strict).map_err(|unknown| {
                let line = if line > 0 {
                    line + text[..unknown.offset].matches('\n').count()
                } else {
                    0
                };
                format!(
                    "{}: {}",
                    at(line),
                    unknown_variable(&unknown.name, &raw.requests[index..])
                )
            })
        };

        let url = compile_text(&request.url, request.line)?;
        let (server, path) = url::split(&url).map_err(|m| format!("{}: {m}", at(request.line)))?;
        let name = if request.name.is_empty() {
            default_name(&request.method, &request.url)
        } else {
            request.name.clone()
        };
        let name = unique_name(name, &mut names_seen, raw.strict)
            .map_err(|m| format!("{}: {m}", at(request.line)))?;
        let target = match servers.iter().position(|t| t.server == server) {
            Some(known) => known,
            None => {
                servers.push(Target {
                    server: server.clone(),
                    first_use: format!("request `{name}` ({})", at(request.line)),
                });
                servers.len() - 1
            }
        };

        let mut head = Template::text(format!("{} ", request.method));
        head.append(&path);
        let has_host = request
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("host"));
        head.append(&Template::text(if has_host {
            " HTTP/1.1\r\n".to_string()
        } else {
            format!(" HTTP/1.1\r\nHost: {}\r\n", server.authority)
        }));
        for header in &request.headers {
            if COMPUTED_HEADERS.contains(&header.name.to_ascii_lowercase().as_str()) {
                continue;
            }
            head.append(&Template::text(format!("{}: ", header.name)));
            head.append(&compile_text(&header.value, header.line)?);
            head.append(&Template::text("\r\n"));
        }
        let body = compile_text(&request.body, request.body_line)?;
        let needs_length =
            !request.body.is_empty() || matches!(request.method.as_str(), "POST" | "PUT" | "PATCH");
        let body = match body.as_static() {
            Some(text) => {
                if needs_length {
                    head.append(&Template::text(format!(
                        "Content-Length: {}\r\n",
                        text.len()
                    )));
                }
                head.append(&Template::text("\r\n"));
                head.append(&body);
                None
            }
            None => Some(body),
        };

        let mut captures = Vec::new();
        for capture in &request.captures {
            if param(&capture.var).is_some() || vars.contains_key(&capture.var) {
                return Err(format!(
                    "{}: `{}` is already a file variable or a --set parameter; capture it \
                     under another name",
                    at(capture.line),
                    capture.var
                ));
            }
            let slot = *captured.entry(capture.var.clone()).or_insert_with(|| {
                var_names.push(capture.var.as_str().into());
                var_names.len() - 1
            });
            captures.push(Capture {
                slot,
                from: capture.from.clone(),
            });
        }
        requests.push(Request {
            measured: raw.requests.len() > 1 || !request.name.is_empty(),
            keep_body: captures
                .iter()
                .any(|c| matches!(c.from, CaptureFrom::Json(_))),
            name,
            target,
            head,
            body,
            head_method: request.method == "HEAD",
            captures,
        });
    }
    Ok(Plan {
        requests,
        servers,
        var_names,
        options,
    })
}

/// File variables with their own `{names}` resolved (from `--set` and the
/// variables above them).
fn file_variables(
    file: &str,
    vars: &[(String, String, usize)],
    param: &dyn Fn(&str) -> Option<String>,
) -> Result<HashMap<String, String>, String> {
    let mut known: HashMap<String, String> = HashMap::new();
    for (name, value, line) in vars {
        let lookup = |n: &str| match param(n).or_else(|| known.get(n).cloned()) {
            Some(value) => Lookup::Value(value),
            None => Lookup::Unknown,
        };
        let template = Template::compile(value, &lookup, true).map_err(|unknown| {
            format!(
                "{file}:{line}: unknown variable {{{}}} in a file variable (file variables may \
                 use --set parameters and the file variables above them)",
                unknown.name
            )
        })?;
        let text = template
            .as_static()
            .expect("only static names were resolved");
        known.insert(name.clone(), String::from_utf8_lossy(text).into_owned());
    }
    Ok(known)
}

/// Explains an unknown `{name}` used in the first of `requests`.
fn unknown_variable(name: &str, requests: &[RawRequest]) -> String {
    let later = requests.iter().enumerate().find_map(|(i, r)| {
        r.captures
            .iter()
            .find(|c| c.var == name)
            .map(|c| (i, c.line, r))
    });
    match later {
        Some((0, _, _)) => format!(
            "{{{name}}} is captured from this request's own response, so this request cannot \
             use it"
        ),
        Some((_, line, r)) => format!(
            "{{{name}}} is captured by a later request (`{}`, line {line}); a variable can only \
             be used after the request that captures it",
            r.name
        ),
        None => format!(
            "unknown variable {{{name}}}: set it with --set {name}=VALUE, define \
             `@{name} = VALUE` before the first request, or capture it from an earlier \
             response (write {{{{ for a literal brace)"
        ),
    }
}

/// `GET /items/{id}` for a request the file did not name.
fn default_name(method: &str, url: &str) -> String {
    let path = url
        .find("://")
        .map(|i| &url[i + 3..])
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("/");
    let path = path.split(['?', '#']).next().unwrap_or("/");
    format!("{method} {path}")
}

/// Named requests must be unique (each is a line of the report); unnamed
/// HAR entries that repeat a method and path get a counter.
fn unique_name(
    name: String,
    seen: &mut HashMap<String, usize>,
    strict: bool,
) -> Result<String, String> {
    let count = seen.entry(name.clone()).or_insert(0);
    *count += 1;
    match *count {
        1 => Ok(name),
        n if !strict => Ok(format!("{name} #{n}")),
        _ => Err(format!(
            "two requests are named `{name}`; each request is a line of the report, so give \
             each its own name"
        )),
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
@base = http://{host}:8080
### create
POST {base}/items
Content-Type: application/json
Content-Length: 999
@capture id = json id

{\"n\": {number}}
### get
GET {base}/items/{id}
";

    #[test]
    fn a_flow_compiles_to_requests() {
        let plan = plan(FLOW, &[]).unwrap();
        assert_eq!(plan.servers.len(), 1);
        assert_eq!(plan.servers[0].server.port, 8080);
        assert_eq!(&*plan.var_names[0], "id");
        let create = &plan.requests[0];
        assert!(create.keep_body);
        assert_eq!(
            render(create, 7, &[]),
            "POST /items HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n\
             Content-Length: 8\r\n\r\n{\"n\": 7}"
        );
        let get = &plan.requests[1];
        assert_eq!(
            render(get, 7, &["42".into()]),
            "GET /items/42 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
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
    fn variable_errors_say_where_and_why() {
        let cases = [
            ("GET http://h/{nope}\n", "f.http:1: unknown variable {nope}"),
            (
                "### a\nGET http://h/{id}\n### b\nGET http://h/\n@capture id = json id\n",
                "f.http:2: {id} is captured by a later request (`b`, line 5)",
            ),
            (
                "### a\nGET http://h/{id}\n@capture id = json id\n",
                "f.http:2: {id} is captured from this request's own response",
            ),
            (
                "### a\nPOST http://h/\n\n{\"a\": 1,\n \"b\": {oops}}\n",
                "f.http:5: unknown variable {oops}",
            ),
            (
                "@base = http://h\n### a\nGET {base}/\n@capture base = json x\n",
                "f.http:4: `base` is already a file variable",
            ),
            (
                "### a\nGET http://h/\n### a\nGET http://h/\n",
                "f.http:4: two requests",
            ),
            (
                "@a = {b}\nGET http://h/\n",
                "f.http:1: unknown variable {b} in a file",
            ),
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
}
