//! HAR files, as browsers' developer tools export them ("Save all as HAR"):
//! each entry's request is replayed in order.
//!
//! What a browser records but a replay must not repeat is dropped: HTTP/2
//! pseudo-headers (`:authority`), and the headers the plugin computes
//! itself (`Host`, `Content-Length`, `Connection`, …). Entries are named
//! `METHOD /path` (or by their `comment`), with a counter when a method and
//! path repeat.

use serde_json::Value;

use crate::plan::{RawFile, RawHeader, RawRequest};

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

pub fn parse(file: &str, text: &str) -> Result<RawFile, String> {
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
        let url = text_field("url")?.to_string();
        let mut headers = Vec::new();
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
            if name.starts_with(':') || DROPPED.contains(&name.to_ascii_lowercase().as_str()) {
                continue;
            }
            headers.push(RawHeader {
                name: name.to_string(),
                value: value.to_string(),
                line: 0,
            });
        }
        let name = entry
            .get("comment")
            .and_then(Value::as_str)
            .filter(|c| !c.trim().is_empty())
            .map(|c| c.trim().to_string())
            .unwrap_or_default();
        requests.push(RawRequest {
            name,
            line: 0,
            place,
            method,
            url,
            headers,
            body: post_data(request.get("postData")),
            body_line: 0,
            captures: Vec::new(),
        });
    }
    if requests.is_empty() {
        return Err(format!("{file}: the HAR file has no entries"));
    }
    Ok(RawFile {
        vars: Vec::new(),
        requests,
        strict: false,
    })
}

/// The body of a recorded request: its text, or its form parameters
/// encoded again when the browser kept only those.
fn post_data(data: Option<&Value>) -> String {
    let Some(data) = data else {
        return String::new();
    };
    if let Some(text) = data.get("text").and_then(Value::as_str) {
        return text.to_string();
    }
    data.get("params")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let field = |k| p.get(k).and_then(Value::as_str).unwrap_or("");
            format!(
                "{}={}",
                form_encode(field("name")),
                form_encode(field("value"))
            )
        })
        .collect::<Vec<_>>()
        .join("&")
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
        {"request": {"method": "GET", "url": "http://127.0.0.1:9/a?x=1", "httpVersion": "HTTP/2",
          "headers": [{"name": ":authority", "value": "x"}, {"name": "Host", "value": "x"},
                      {"name": "Accept", "value": "text/html"}, {"name": "Connection", "value": "keep-alive"}],
          "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
         "response": {"status": 200}},
        {"comment": "log in", "request": {"method": "post", "url": "http://127.0.0.1:9/login",
          "headers": [], "postData": {"mimeType": "application/x-www-form-urlencoded",
          "params": [{"name": "user", "value": "a b"}, {"name": "pw", "value": "x&y"}]}}}
      ]}}"#;

    #[test]
    fn entries_become_requests() {
        let file = parse("x.har", HAR).unwrap();
        assert!(!file.strict);
        let [get, post] = file.requests.as_slice() else {
            panic!("two requests")
        };
        assert_eq!(
            (get.method.as_str(), get.url.as_str()),
            ("GET", "http://127.0.0.1:9/a?x=1")
        );
        assert_eq!(get.headers.len(), 1);
        assert_eq!(get.headers[0].name, "Accept");
        assert_eq!(get.name, "");
        assert_eq!(
            (post.name.as_str(), post.method.as_str()),
            ("log in", "POST")
        );
        assert_eq!(post.body, "user=a+b&pw=x%26y");
    }

    #[test]
    fn broken_files_are_explained() {
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
        ] {
            let error = parse("x.har", text).unwrap_err();
            assert!(error.starts_with(expected), "{text}: {error}");
        }
    }
}
