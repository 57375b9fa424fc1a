//! Reading a value out of a response for a later request: a JSON field by
//! path, or a header.

use serde_json::Value;

/// A path into a JSON document: `id`, `$.data.id`, `items[0].id`,
/// `items.0.id`, `$['a b'].c`; `$` alone is the whole document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(Vec<Step>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let invalid = || {
            format!(
                "`{text}` is not a JSON path (expected something like `id` or `data.items[0].id`)"
            )
        };
        if text == "$" {
            return Ok(JsonPath(Vec::new()));
        }
        let body = text.strip_prefix('$').unwrap_or(text);
        let body = body.strip_prefix('.').unwrap_or(body);
        let mut steps = Vec::new();
        // `[n]` and `['key']` are the same as `.n` and `.key`.
        let normalised = body
            .replace("['", ".")
            .replace("']", "")
            .replace("[\"", ".")
            .replace("\"]", "")
            .replace('[', ".")
            .replace(']', "");
        let normalised = normalised.strip_prefix('.').unwrap_or(&normalised);
        for part in normalised.split('.') {
            if part.is_empty() {
                return Err(invalid());
            }
            steps.push(match part.parse::<usize>() {
                Ok(index) => Step::Index(index),
                Err(_) => Step::Key(part.to_string()),
            });
        }
        if steps.is_empty() || body.contains(' ') {
            return Err(invalid());
        }
        Ok(JsonPath(steps))
    }

    /// The value at this path as text: a string without its quotes, a
    /// number or boolean as written; `None` when it is absent or null.
    pub fn find(&self, document: &Value) -> Option<String> {
        let mut at = document;
        for step in &self.0 {
            at = match (step, at) {
                (Step::Key(key), Value::Object(map)) => map.get(key)?,
                (Step::Index(i), Value::Array(items)) => items.get(*i)?,
                // A numeric key of an object, such as `{"0": ...}`.
                (Step::Index(i), Value::Object(map)) => map.get(&i.to_string())?,
                _ => return None,
            };
        }
        match at {
            Value::Null => None,
            Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// The first value of header `name` (any case) in a response head.
pub fn header(head: &[u8], name: &str) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    response.parse(head).ok()?;
    response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_find_values() {
        let doc: Value = serde_json::from_str(
            r#"{"id": 7, "name": "a", "data": {"items": [{"id": "x"}, {"ok": true}]}, "n": null}"#,
        )
        .unwrap();
        let find = |p: &str| JsonPath::parse(p).unwrap().find(&doc);
        assert_eq!(find("id").as_deref(), Some("7"));
        assert_eq!(find("$.name").as_deref(), Some("a"));
        assert_eq!(find("data.items[0].id").as_deref(), Some("x"));
        assert_eq!(find("data.items.1.ok").as_deref(), Some("true"));
        assert_eq!(find("n"), None);
        assert_eq!(find("missing"), None);
        assert_eq!(find("id.deeper"), None);
        assert_eq!(find("$['data'].items[0]").as_deref(), Some(r#"{"id":"x"}"#));
        assert!(find("$").unwrap().starts_with('{'));
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in ["", "a..b", "$.", "a b"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn headers_are_found_in_any_case() {
        let head = b"HTTP/1.1 201 Created\r\nLocation: /items/3 \r\nX-A: 1\r\n\r\n";
        assert_eq!(header(head, "location").as_deref(), Some("/items/3"));
        assert_eq!(header(head, "X-B"), None);
    }
}
