//! Finding a plugin by name, so an installed `gorgon` runs the ready
//! plugins with `--plugin http` and no build tree around.
//!
//! A `--plugin` value with a `/` or ending in `.so` is a path, used as
//! given. Any other value is a name, looked up in this order:
//!
//! 1. each directory of `GORGON_PLUGIN_PATH` (colon-separated, like `PATH`);
//! 2. the directory of the `gorgon` executable (a build tree's
//!    `target/release`, or wherever the plugins were installed beside it);
//! 3. the plugins bundled into the executable at build time (http, hash,
//!    noop, subcalls; see build.rs).
//!
//! In a directory, name `my-test` is the file `libmy_test.so` or
//! `libgorgon_my_test.so` (what cargo names a cdylib crate `my-test` or
//! `gorgon-my-test`). A bundled plugin is written once to a cache
//! directory keyed by its SHA-256, because workers load it with `dlopen`
//! and cluster runs upload it: both need a real file.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};

/// The environment variable naming extra plugin directories.
pub const SEARCH_PATH_VAR: &str = "GORGON_PLUGIN_PATH";

/// A plugin embedded in the executable.
struct Bundled {
    name: &'static str,
    file_name: &'static str,
    bytes: &'static [u8],
}

// Written by build.rs: `static BUNDLED: &[Bundled] = &[...];`
include!(concat!(env!("OUT_DIR"), "/bundled_plugins.rs"));

/// Where a plugin was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A directory of `GORGON_PLUGIN_PATH`.
    SearchPath,
    /// Beside the `gorgon` executable.
    BesideExecutable,
    /// Bundled into the executable.
    Bundled,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::SearchPath => SEARCH_PATH_VAR,
            Origin::BesideExecutable => "beside gorgon",
            Origin::Bundled => "bundled",
        })
    }
}

/// One plugin `gorgon plugins` lists.
#[derive(Debug, Clone)]
pub struct Found {
    pub name: String,
    pub origin: Origin,
    /// The file on disk (for a bundled plugin, its extracted copy).
    pub path: PathBuf,
}

/// The command line's value parser for `--plugin`: a path stays a path, a name
/// becomes the file it resolves to.
pub fn parse(value: &str) -> Result<PathBuf, String> {
    resolve(value).map_err(|e| format!("{e:#}"))
}

/// Resolves a `--plugin` value to a file path (see the module doc).
pub fn resolve(value: &str) -> anyhow::Result<PathBuf> {
    if is_path(value) {
        return Ok(PathBuf::from(value));
    }
    for dir in search_dirs() {
        if let Some(path) = in_directory(&dir, value) {
            return Ok(path);
        }
    }
    if let Some(dir) = executable_dir() {
        if let Some(path) = in_directory(&dir, value) {
            return Ok(path);
        }
    }
    let wanted = normalise(value);
    if let Some(bundled) = BUNDLED.iter().find(|b| b.name == wanted) {
        return extract(bundled);
    }
    // A file of that name in the current directory is still a path.
    if Path::new(value).is_file() {
        return Ok(PathBuf::from(value));
    }
    let names: Vec<&str> = BUNDLED.iter().map(|b| b.name).collect();
    anyhow::bail!(
        "no plugin named {value}: not in {SEARCH_PATH_VAR}, beside gorgon, nor bundled ({}); \
         give a path to a .so file, or see `gorgon plugins`",
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    )
}

/// Every plugin found, in lookup order; a name shadowed by an earlier
/// one is still listed (the first is the one `--plugin NAME` takes).
pub fn list() -> anyhow::Result<Vec<Found>> {
    let mut found = Vec::new();
    for dir in search_dirs() {
        found.extend(in_listing(&dir, Origin::SearchPath));
    }
    if let Some(dir) = executable_dir() {
        found.extend(in_listing(&dir, Origin::BesideExecutable));
    }
    for bundled in BUNDLED {
        found.push(Found {
            name: bundled.name.to_string(),
            origin: Origin::Bundled,
            path: extract(bundled)?,
        });
    }
    Ok(found)
}

/// `gorgon plugins`: every plugin found, with where it is and its ABI.
pub fn execute() -> Result<crate::exit::Code, crate::exit::Failure> {
    let found = list().map_err(crate::exit::Failure::Run)?;
    let rows: Vec<[String; 4]> = found
        .iter()
        .map(|plugin| {
            let abi = abi_version(&plugin.path)
                .map_or_else(|_| "?".to_string(), |version| version.to_string());
            [
                plugin.name.clone(),
                plugin.origin.to_string(),
                abi,
                plugin.path.display().to_string(),
            ]
        })
        .collect();
    let header = ["NAME", "WHERE", "ABI", "FILE"].map(String::from);
    let widths: Vec<usize> = (0..3)
        .map(|column| {
            std::iter::once(&header)
                .chain(&rows)
                .map(|row| row[column].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(&header).chain(&rows) {
        say!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    say!(
        "Search order: {SEARCH_PATH_VAR}, beside gorgon, bundled; \
         a value with a / or ending in .so is a path."
    );
    Ok(crate::exit::Code(crate::exit::OK))
}

/// Reads a plugin's `gorgon_abi_version` without calling into it, for
/// `gorgon plugins` (which lists plugins of any ABI, unlike a run).
pub fn abi_version(path: &Path) -> anyhow::Result<u32> {
    use crate::plugin_file::{inspect, this_machine, FileError};
    // Read from the file's headers: listing plugins runs none of their code.
    match inspect(path, this_machine()) {
        Ok(file) => Ok(file.abi_version),
        Err(FileError::AbiMismatch { found, .. }) => Ok(found),
        Err(error) => Err(error.into()),
    }
}

fn is_path(value: &str) -> bool {
    value.contains('/') || value.ends_with(".so")
}

/// `my-test` and `my_test` name the same crate's library.
fn normalise(name: &str) -> String {
    name.replace('-', "_")
}

fn search_dirs() -> Vec<PathBuf> {
    std::env::var_os(SEARCH_PATH_VAR)
        .map(|value| {
            std::env::split_paths(&value)
                .filter(|dir| !dir.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn executable_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    exe.parent().map(Path::to_path_buf)
}

fn in_directory(dir: &Path, name: &str) -> Option<PathBuf> {
    let name = normalise(name);
    [format!("lib{name}.so"), format!("libgorgon_{name}.so")]
        .into_iter()
        .map(|file| dir.join(file))
        .find(|path| path.is_file())
}

/// The plugins of a directory: every `lib*.so`, named as `--plugin`
/// takes them (`libgorgon_http.so` is `http`).
fn in_listing(dir: &Path, origin: Origin) -> Vec<Found> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<Found> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .filter_map(|path| {
            let file = path.file_name().and_then(OsStr::to_str)?;
            let stem = file.strip_prefix("lib")?.strip_suffix(".so")?;
            let name = stem.strip_prefix("gorgon_").unwrap_or(stem).to_string();
            Some(Found {
                name,
                origin: origin.clone(),
                path,
            })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// Writes a bundled plugin to `<cache>/gorgon/bundled/<sha256>/<file>`
/// unless it is there already: the checksum in the path means a file
/// found there is the right one, and a new gorgon never loads an old copy.
fn extract(bundled: &Bundled) -> anyhow::Result<PathBuf> {
    let sha = hex::encode(Sha256::digest(bundled.bytes));
    let dir = cache_root().join(&sha);
    let path = dir.join(bundled.file_name);
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create {} for the bundled plugins", dir.display()))?;
    // Written beside, then renamed: two gorgons starting at once never
    // load a half-written file.
    let mut temporary = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("cannot write into {}", dir.display()))?;
    std::io::Write::write_all(&mut temporary, bundled.bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    temporary
        .persist(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// `$XDG_CACHE_HOME/gorgon/bundled`, else `~/.cache/gorgon/bundled`, else
/// one under the temporary directory.
fn cache_root() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join(format!("gorgon-{}", nix::unistd::getuid())));
    base.join("gorgon").join("bundled")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_used_as_given() {
        assert_eq!(resolve("./x").unwrap(), PathBuf::from("./x"));
        assert_eq!(resolve("libx.so").unwrap(), PathBuf::from("libx.so"));
        assert_eq!(resolve("/a/b").unwrap(), PathBuf::from("/a/b"));
    }

    #[test]
    fn a_name_is_the_library_cargo_builds_for_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(in_directory(dir.path(), "my-test"), None);
        std::fs::write(dir.path().join("libgorgon_my_test.so"), b"").unwrap();
        assert_eq!(
            in_directory(dir.path(), "my-test"),
            Some(dir.path().join("libgorgon_my_test.so"))
        );
        std::fs::write(dir.path().join("libmy_test.so"), b"").unwrap();
        assert_eq!(
            in_directory(dir.path(), "my_test"),
            Some(dir.path().join("libmy_test.so"))
        );
        let listed = in_listing(dir.path(), Origin::SearchPath);
        let names: Vec<&str> = listed.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["my_test", "my_test"]);
    }

    #[test]
    fn an_unknown_name_says_where_it_looked() {
        let message = resolve("surely-no-such-plugin").unwrap_err().to_string();
        assert!(
            message.contains("no plugin named surely-no-such-plugin"),
            "{message}"
        );
        assert!(message.contains(SEARCH_PATH_VAR), "{message}");
    }
}
