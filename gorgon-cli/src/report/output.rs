//! Where a report goes: stdout in the chosen format, and the files asked for
//! (`--save`, `--svg`, `--html`).
//!
//! As in hyperfine's export manager, every destination is checked before the
//! run starts, so a mistyped path costs a second rather than the whole run.
//! Every file is written atomically (a temporary file in the same directory,
//! then a rename), so a reader never sees half a report.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::exit::Failure;

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

/// The destinations of one command's report, checked.
#[derive(Debug)]
pub struct Outputs(Destinations);

impl Outputs {
    /// Checks that every destination can be written (creating the chart
    /// directory), without touching a file that already exists.
    pub fn prepare(args: Destinations) -> Result<Outputs, Failure> {
        let save = args.save.as_deref();
        if let (Some(save), Some(html)) = (save, &args.html) {
            if save == html {
                return Err(Failure::usage(format!(
                    "--save and --html both name {}: give them different files",
                    save.display()
                )));
            }
        }
        for file in save.iter().copied().chain(args.html.as_deref()) {
            check_file(file).map_err(Failure::usage)?;
        }
        if let Some(dir) = &args.svg {
            check_dir(dir).map_err(Failure::usage)?;
        }
        Ok(Outputs(args))
    }

    /// Prints the report on stdout in the chosen format, then writes the
    /// files. Stdout comes first, so a person sees the result even if a
    /// file cannot be written any more (a full disk).
    pub fn emit(&self, report: &Report) -> Result<(), Failure> {
        let Outputs(to) = self;
        let text = match to.format {
            Format::Table => table::render(report),
            Format::Json => json::render(report),
            Format::Csv => csv::render(report),
        };
        let mut stdout = std::io::stdout().lock();
        // A closed stdout (`gorgon run … | head`) is not worth a failure.
        let _ = stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush());
        drop(stdout);

        if let Some(path) = &to.save {
            write_file(path, json::render(report).as_bytes())?;
        }
        let charts = if to.svg.is_some() || to.html.is_some() {
            svg::render(report).map_err(Failure::usage)?
        } else {
            Vec::new()
        };
        if let Some(dir) = &to.svg {
            for chart in &charts {
                write_file(&dir.join(&chart.file_name), chart.svg.as_bytes())?;
            }
        }
        if let Some(path) = &to.html {
            write_file(path, html::render(report, &charts).as_bytes())?;
        }
        Ok(())
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    write_atomically(path, bytes)
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))
}

/// The directory a file is written in ("." for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Says in one sentence why `path` could not be written as a file.
pub fn check_file(path: &Path) -> Result<(), String> {
    let shown = path.display();
    if path.is_dir() {
        return Err(format!("cannot write {shown}: it is a directory"));
    }
    let dir = parent_of(path);
    if !dir.is_dir() {
        return Err(format!(
            "cannot write {shown}: the directory {} does not exist",
            dir.display()
        ));
    }
    probe(dir).map_err(|e| format!("cannot write {shown}: {e}"))
}

/// Creates `dir` if needed and says in one sentence why files cannot be
/// written there.
pub fn check_dir(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the directory {shown}: {e}"))?;
    probe(dir).map_err(|e| format!("cannot write in the directory {shown}: {e}"))
}

/// Creates and removes a temporary file in `dir`: the one honest test that
/// the atomic write will work there (permission bits do not tell for root,
/// read-only mounts or full quotas).
fn probe(dir: &Path) -> std::io::Result<()> {
    temporary_in(dir).map(drop)
}

fn temporary_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix(".gorgon-")
        .suffix(".tmp")
        // Like any new file: 0666 less the umask, not tempfile's private 0600.
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
}

/// Replaces `path` with `bytes` so that a reader sees the old content or the
/// new, never a mixture: a temporary file in the same directory, flushed to
/// disk, then renamed over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = temporary_in(parent_of(path))?;
    file.write_all(bytes)?;
    file.as_file().sync_data()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_and_leave_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn bad_destinations_are_told_in_one_sentence() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope/r.json");
        assert!(check_file(&missing).unwrap_err().contains("does not exist"));
        assert!(check_file(dir.path())
            .unwrap_err()
            .contains("is a directory"));
        let existing = dir.path().join("keep.json");
        std::fs::write(&existing, "old").unwrap();
        check_file(&existing).unwrap();
        assert_eq!(
            std::fs::read(&existing).unwrap(),
            b"old",
            "checking must not truncate"
        );
        assert!(check_dir(&existing.join("charts")).is_err());
    }
}
