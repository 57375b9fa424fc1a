//! HAR files, as browsers' developer tools (Chrome, Firefox, Safari) and
//! proxies (Charles, Insomnia, …) export them: each entry's request is
//! replayed in order.
//!
//! What a browser records but a replay must not repeat is dropped: HTTP/2
//! pseudo-headers (`:authority`), and the headers the plugin computes
//! itself (`Host`, `Content-Length`, `Connection`, …). Entries that are
//! not HTTP requests (`CONNECT` tunnels, WebSockets, `data:` URLs) are
//! left out. Parameters choose what is replayed and where:
//!
//! | `--set` | meaning |
//! |---|---|
//! | `base_url=http://staging:8080` | every request goes there instead of its recorded scheme, host and port |
//! | `host_map=a.com=localhost:8080,b.com=http://127.0.0.1:9000` | those hosts go elsewhere, the others stay |
//! | `hosts=api.a.com,*.b.com` | only requests to these hosts |
//! | `urls=REGEX` | only requests whose recorded URL matches |
//! | `skip_static=true` | no images, fonts, stylesheets or scripts |

use regex::Regex;
use serde_json::Value;

use crate::plan::{BodyPart, RawFile, RawHeader, RawRequest};
use crate::textfile::is_token_byte;

/// Headers of a recorded request that describe the recorded connection,
/// not the request.
const DROPPED: [&str; 8] = [
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
];

/// What `skip_static` leaves out, by the path's extension.
const STATIC_EXTENSIONS: [&str; 18] = [
    "png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico", "bmp", "woff", "woff2", "ttf",
    "otf", "eot", "css", "js", "mjs", "map",
];

/// What `skip_static` leaves out, by Chrome's `_resourceType`.
const STATIC_RESOURCE_TYPES: [&str; 5] = ["image", "font", "stylesheet", "script", "media"];

/// Which entries to replay, and where.
struct Selection {
    base_url: Option<String>,
    host_map: Vec<(String, String)>,
    hosts: Vec<String>,
    urls: Option<Regex>,
    skip_static: bool,
}

impl Selection {
    fn from_params(param: &dyn Fn(&str) -> Option<String>) -> Result<Selection, String> {
        let list = |key: &str| -> Vec<String> {
            param(key)
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_ascii_lowercase())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let base_url = param("base_url")
            .map(|b| b.trim().trim_end_matches('/').to_string())
            .map(|b| {
                if scheme_end(&b).is_some() {
                    Ok(b)
                } else {
                    Err(format!(
                        "base_url must be a scheme, host and port such as http://127.0.0.1:8080, \
                         not {b:?}"
                    ))
                }
            })
            .transpose()?;
        let host_map = list("host_map")
            .into_iter()
            .map(|pair| {
                pair.split_once('=')
                    .map(|(from, to)| (from.trim().to_string(), to.trim().to_string()))
                    .filter(|(from, to)| !from.is_empty() && !to.is_empty())
                    .ok_or_else(|| {
                        format!(
                            "host_map takes HOST=HOST:PORT pairs separated by commas, such as \
                             host_map=shop.example.com=127.0.0.1:8080; found {pair:?}"
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        let urls = param("urls")
            .map(|pattern| {
                Regex::new(&pattern).map_err(|e| {
                    // The error shows the pattern over several lines; its
                    // last says what is wrong.
                    let text = e.to_string();
                    let why = text
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim_start_matches("error: ");
                    format!("urls={pattern} is not a regular expression ({why})")
                })
            })
            .transpose()?;
        let skip_static = match param("skip_static").as_deref().map(str::trim) {
            None | Some("false" | "no" | "0" | "off") => false,
            Some("true" | "yes" | "1" | "on") => true,
            Some(other) => return Err(format!("skip_static must be true or false, not {other:?}")),
        };
        Ok(Selection {
            base_url,
            host_map,
            hosts: list("hosts"),
            urls,
            skip_static,
        })
    }

    /// Whether the entry is replayed.
    fn keeps(&self, url: &str, entry: &Value) -> bool {
        let host = host_of(url).to_ascii_lowercase();
        let host_only = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
        if !self.hosts.is_empty()
            && !self
                .hosts
                .iter()
                .any(|pattern| match pattern.strip_prefix("*.") {
                    Some(domain) => {
                        host_only == domain || host_only.ends_with(&format!(".{domain}"))
                    }
                    None => host_only == pattern || host == *pattern,
                })
        {
            return false;
        }
        if self.urls.as_ref().is_some_and(|re| !re.is_match(url)) {
            return false;
        }
        !(self.skip_static && is_static(url, entry))
    }

    /// The URL to send: the recorded one, pointed elsewhere if asked.
    fn rewrite(&self, url: &str) -> String {
        let Some(authority_start) = scheme_end(url) else {
            return url.to_string();
        };
        let after = &url[authority_start..];
        let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(authority_end);
        if let Some(base) = &self.base_url {
            return format!("{base}{rest}");
        }
        let host = authority.to_ascii_lowercase();
        let host_only = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
        for (from, to) in &self.host_map {
            if *from == host || from == host_only {
                return if scheme_end(to).is_some() {
                    format!("{}{rest}", to.trim_end_matches('/'))
                } else {
                    format!("{}{to}{rest}", &url[..authority_start])
                };
            }
        }
        url.to_string()
    }
}

/// The index after `scheme://` of an http or https URL.
fn scheme_end(url: &str) -> Option<usize> {
    let lower = url.get(..8)?.to_ascii_lowercase();
    if lower.starts_with("http://") {
        Some(7)
    } else if lower.starts_with("https://") {
        Some(8)
    } else {
        None
    }
}

fn host_of(url: &str) -> &str {
    let after = scheme_end(url).map_or(url, |i| &url[i..]);
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    &after[..end]
}

/// A URL of something a browser records that is not an HTTP request.
fn is_not_http(url: &str) -> bool {
    const SCHEMES: [&str; 8] = [
        "ws:",
        "wss:",
        "data:",
        "blob:",
        "about:",
        "file:",
        "chrome-extension:",
        "moz-extension:",
    ];
    let lower = url.get(..20).unwrap_or(url).to_ascii_lowercase();
    SCHEMES.iter().any(|scheme| lower.starts_with(scheme))
}

/// The recorded host for names, without its scheme's default port.
fn host_label(url: &str) -> String {
    let host = host_of(url).to_ascii_lowercase();
    let default = if url[..5].eq_ignore_ascii_case("https") {
        ":443"
    } else {
        ":80"
    };
    host.strip_suffix(default).unwrap_or(&host).to_string()
}

/// An image, font, stylesheet or script: by Chrome's resource type, the
/// response's MIME type, or the path's extension.
fn is_static(url: &str, entry: &Value) -> bool {
    if let Some(kind) = entry.get("_resourceType").and_then(Value::as_str) {
        return STATIC_RESOURCE_TYPES.contains(&kind);
    }
    let mime = entry
        .pointer("/response/content/mimeType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    if mime.starts_with("image/")
        || mime.starts_with("font/")
        || mime.starts_with("text/css")
        || mime.contains("javascript")
    {
        return true;
    }
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let last = path.rsplit('/').next().unwrap_or("");
    last.rsplit_once('.')
        .is_some_and(|(_, ext)| STATIC_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

pub fn parse(
    file: &str,
    text: &str,
    param: &dyn Fn(&str) -> Option<String>,
) -> Result<RawFile, String> {
    let selection = Selection::from_params(param)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let document: Value = serde_json::from_str(text)
        .map_err(|e| format!("{file}:{}: not a valid HAR file: {e}", e.line().max(1)))?;
    let entries = document
        .pointer("/log/entries")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{file}: not a HAR file: it has no log.entries list"))?;
    let mut requests = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let place = format!("entry {} of log.entries", index + 1);
        let error = |what: &str| format!("{file}: {place}: {what}");
        let request = entry
            .get("request")
            .ok_or_else(|| error("it has no request"))?;
        let text_field = |name: &str| {
            request
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| error(&format!("its request has no {name}")))
        };
        let method = text_field("method")?.to_ascii_uppercase();
        if method.is_empty() || !method.bytes().all(is_token_byte) {
            return Err(error(&format!("`{method}` is not an HTTP method")));
        }
        let recorded_url = text_field("url")?;
        // Tunnels, WebSockets, `data:` and `blob:` URLs are not requests
        // to replay.
        let websocket = entry.get("_resourceType").and_then(Value::as_str) == Some("websocket")
            || entry.get("_webSocketMessages").is_some();
        if method == "CONNECT" || websocket || is_not_http(recorded_url) {
            continue;
        }
        if scheme_end(recorded_url).is_none() {
            return Err(error(&format!(
                "`{recorded_url}` is not an http:// or https:// URL (a tool's template, \
                 unresolved?)"
            )));
        }
        if !selection.keeps(recorded_url, entry) {
            continue;
        }
        let url = selection.rewrite(recorded_url);
        let mut headers: Vec<RawHeader> = Vec::new();
        for header in request
            .get("headers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(name), Some(value)) = (
                header.get("name").and_then(Value::as_str),
                header.get("value").and_then(Value::as_str),
            ) else {
                return Err(error("a header has no name or value"));
            };
            let lower = name.to_ascii_lowercase();
            if name.starts_with(':') || DROPPED.contains(&lower.as_str()) {
                continue;
            }
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(error(&format!("`{name}` is not a valid header name")));
            }
            // HTTP/2 may send cookies as several fields; HTTP/1.1 wants one.
            if lower == "cookie" {
                if let Some(cookie) = headers
                    .iter_mut()
                    .find(|h| h.name.eq_ignore_ascii_case("cookie"))
                {
                    cookie.value = format!("{}; {value}", cookie.value);
                    continue;
                }
            }
            headers.push(RawHeader {
                name: name.to_string(),
                value: value.to_string(),
                line: 0,
            });
        }
        let body = post_data(request.get("postData"), &mut headers);
        let name = entry
            .get("comment")
            .and_then(Value::as_str)
            .filter(|c| !c.trim().is_empty())
            .map(|c| c.trim().to_string())
            .unwrap_or_default();
        requests.push(RawRequest {
            name,
            place,
            host: host_label(recorded_url),
            method,
            url,
            headers,
            body: if body.is_empty() {
                Vec::new()
            } else {
                vec![BodyPart::Bytes(body)]
            },
            ..RawRequest::default()
        });
    }
    if requests.is_empty() {
        return Err(if entries.is_empty() {
            format!("{file}: the HAR file has no entries")
        } else {
            format!(
                "{file}: none of its {} entries is left to replay (check hosts=, urls= and \
                 skip_static=)",
                entries.len()
            )
        });
    }
    Ok(RawFile {
        requests,
        templated: false,
        ..RawFile::default()
    })
}

/// The body of a recorded request: its text, or its parameters encoded
/// again when the recording kept only those (a form, or a multipart body
/// whose boundary the request's Content-Type names).
fn post_data(data: Option<&Value>, headers: &mut Vec<RawHeader>) -> Vec<u8> {
    let Some(data) = data else {
        return Vec::new();
    };
    if let Some(text) = data.get("text").and_then(Value::as_str) {
        // Some tools keep a binary body in base64, as HAR does for
        // responses.
        if data.get("encoding").and_then(Value::as_str) == Some("base64") {
            use base64::Engine;
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text) {
                return bytes;
            }
        }
        if !text.is_empty() || data.get("params").is_none() {
            return text.as_bytes().to_vec();
        }
    }
    let params: Vec<&Value> = data
        .get("params")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let field = |p: &Value, k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mime = data
        .get("mimeType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !mime.to_ascii_lowercase().starts_with("multipart/") {
        return params
            .iter()
            .map(|p| {
                format!(
                    "{}={}",
                    form_encode(&field(p, "name")),
                    form_encode(&field(p, "value"))
                )
            })
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes();
    }
    let content_type = headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-type"))
        .map(|h| h.value.clone())
        .unwrap_or(mime);
    let boundary = match boundary_of(&content_type) {
        Some(boundary) => boundary,
        None => {
            let boundary = format!("gorgon{:016x}", fastrand::u64(..));
            headers.retain(|h| !h.name.eq_ignore_ascii_case("content-type"));
            headers.push(RawHeader {
                name: "Content-Type".to_string(),
                value: format!("multipart/form-data; boundary={boundary}"),
                line: 0,
            });
            boundary
        }
    };
    let mut body = String::new();
    for p in params {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"",
            field(p, "name")
        ));
        let file_name = field(p, "fileName");
        if !file_name.is_empty() {
            body.push_str(&format!("; filename=\"{file_name}\""));
        }
        body.push_str("\r\n");
        let content_type = field(p, "contentType");
        if !content_type.is_empty() {
            body.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        body.push_str(&format!("\r\n{}\r\n", field(p, "value")));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body.into_bytes()
}

/// The `boundary=` of a multipart Content-Type.
fn boundary_of(content_type: &str) -> Option<String> {
    content_type.split(';').find_map(|part| {
        let (key, value) = part.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HAR: &str = r#"{"log": {"version": "1.2", "creator": {"name": "Firefox", "version": "1"},
      "entries": [
        {"request": {"method": "GET", "url": "https://shop.example.com/a?x=1", "httpVersion": "HTTP/2",
          "headers": [{"name": ":authority", "value": "x"}, {"name": "Host", "value": "x"},
                      {"name": "Accept", "value": "text/html"}, {"name": "Connection", "value": "keep-alive"},
                      {"name": "cookie", "value": "a=1"}, {"name": "cookie", "value": "b=2"}],
          "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
         "response": {"status": 200}},
        {"comment": "log in", "request": {"method": "post", "url": "http://127.0.0.1:9/login",
          "headers": [], "postData": {"mimeType": "application/x-www-form-urlencoded",
          "params": [{"name": "user", "value": "a b"}, {"name": "pw", "value": "x&y"}]}}},
        {"request": {"method": "GET", "url": "https://cdn.example.com/logo.png", "headers": [],
          "postData": {"mimeType": "application/octet-stream", "encoding": "base64", "text": "AAEC"}},
         "response": {"content": {"mimeType": "image/png"}}},
        {"request": {"method": "CONNECT", "url": "shop.example.com:443", "headers": []}},
        {"request": {"method": "GET", "url": "wss://shop.example.com/live", "headers": []}},
        {"request": {"method": "POST", "url": "https://shop.example.com/upload", "headers": [],
          "postData": {"mimeType": "multipart/form-data",
          "params": [{"name": "title", "value": "hi"}, {"name": "f", "fileName": "a.txt", "contentType": "text/plain", "value": "A"}]}}}
      ]}}"#;

    fn parse_with(params: &[(&str, &str)]) -> Result<RawFile, String> {
        let param = |k: &str| {
            params
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        parse("x.har", HAR, &param)
    }

    fn body(request: &RawRequest) -> String {
        match request.body.as_slice() {
            [BodyPart::Bytes(b)] => String::from_utf8(b.clone()).unwrap(),
            _ => String::new(),
        }
    }

    #[test]
    fn entries_become_requests() {
        let file = parse_with(&[]).unwrap();
        assert!(!file.templated);
        let [get, post, png, upload] = file.requests.as_slice() else {
            panic!("four requests: {:?}", file.requests)
        };
        assert_eq!(
            (get.method.as_str(), get.url.as_str()),
            ("GET", "https://shop.example.com/a?x=1")
        );
        let names: Vec<&str> = get.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["Accept", "cookie"]);
        assert_eq!(get.headers[1].value, "a=1; b=2");
        assert_eq!(
            (post.name.as_str(), post.method.as_str()),
            ("log in", "POST")
        );
        assert_eq!(body(post), "user=a+b&pw=x%26y");
        assert_eq!(png.body, [BodyPart::Bytes(vec![0, 1, 2])]);
        let multipart = body(upload);
        let content_type = &upload.headers[0].value;
        let boundary = content_type.split("boundary=").nth(1).unwrap();
        assert_eq!(
            multipart,
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhi\r\n\
                 --{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\
                 Content-Type: text/plain\r\n\r\nA\r\n--{boundary}--\r\n"
            )
        );
    }

    #[test]
    fn recordings_are_pointed_and_filtered() {
        let file = parse_with(&[
            ("base_url", "http://127.0.0.1:8080/"),
            ("skip_static", "true"),
        ])
        .unwrap();
        let urls: Vec<&str> = file.requests.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:8080/a?x=1",
                "http://127.0.0.1:8080/login",
                "http://127.0.0.1:8080/upload"
            ]
        );
        let file = parse_with(&[
            ("host_map", "shop.example.com=localhost:81"),
            ("hosts", "*.example.com"),
        ])
        .unwrap();
        let urls: Vec<&str> = file.requests.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://localhost:81/a?x=1",
                "https://cdn.example.com/logo.png",
                "https://localhost:81/upload"
            ]
        );
        let file = parse_with(&[("urls", "/(login|upload)$")]).unwrap();
        assert_eq!(file.requests.len(), 2);
        let error = parse_with(&[("hosts", "nowhere.org")]).unwrap_err();
        assert!(error.contains("none of its 6 entries"), "{error}");
        assert!(parse_with(&[("base_url", "staging:8080")]).is_err());
    }

    #[test]
    fn broken_files_are_explained() {
        let none = |_: &str| None;
        for (text, expected) in [
            (
                "{\"log\": \n {\"entries\": [}}",
                "x.har:2: not a valid HAR file",
            ),
            (
                "{\"log\": {}}",
                "x.har: not a HAR file: it has no log.entries",
            ),
            (
                "{\"log\": {\"entries\": []}}",
                "x.har: the HAR file has no entries",
            ),
            (
                "{\"log\": {\"entries\": [{\"request\": {\"method\": \"GET\"}}]}}",
                "x.har: entry 1 of log.entries: its request has no url",
            ),
            (
                "{\"log\": {\"entries\": [{\"request\": {\"method\": \"GET\\r\\nX: y\", \"url\": \"http://h/\"}}]}}",
                "x.har: entry 1 of log.entries: `GET\r\nX: Y` is not an HTTP method",
            ),
            (
                "{\"log\": {\"entries\": [{\"request\": {\"method\": \"GET\", \"url\": \"{{ _.base }}/x\"}}]}}",
                "x.har: entry 1 of log.entries: `{{ _.base }}/x` is not an http:// or https:// URL",
            ),
        ] {
            let error = parse("x.har", text, &none).unwrap_err();
            assert!(error.starts_with(expected), "{text}: {error}");
        }
    }
}
