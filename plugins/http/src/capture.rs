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

/// Keeps the cookies a response head sets in `jar` (`a=1; b=2`, as a
/// `Cookie` header carries them), as the editors' clients do for the
/// requests after it. A cookie set again replaces the one of the same
/// name; one set with `Max-Age=0` is removed. Attributes (`Path`,
/// `Domain`, `Expires`) are not followed: the jar is per server and per
/// call.
pub fn keep_cookies(head: &[u8], jar: &mut String) {
    // Most responses set none: skip parsing them.
    if !head
        .windows(b"set-cookie".len())
        .any(|w| w.eq_ignore_ascii_case(b"set-cookie"))
    {
        return;
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    if response.parse(head).is_err() {
        return;
    }
    for header in response.headers.iter() {
        if !header.name.eq_ignore_ascii_case("set-cookie") {
            continue;
        }
        let text = String::from_utf8_lossy(header.value);
        let mut attributes = text.split(';');
        let Some((name, value)) = attributes.next().and_then(|pair| pair.split_once('=')) else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        let expired = attributes.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
        let mut kept: Vec<&str> = jar
            .split("; ")
            .filter(|c| !c.is_empty() && c.split_once('=').map(|(n, _)| n) != Some(name))
            .collect();
        let set = format!("{name}={value}");
        if !expired && !name.is_empty() {
            kept.push(&set);
        }
        *jar = kept.join("; ");
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
    fn cookies_are_kept_replaced_and_removed() {
        let mut jar = String::new();
        keep_cookies(
            b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/; HttpOnly\r\nset-cookie: b=2\r\n\r\n",
            &mut jar,
        );
        assert_eq!(jar, "a=1; b=2");
        keep_cookies(b"HTTP/1.1 200 OK\r\nSet-Cookie: a=3\r\n\r\n", &mut jar);
        assert_eq!(jar, "b=2; a=3");
        keep_cookies(
            b"HTTP/1.1 200 OK\r\nSet-Cookie: b=; Max-Age=0\r\n\r\n",
            &mut jar,
        );
        assert_eq!(jar, "a=3");
    }

    #[test]
    fn headers_are_found_in_any_case() {
        let head = b"HTTP/1.1 201 Created\r\nLocation: /items/3 \r\nX-A: 1\r\n\r\n";
        assert_eq!(header(head, "location").as_deref(), Some("/items/3"));
        assert_eq!(header(head, "X-B"), None);
    }
}
