//! Where a report goes: stdout in the chosen format, and the files asked for
//! (`--save`, `--svg`, `--html`).
//!
//! As in hyperfine's export manager, every destination is checked before the
//! run starts, so a mistyped path costs a second rather than the whole run.
//! A regular file is written atomically (a temporary file in the same
//! directory, then a rename), so a reader never sees half a report; a
//! device or a FIFO is written through, and a symlink is followed (see
//! [`destination`](super::destination)).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::exit::Failure;

use super::destination::{refuse_inputs, Destination};
use super::model::Report;
use super::{csv, html, json, svg, table};

/// The format of what goes to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Where one command's report goes, as asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Destinations {
    pub format: Format,
    /// The whole result as JSON (`--save`).
    pub save: Option<PathBuf>,
    /// A directory for SVG charts (`--svg`).
    pub svg: Option<PathBuf>,
    /// One HTML page (`--html`).
    pub html: Option<PathBuf>,
}

/// The destinations of one command's report, checked and resolved.
#[derive(Debug)]
pub struct Outputs {
    format: Format,
    save: Option<Destination>,
    svg: Option<PathBuf>,
    html: Option<Destination>,
}

/// A file the command reads, which no output may overwrite: what it is
/// (`the plugin`, `the config file`) and where.
pub type Input = (String, PathBuf);

impl Outputs {
    /// Checks that every destination can be written (creating the chart
    /// directory), without touching a file that already exists, and that
    /// none of them is one of `inputs`.
    pub fn prepare(args: Destinations, inputs: &[Input]) -> Result<Outputs, Failure> {
        let resolve = |flag: &str, path: &Option<PathBuf>| -> Result<_, Failure> {
            let Some(path) = path else { return Ok(None) };
            let destination = Destination::resolve(path).map_err(Failure::usage)?;
            refuse_inputs(flag, &destination, inputs).map_err(Failure::usage)?;
            Ok(Some(destination))
        };
        let save = resolve("--save", &args.save)?;
        let html = resolve("--html", &args.html)?;
        if let (Some(save), Some(html)) = (&save, &html) {
            if save.path() == html.path() || save.is_same_file(html.path()) {
                return Err(Failure::usage(format!(
                    "--save and --html both name {}: give them different files",
                    save.path().display()
                )));
            }
        }
        if let Some(dir) = &args.svg {
            check_dir(dir).map_err(Failure::usage)?;
        }
        Ok(Outputs {
            format: args.format,
            save,
            svg: args.svg,
            html,
        })
    }

    /// Prints the report on stdout in the chosen format, then writes the
    /// files. Stdout comes first, so a person sees the result even if a
    /// file cannot be written any more (a full disk). Every destination is
    /// tried; the first that failed is the error (exit 3: the run happened,
    /// its report did not arrive).
    pub fn emit(&self, report: &Report) -> Result<(), Failure> {
        let text = match self.format {
            Format::Table => table::render(report),
            Format::Json => json::render(report),
            Format::Csv => csv::render(report),
        };
        let mut failures = Vec::new();
        if let Err(error) = write_stdout(text.as_bytes()) {
            failures.push(format!("cannot write the report to stdout: {error}"));
        }
        if let Some(save) = &self.save {
            failures.extend(write_to(save, json::render(report).as_bytes()));
        }
        let charts = if self.svg.is_some() || self.html.is_some() {
            svg::render(report).map_err(Failure::usage)?
        } else {
            Vec::new()
        };
        if let Some(dir) = &self.svg {
            for chart in &charts {
                let path = dir.join(&chart.file_name);
                match Destination::resolve(&path) {
                    Ok(chart_file) => failures.extend(write_to(&chart_file, chart.svg.as_bytes())),
                    Err(error) => failures.push(error),
                }
            }
        }
        if let Some(html_file) = &self.html {
            failures.extend(write_to(
                html_file,
                html::render(report, &charts).as_bytes(),
            ));
        }
        match failures.into_iter().next() {
            Some(first) => Err(Failure::Run(anyhow::anyhow!(first))),
            None => Ok(()),
        }
    }
}

/// Writes `bytes` to stdout and flushes, so that an error is seen here
/// rather than lost at exit. A reader that went away (`gorgon run … |
/// head`) is no failure: nobody is left to tell.
pub fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// One sentence when `destination` could not be written.
fn write_to(destination: &Destination, bytes: &[u8]) -> Option<String> {
    destination
        .write(bytes)
        .err()
        .map(|e| format!("cannot write {}: {e}", destination.path().display()))
}

/// Creates `dir` if needed and says in one sentence why files cannot be
/// written there.
pub fn check_dir(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the directory {shown}: {e}"))?;
    if !dir.is_dir() {
        return Err(format!("cannot write in {shown}: it is not a directory"));
    }
    Destination::resolve(&dir.join(".gorgon-probe"))
        .map(drop)
        .map_err(|e| e.replace(".gorgon-probe", ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_directory_that_is_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let existing = dir.path().join("keep.json");
        std::fs::write(&existing, "old").unwrap();
        assert!(check_dir(&existing.join("charts")).is_err());
        check_dir(&dir.path().join("charts")).unwrap();
    }
}
