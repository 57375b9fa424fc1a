//! JetBrains response handlers (`> {% ... %}`, `> ./script.js`) read as
//! captures when that is all they do.
//!
//! Gorgon runs no JavaScript, but the most common handler only keeps a
//! value of the response for later requests:
//!
//! ```text
//! > {% client.global.set("token", response.body.token); %}
//! ```
//!
//! which is exactly a capture. Each statement must be such a `set` from
//! `response.body.PATH` (the parsed JSON body) or
//! `response.headers.valueOf("NAME")`; logging is ignored; anything else
//! (tests, conditions, computed values) is refused, since skipping it
//! would run a different flow than the file describes.

use std::collections::HashMap;

use crate::capture::JsonPath;
use crate::plan::CaptureFrom;

/// What to use instead of a script, for the refusals.
pub const INSTEAD: &str = "name the request (`# @name login`) and use \
                           {{login.response.body.$.token}} or \
                           {{login.response.headers.Location}} in later requests";

/// Why httpyac's `{{ ... }}` script blocks are refused.
pub fn script_block_refusal() -> String {
    format!("script blocks (`{{{{` ... `}}}}`) do not run in Gorgon: {INSTEAD}")
}

/// The captures a handler script makes, or why it cannot be honoured.
pub fn captures(script: &str) -> Result<Vec<(String, CaptureFrom)>, String> {
    let mut found = Vec::new();
    // `const token = response.body.token;` names a value for a `set`.
    let mut named: HashMap<String, CaptureFrom> = HashMap::new();
    for statement in statements(&strip_comments(script)) {
        if statement.starts_with("console.log(") || statement.starts_with("client.log(") {
            continue;
        }
        if let Some((name, from)) = declaration(&statement) {
            named.insert(name, from);
            continue;
        }
        let capture = set_call(&statement, &named).ok_or_else(|| {
            let mut shown: String = statement.chars().take(60).collect();
            if shown.len() < statement.len() {
                shown.push('…');
            }
            format!(
                "response handler scripts do not run in Gorgon and `{shown}` is more than \
                 keeping a value of the response: {INSTEAD}"
            )
        })?;
        found.push(capture);
    }
    Ok(found)
}

/// `const NAME = SOURCE` (or `let`, `var`).
fn declaration(statement: &str) -> Option<(String, CaptureFrom)> {
    let rest = ["const ", "let ", "var "]
        .iter()
        .find_map(|keyword| statement.strip_prefix(keyword))?;
    let (name, source) = rest.split_once('=')?;
    let name = name.trim();
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "_$".contains(c));
    plain.then(|| Some((name.to_string(), source_of(source.trim())?)))?
}

/// `client.global.set("NAME", SOURCE)`, SOURCE possibly a name `named`
/// gives.
fn set_call(
    statement: &str,
    named: &HashMap<String, CaptureFrom>,
) -> Option<(String, CaptureFrom)> {
    let inner = statement
        .strip_prefix("client.global.set(")
        .or_else(|| statement.strip_prefix("client.variables.global.set("))?
        .strip_suffix(')')?;
    let (name, source) = inner.split_once(',')?;
    let name = unquote(name.trim())?;
    if !crate::template::is_name(name) {
        return None;
    }
    let source = source.trim();
    let from = match named.get(source) {
        Some(from) => from.clone(),
        None => source_of(source)?,
    };
    Some((name.to_string(), from))
}

fn source_of(source: &str) -> Option<CaptureFrom> {
    // The capture is text already.
    let source = source.strip_suffix(".toString()").unwrap_or(source);
    if let Some(header) = source
        .strip_prefix("response.headers.valueOf(")
        .and_then(|s| s.strip_suffix(')'))
    {
        return Some(CaptureFrom::Header(unquote(header.trim())?.to_string()));
    }
    // `response.body` is the parsed JSON body: in `response.body.json.token`
    // (httpbin's echo) `json` is a key like any other.
    let path = source.strip_prefix("response.body")?;
    // `["a"]` is `.a`.
    let path = path
        .replace("[\"", ".")
        .replace("\"]", "")
        .replace("['", ".")
        .replace("']", "");
    let path = path.strip_prefix('.').unwrap_or(&path);
    let path = if path.is_empty() { "$" } else { path };
    let plain = |c: char| c.is_alphanumeric() || "_$.[]-".contains(c);
    if !path.chars().all(plain) {
        return None;
    }
    JsonPath::parse(path).ok().map(CaptureFrom::Json)
}

fn unquote(text: &str) -> Option<&str> {
    ['"', '\'', '`']
        .iter()
        .find_map(|q| text.strip_prefix(*q)?.strip_suffix(*q))
}

/// Drops `//` and `/* */` comments outside strings (of JavaScript, or
/// of the JSON with comments VS Code's settings are).
pub fn strip_comments(script: &str) -> String {
    let mut out = String::new();
    let mut chars = script.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == '\\' {
                    out.extend(chars.next());
                } else if c == q {
                    quote = None;
                }
            }
            None => match (c, chars.peek()) {
                ('"' | '\'' | '`', _) => {
                    quote = Some(c);
                    out.push(c);
                }
                ('/', Some('/')) => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            out.push('\n');
                            break;
                        }
                    }
                }
                ('/', Some('*')) => {
                    chars.next();
                    let mut last = ' ';
                    for c in chars.by_ref() {
                        if last == '*' && c == '/' {
                            break;
                        }
                        last = c;
                    }
                }
                _ => out.push(c),
            },
        }
    }
    out
}

/// Statements, split at `;` and line ends outside brackets and strings,
/// with their blanks removed outside strings, but for one between two
/// words (`const token`).
fn statements(script: &str) -> Vec<String> {
    let mut all = Vec::new();
    let mut current = String::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut space = false;
    let mut chars = script.chars();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            current.push(c);
            if c == '\\' {
                current.extend(chars.next());
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => {
                quote = Some(c);
                current.push(c);
            }
            '(' | '{' | '[' => {
                depth += 1;
                current.push(c);
            }
            ')' | '}' | ']' => {
                depth -= 1;
                current.push(c);
            }
            ';' | '\n' if depth <= 0 => {
                if !current.is_empty() {
                    all.push(std::mem::take(&mut current));
                }
            }
            c if c.is_whitespace() => space = true,
            c => {
                let word = |c: char| c.is_alphanumeric() || "_$".contains(c);
                if std::mem::take(&mut space) && current.chars().last().is_some_and(word) && word(c)
                {
                    current.push(' ');
                }
                current.push(c);
            }
        }
    }
    if !current.is_empty() {
        all.push(current);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_variables_from_the_response_is_a_capture() {
        let script = r#"
            // keep the token
            client.global.set("token", response.body.token);
            client.global.set('id', response.body.data.items[0].id) /* the first */
            client.global.set("where", response.headers.valueOf("Location"));
            client.log("got it; moving on")
        "#;
        let found = captures(script).unwrap();
        assert_eq!(found.len(), 3);
        let aliased = captures(
            "const token = response.body.data.token;\nlet id = response.body.id.toString()\n\
             client.global.set(\"token\", token); client.global.set(\"id\", id);",
        )
        .unwrap();
        assert_eq!(
            aliased,
            [
                (
                    "token".to_string(),
                    CaptureFrom::Json(JsonPath::parse("data.token").unwrap())
                ),
                (
                    "id".to_string(),
                    CaptureFrom::Json(JsonPath::parse("id").unwrap())
                )
            ]
        );
        assert_eq!(found[0].0, "token");
        let echoed = captures("client.global.set(\"t\", response.body.json.token)").unwrap();
        assert_eq!(
            echoed[0].1,
            CaptureFrom::Json(JsonPath::parse("json.token").unwrap())
        );
        assert_eq!(
            found[1].1,
            CaptureFrom::Json(JsonPath::parse("data.items[0].id").unwrap())
        );
        assert_eq!(found[2].1, CaptureFrom::Header("Location".into()));
    }

    #[test]
    fn anything_else_is_refused() {
        for script in [
            "client.test(\"ok\", function() { client.assert(response.status === 200); });",
            "client.global.set(\"t\", response.body.token + \"x\");",
            "if (response.status == 200) { client.global.set(\"t\", response.body.t) }",
        ] {
            let error = captures(script).unwrap_err();
            assert!(error.contains("do not run in Gorgon"), "{script}: {error}");
        }
    }
}
