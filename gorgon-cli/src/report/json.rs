//! JSON: the whole report, as documented in docs/json-schema.md. It is the
//! format scripts read and the one `gorgon report` reads back, so reading
//! refuses anything that is not a report of a schema this gorgon knows.

use std::path::Path;

use serde_json::Value;

use super::model::{Report, SCHEMA_VERSION};

/// The report as pretty-printed JSON, ending in a newline.
pub fn render(report: &Report) -> String {
    // A report always carries its verdict in the JSON, even one read from
    // a file written before verdicts existed.
    let decided;
    let report = match report.verdict {
        Some(_) => report,
        None => {
            decided = Report {
                verdict: Some(report.verdict()),
                ..report.clone()
            };
            &decided
        }
    };
    let mut text = serde_json::to_string_pretty(report).expect("a report always serialises");
    text.push('\n');
    text
}

/// Reads a saved report. The error is one sentence naming `path`.
pub fn read(path: &Path) -> Result<Report, String> {
    let shown = path.display();
    let text = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    parse(&text).map_err(|why| format!("{shown} {why}"))
}

/// Parses a report; the error completes a sentence that starts with the
/// file's name.
pub fn parse(text: &[u8]) -> Result<Report, String> {
    let value: Value = serde_json::from_slice(text)
        .map_err(|e| format!("is not a gorgon report: it is not valid JSON ({e})"))?;
    let version = match value.get("schema_version") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(_) => None,
        None => {
            return Err(
                "is not a gorgon report: it has no schema_version (was it written by \
                 `gorgon run --save` or `--output json`?)"
                    .to_string(),
            )
        }
    };
    match version {
        Some(known) if known == u64::from(SCHEMA_VERSION) => {}
        Some(other) => {
            return Err(format!(
                "uses report schema version {other}, but this gorgon reads version \
                 {SCHEMA_VERSION}: use a gorgon of the version that wrote it"
            ))
        }
        None => {
            return Err("is not a gorgon report: its schema_version is not a whole number".into())
        }
    }
    serde_json::from_value(value)
        .map_err(|e| format!("is not a complete gorgon report of schema version 1 ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_and_future_files_are_told_apart() {
        assert!(parse(b"{ not json").unwrap_err().contains("not valid JSON"));
        assert!(parse(br#"{"name": "package.json"}"#)
            .unwrap_err()
            .contains("no schema_version"));
        assert!(parse(br#"{"schema_version": 99, "runs": []}"#)
            .unwrap_err()
            .contains("schema version 99"));
        assert!(parse(br#"{"schema_version": 1}"#)
            .unwrap_err()
            .contains("missing field"));
    }
}
