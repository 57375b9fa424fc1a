//! `{{expression}}` substitution: compiled once when the file is loaded,
//! rendered per call with as little work as possible.
//!
//! What an expression stands for is decided by the caller (`plan`), which
//! hands back a template to splice in: values known at load time (file
//! variables, environments, `--set`) become text, so a call only fills in
//! the operation's number, the values captured from earlier responses and
//! the system variables that change per call (`{{$uuid}}`, …). `{number}`
//! with single braces, the plugin's older spelling, is the operation's
//! number too. Any other brace is text, as JSON needs.

use std::sync::Arc;

use crate::system::System;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(Vec<u8>),
    /// The operation's number.
    Number,
    /// A value captured from an earlier response; its slot.
    Var(usize),
    /// A value made afresh for each use (a uuid, the time, …).
    System(Arc<System>),
    /// A per-call value in a URL: its spaces are sent as `%20`, so a
    /// date (`Mon, 01 Jan …`) cannot split the request line.
    InUrl(Box<Piece>),
    /// A `Cookie: …` header line from the cookie jar in this slot, when
    /// it holds any.
    Cookie(usize),
}

/// A compiled template: text interleaved with per-call values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    pub pieces: Vec<Piece>,
}

/// Why an expression could not be compiled, at byte `offset` of the
/// source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    pub message: String,
    pub offset: usize,
}

impl Template {
    /// A template that is only text.
    pub fn text(text: impl Into<Vec<u8>>) -> Template {
        let mut template = Template::default();
        template.push_text(&text.into());
        template
    }

    /// Compiles `source`, asking `resolve` what each `{{expression}}`
    /// (trimmed) stands for.
    pub fn compile(
        source: &str,
        resolve: &mut dyn FnMut(&str) -> Result<Template, String>,
    ) -> Result<Template, Unresolved> {
        let mut template = Template::default();
        let bytes = source.as_bytes();
        let mut literal_start = 0;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'{' {
                i += 1;
                continue;
            }
            if source[i..].starts_with("{number}") && !source[..i].ends_with('{') {
                template.push_text(&bytes[literal_start..i]);
                template.pieces.push(Piece::Number);
                i += "{number}".len();
                literal_start = i;
                continue;
            }
            // `{{{x}}}`: the first brace is text (a JSON object around a
            // variable).
            if !source[i..].starts_with("{{") || source[i..].starts_with("{{{") {
                i += 1;
                continue;
            }
            let inner_start = i + 2;
            let expression = match source[inner_start..].find("}}") {
                Some(len) if !source[inner_start..inner_start + len].contains(['{', '\n']) => {
                    &source[inner_start..inner_start + len]
                }
                _ => {
                    return Err(Unresolved {
                        message: "`{{` opens a variable that is not closed by `}}` on the same \
                                  line"
                            .to_string(),
                        offset: i,
                    })
                }
            };
            let value =
                resolve(expression.trim()).map_err(|message| Unresolved { message, offset: i })?;
            template.push_text(&bytes[literal_start..i]);
            template.append(&value);
            i = inner_start + expression.len() + 2;
            literal_start = i;
        }
        template.push_text(&bytes[literal_start..]);
        Ok(template)
    }

    pub fn push_text(&mut self, text: &[u8]) {
        if text.is_empty() {
            return;
        }
        if let Some(Piece::Text(last)) = self.pieces.last_mut() {
            last.extend_from_slice(text);
        } else {
            self.pieces.push(Piece::Text(text.to_vec()));
        }
    }

    /// Appends another template.
    pub fn append(&mut self, other: &Template) {
        for piece in &other.pieces {
            match piece {
                Piece::Text(text) => self.push_text(text),
                other => self.pieces.push(other.clone()),
            }
        }
    }

    /// The text, when the template has no per-call value.
    pub fn as_static(&self) -> Option<&[u8]> {
        match self.pieces.as_slice() {
            [] => Some(&[]),
            [Piece::Text(text)] => Some(text),
            _ => None,
        }
    }

    /// The slots of the captured values it uses.
    pub fn slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(slot) => Some(*slot),
            Piece::InUrl(inner) => match **inner {
                Piece::Var(slot) => Some(slot),
                _ => None,
            },
            _ => None,
        })
    }

    /// The same template for a URL: text spaces as `%20` now, per-call
    /// values' spaces when they are rendered.
    pub fn for_url(self) -> Template {
        let pieces = self
            .pieces
            .into_iter()
            .map(|piece| match piece {
                Piece::Text(text) if text.contains(&b' ') => Piece::Text(
                    String::from_utf8_lossy(&text)
                        .replace(' ', "%20")
                        .into_bytes(),
                ),
                Piece::Var(_) | Piece::System(_) => Piece::InUrl(Box::new(piece)),
                other => other,
            })
            .collect();
        Template { pieces }
    }

    /// Whether its text (not its per-call values) has a CR or LF.
    pub fn has_line_break(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Text(t) if t.iter().any(|b| matches!(b, b'\r' | b'\n'))))
    }

    /// Appends the rendered template to `out`.
    #[inline]
    pub fn render(&self, out: &mut Vec<u8>, number: u64, vars: &[String]) {
        for piece in &self.pieces {
            render_piece(piece, out, number, vars);
        }
    }
}

#[inline]
fn render_piece(piece: &Piece, out: &mut Vec<u8>, number: u64, vars: &[String]) {
    match piece {
        Piece::Text(text) => out.extend_from_slice(text),
        Piece::Number => push_decimal(out, number),
        Piece::Var(slot) => out.extend_from_slice(vars[*slot].as_bytes()),
        Piece::System(system) => system.render(out, number),
        Piece::Cookie(slot) => {
            if !vars[*slot].is_empty() {
                out.extend_from_slice(b"Cookie: ");
                out.extend_from_slice(vars[*slot].as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        Piece::InUrl(inner) => {
            let start = out.len();
            render_piece(inner, out, number, vars);
            if out[start..].contains(&b' ') {
                let value = out.split_off(start);
                for byte in value {
                    match byte {
                        b' ' => out.extend_from_slice(b"%20"),
                        other => out.push(other),
                    }
                }
            }
        }
    }
}

/// Whether `name` can be a variable: letters, digits, `_`, `-` and `.`
/// (as the JetBrains client documents), not starting with a digit.
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Writes `n` in decimal without going through `fmt`.
#[inline]
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(name: &str) -> Result<Template, String> {
        match name {
            "base" => Ok(Template::text("http://h:1")),
            "id" => Ok(Template {
                pieces: vec![Piece::Var(0)],
            }),
            _ => Err(format!("unknown {name}")),
        }
    }

    fn render(source: &str, number: u64, id: &str) -> String {
        let t = Template::compile(source, &mut resolve).unwrap();
        let mut out = Vec::new();
        t.render(&mut out, number, &[id.to_string()]);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn expressions_are_replaced_and_json_braces_kept() {
        assert_eq!(
            render(
                r#"{{base}}/items/{{ id }}?n={number} {"a":{"b":1}}"#,
                42,
                "x7"
            ),
            r#"http://h:1/items/x7?n=42 {"a":{"b":1}}"#
        );
        assert_eq!(
            render("{id} { id } {} {{{id}}}", 0, "x"),
            "{id} { id } {} {x}"
        );
        assert_eq!(render("{number}", u64::MAX, ""), u64::MAX.to_string());
    }

    #[test]
    fn static_values_fold_into_text() {
        let t = Template::compile("{{base}}/x", &mut resolve).unwrap();
        assert_eq!(t.as_static(), Some(&b"http://h:1/x"[..]));
    }

    #[test]
    fn unknown_and_unclosed_expressions_are_errors_with_their_offset() {
        let err = Template::compile("ab{{nope}}", &mut resolve).unwrap_err();
        assert_eq!((err.message.as_str(), err.offset), ("unknown nope", 2));
        let err = Template::compile("a {{base", &mut resolve).unwrap_err();
        assert!(err.message.contains("not closed"), "{err:?}");
        assert_eq!(err.offset, 2);
        assert!(Template::compile("{{a\n}}", &mut resolve).is_err());
    }

    #[test]
    fn spaces_in_urls_are_encoded_when_rendered() {
        let t = Template::compile("http://h/a b/{{id}}", &mut resolve)
            .unwrap()
            .for_url();
        let mut out = Vec::new();
        t.render(&mut out, 0, &["x y".to_string()]);
        assert_eq!(out, b"http://h/a%20b/x%20y");
        assert_eq!(t.slots().collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn names() {
        assert!(is_name("user_id") && is_name("a.b-c"));
        assert!(!is_name("1x") && !is_name("a b") && !is_name("") && !is_name("$x"));
    }
}
