//! `{name}` substitution: compiled once when the file is loaded, rendered
//! per call without allocating.
//!
//! Names that are known when the file is loaded (file variables, `--set`
//! parameters) are pasted in at compile time, so a call only fills in the
//! operation's `{number}` and the variables captured from earlier
//! responses. `{{` writes a literal `{`; a brace that does not open a
//! `{name}` (JSON, say) is kept as it is.

/// What a name in a template stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A value known now, pasted in.
    Value(String),
    /// The operation's number.
    Number,
    /// A variable captured by an earlier request; its slot.
    Captured(usize),
    /// Nothing by that name.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(Vec<u8>),
    Number,
    Var(usize),
}

/// A compiled template: text interleaved with per-call values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    pub pieces: Vec<Piece>,
}

/// A `{name}` that could not be resolved, at byte `offset` of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    pub name: String,
    pub offset: usize,
}

impl Template {
    /// A template that is only text.
    pub fn text(text: impl Into<Vec<u8>>) -> Template {
        let mut template = Template::default();
        template.push_text(&text.into());
        template
    }

    /// Compiles `source`. With `strict`, an unknown `{name}` is an error;
    /// without (HAR files, which were not written for gorgon), it is kept
    /// as literal text.
    pub fn compile(
        source: &str,
        lookup: &dyn Fn(&str) -> Lookup,
        strict: bool,
    ) -> Result<Template, UnknownName> {
        let mut template = Template::default();
        let bytes = source.as_bytes();
        let mut literal_start = 0;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'{' {
                i += 1;
                continue;
            }
            if bytes.get(i + 1) == Some(&b'{') {
                // `{{` is an escaped brace: keep one.
                template.push_text(&bytes[literal_start..=i]);
                i += 2;
                literal_start = i;
                continue;
            }
            let Some(name) = name_at(source, i) else {
                i += 1;
                continue;
            };
            let piece = match lookup(name) {
                Lookup::Value(value) => Piece::Text(value.into_bytes()),
                Lookup::Number => Piece::Number,
                Lookup::Captured(slot) => Piece::Var(slot),
                Lookup::Unknown if strict => {
                    return Err(UnknownName {
                        name: name.to_string(),
                        offset: i,
                    })
                }
                Lookup::Unknown => {
                    i += 1;
                    continue;
                }
            };
            template.push_text(&bytes[literal_start..i]);
            match piece {
                Piece::Text(text) => template.push_text(&text),
                other => template.pieces.push(other),
            }
            i += name.len() + 2;
            literal_start = i;
        }
        template.push_text(&bytes[literal_start..]);
        Ok(template)
    }

    fn push_text(&mut self, text: &[u8]) {
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

    /// Appends the rendered template to `out`.
    #[inline]
    pub fn render(&self, out: &mut Vec<u8>, number: u64, vars: &[String]) {
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.extend_from_slice(text),
                Piece::Number => push_decimal(out, number),
                Piece::Var(slot) => out.extend_from_slice(vars[*slot].as_bytes()),
            }
        }
    }
}

/// The name of a `{name}` placeholder opening at `open`, if it is one: an
/// identifier (letters, digits, `_`, `-`, `.`, not starting with a digit)
/// closed by `}`.
fn name_at(source: &str, open: usize) -> Option<&str> {
    let rest = &source[open + 1..];
    let close = rest.find('}')?;
    let name = &rest[..close];
    let mut chars = name.chars();
    let first = chars.next()?;
    let valid = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    valid.then_some(name)
}

/// Whether `name` can be used as a variable (`{name}`).
pub fn is_name(name: &str) -> bool {
    let braced = format!("{{{name}}}");
    name_at(&braced, 0) == Some(name)
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

    fn lookup(name: &str) -> Lookup {
        match name {
            "number" => Lookup::Number,
            "base" => Lookup::Value("http://h:1".into()),
            "id" => Lookup::Captured(0),
            _ => Lookup::Unknown,
        }
    }

    fn render(source: &str, number: u64, id: &str) -> String {
        let t = Template::compile(source, &lookup, true).unwrap();
        let mut out = Vec::new();
        t.render(&mut out, number, &[id.to_string()]);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn names_are_replaced_and_json_braces_kept() {
        assert_eq!(
            render(r#"{base}/items/{id}?n={number} {"a":{"b":1}}"#, 42, "x7"),
            r#"http://h:1/items/x7?n=42 {"a":{"b":1}}"#
        );
        assert_eq!(render("{{id} { id } {}", 0, "x"), "{id} { id } {}");
        assert_eq!(render("{number}", 0, ""), "0");
        assert_eq!(render("{number}", u64::MAX, ""), u64::MAX.to_string());
    }

    #[test]
    fn static_values_fold_into_text() {
        let t = Template::compile("{base}/x", &lookup, true).unwrap();
        assert_eq!(t.as_static(), Some(&b"http://h:1/x"[..]));
    }

    #[test]
    fn unknown_names_are_errors_only_when_strict() {
        let err = Template::compile("ab{nope}", &lookup, true).unwrap_err();
        assert_eq!((err.name.as_str(), err.offset), ("nope", 2));
        let t = Template::compile("ab{nope}", &lookup, false).unwrap();
        assert_eq!(t.as_static(), Some(&b"ab{nope}"[..]));
    }

    #[test]
    fn names() {
        assert!(is_name("user_id") && is_name("a.b-c"));
        assert!(!is_name("1x") && !is_name("a b") && !is_name(""));
    }
}
