//! Text as the report shows it to people: compact durations, labels made
//! safe to print, and tables fitted to a width.

use std::borrow::Cow;
use std::io::IsTerminal as _;

pub use crate::units::compact;

/// [`compact`] without needless zeros, for a sentence or an axis tick:
/// `3s`, `1ms`, `1.5s`, `200µs`.
pub fn trimmed(ns: u64) -> String {
    let text = compact(ns);
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number = if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    };
    format!("{number}{unit}")
}

/// A label from a plugin made safe for a terminal, a CSV cell or a page:
/// control characters (an escape sequence, a newline, a NUL) are written
/// as Rust escapes (`\u{1b}`, `\n`, `\0`), so a label can neither move the
/// cursor nor break a row. The JSON keeps the label as it was.
pub fn escape_control(label: &str) -> Cow<'_, str> {
    if !label.chars().any(char::is_control) {
        return Cow::Borrowed(label);
    }
    let mut out = String::with_capacity(label.len() + 8);
    for c in label.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `label` in at most `width` characters, the end replaced by `…` when it
/// is longer.
pub fn shorten(label: &str, width: usize) -> Cow<'_, str> {
    if label.chars().count() <= width {
        return Cow::Borrowed(label);
    }
    let kept: String = label.chars().take(width.saturating_sub(1)).collect();
    Cow::Owned(format!("{kept}…"))
}

/// The width tables are fitted to: `COLUMNS` when it is set (as `ls` and
/// git read it), else the terminal's when stdout is one, else 80 (a log,
/// a pipe, a CI page).
pub fn table_width() -> usize {
    const DEFAULT: usize = 80;
    let asked = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok());
    if let Some(columns) = asked.filter(|&c| c >= 40) {
        return columns;
    }
    if !std::io::stdout().is_terminal() {
        return DEFAULT;
    }
    comfy_table::Table::new()
        .width()
        .map(usize::from)
        .filter(|&w| w >= 40)
        .unwrap_or(DEFAULT)
}

/// The widest line of a rendered table, in characters.
pub fn widest_line(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_compact() {
        assert_eq!(compact(1_682_000), "1.68ms");
        assert_eq!(compact(950_000), "950µs");
        assert_eq!(compact(12_340_000_000), "12.3s");
        assert_eq!(compact(35), "35ns");
        assert_eq!(compact(999), "999ns");
        assert_eq!(compact(1_000), "1.00µs");
        assert_eq!(compact(999_999), "1.00ms");
        assert_eq!(compact(99_960), "100µs");
        assert_eq!(compact(61_000_000_000), "1m 1s");
        assert_eq!(trimmed(3_000_000_000), "3s");
        assert_eq!(trimmed(1_500_000), "1.5ms");
        assert_eq!(trimmed(200_000), "200µs");
        assert!(compact(59_999_000_000).chars().count() <= 6);
    }

    #[test]
    fn control_characters_are_escaped_and_long_labels_shortened() {
        assert_eq!(escape_control("ok"), "ok");
        assert_eq!(escape_control("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
        assert_eq!(shorten("GET /api/users/42", 8), "GET /ap…");
        assert_eq!(shorten("short", 8), "short");
    }
}
