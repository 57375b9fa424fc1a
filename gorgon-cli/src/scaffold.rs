//! `gorgon new NAME`: a plugin crate that builds without a network and
//! runs with `gorgon run --debug` at once.
//!
//! The crate cannot depend on `gorgon-plugin-api` from crates.io: the
//! machine may be offline, and the published version might not match this
//! binary's ABI. So the API's source, compiled into this binary with
//! `include_str!`, is written into the new crate as a path dependency
//! (`vendor/gorgon-plugin-api`). It has no dependencies of its own, so
//! `cargo build --offline` works on a machine that has only a toolchain,
//! and the plugin speaks exactly the ABI of the gorgon that made it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::exit::{self, Code, Failure};

/// The plugin API's source files, as `(path under src/, text)`.
const API_SOURCES: [(&str, &str); 2] = [
    ("lib.rs", include_str!("../../gorgon-plugin-api/src/lib.rs")),
    (
        "__private.rs",
        include_str!("../../gorgon-plugin-api/src/__private.rs"),
    ),
];

/// Names cargo refuses for a package, beyond Rust keywords.
const RESERVED: [&str; 11] = [
    "test",
    "core",
    "std",
    "alloc",
    "proc_macro",
    "proc-macro",
    "deps",
    "examples",
    "build",
    "incremental",
    "gorgon-plugin-api",
];

const KEYWORDS: [&str; 51] = [
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try",
];

pub fn execute(path: &Path) -> Result<Code, Failure> {
    let name = crate_name(path)?;
    if path.exists() || path.is_symlink() {
        return Err(Failure::usage(format!(
            "{} already exists: choose another name or remove it first",
            path.display()
        )));
    }
    write_crate(path, &name).map_err(|error| {
        // Leave nothing half-written behind.
        let _ = fs::remove_dir_all(path);
        Failure::Run(error)
    })?;
    let library = library_file(&name);
    let gorgon = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "gorgon".to_string());
    say!(
        "Created the plugin crate `{name}` in {dir}\n\n\
         Build it and check it (no network needed):\n\
         \x20   cd {dir}\n\
         \x20   cargo build --release\n\
         \x20   {gorgon} run --plugin target/release/{library} --debug\n\n\
         Then multiply it:\n\
         \x20   {gorgon} run --plugin target/release/{library} -n 10000 -p 2 -t 4",
        dir = path.display(),
    );
    Ok(Code(exit::OK))
}

/// The crate name: the last part of the path, checked against cargo's rules.
fn crate_name(path: &Path) -> Result<String, Failure> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Failure::usage(format!("{} does not end in a name", path.display())))?;
    let invalid = |why: &str| {
        Failure::usage(format!(
            "`{name}` cannot be a crate name: {why} (try something like `my-api-test`)"
        ))
    };
    let first = name.chars().next().ok_or_else(|| invalid("it is empty"))?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid("use only ASCII letters, digits, `-` and `_`"));
    }
    if first.is_ascii_digit() {
        return Err(invalid("it starts with a digit"));
    }
    if KEYWORDS.contains(&name) || RESERVED.contains(&name) || name == "gorgon_plugin_api" {
        return Err(invalid("the name is reserved"));
    }
    Ok(name.to_string())
}

/// `libmy_test.so` for `my-test`.
pub fn library_file(name: &str) -> String {
    format!("lib{}.so", name.replace('-', "_"))
}

fn write_crate(dir: &Path, name: &str) -> anyhow::Result<()> {
    let files = crate_files(name);
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Every file of the new crate, by path relative to its directory.
fn crate_files(name: &str) -> Vec<(PathBuf, String)> {
    let version = env!("CARGO_PKG_VERSION");
    let abi = gorgon_plugin_api::ABI_VERSION;
    let library = library_file(name);
    let mut files = vec![
        (
            PathBuf::from("Cargo.toml"),
            format!(
                r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
# A shared library that `gorgon run --plugin` loads.
crate-type = ["cdylib"]

[dependencies]
# A copy of the plugin API written by the gorgon that created this crate
# (gorgon {version}, plugin ABI {abi}), so it builds without a network and
# matches that gorgon exactly.
gorgon-plugin-api = {{ path = "vendor/gorgon-plugin-api" }}

# This crate is its own workspace, wherever it is created.
[workspace]
"#
            ),
        ),
        (PathBuf::from("src/lib.rs"), lib_rs(name, &library)),
        (PathBuf::from("README.md"), readme(name, &library)),
        (PathBuf::from(".gitignore"), "/target\n".to_string()),
        (
            PathBuf::from("vendor/gorgon-plugin-api/Cargo.toml"),
            format!(
                r#"[package]
name = "gorgon-plugin-api"
version = "{version}"
edition = "2021"
license = "MIT"
description = "The Gorgon plugin API (plugin ABI {abi}), copied here by `gorgon new`."
publish = false

[dependencies]
"#
            ),
        ),
    ];
    for (file, text) in API_SOURCES {
        files.push((
            PathBuf::from("vendor/gorgon-plugin-api/src").join(file),
            text.to_string(),
        ));
    }
    files
}

fn lib_rs(name: &str, library: &str) -> String {
    format!(
        r#"//! {name}: a Gorgon plugin.
//!
//! `gorgon` calls `operation` once per number, across processes and
//! threads; what it returns is the call's result label, and the report
//! groups calls by it.
//!
//! ```text
//! cargo build --release
//! gorgon run --plugin target/release/{library} --debug
//! gorgon run --plugin target/release/{library} -n 10000 -p 2 -t 4
//! ```

use gorgon_plugin_api::{{export, Recorder}};

/// One call. `number` is unique across the whole run: 0..N for `-n N`.
fn operation(number: u64, rec: &mut Recorder) -> &'static str {{
    // Replace this with the work to multiply: a request, a query, a job.
    // `rec.measure` times a sub-step; the report shows it as `work<`.
    let sum = rec.measure("work", || {{
        (0..1000).fold(number, |acc, i| acc.rotate_left(5) ^ i)
    }});
    std::hint::black_box(sum);
    // `--set fail_every=K` is read with `rec.param`; every K-th call fails.
    let every: u64 = rec
        .param("fail_every")
        .and_then(|v| v.parse().ok())
        .filter(|k| *k > 0)
        .unwrap_or(5);
    if number % every == 0 {{
        "FAIL"
    }} else {{
        "SUCCESS"
    }}
}}

export!(operation);
"#
    )
}

fn readme(name: &str, library: &str) -> String {
    format!(
        r#"# {name}

A Gorgon plugin: `src/lib.rs` holds the operation that `gorgon run`
multiplies.

## Build and run

```sh
cargo build --release                       # works offline
gorgon run --plugin target/release/{library} --debug
gorgon run --plugin target/release/{library} -n 10000 -p 2 -t 4
gorgon run --plugin target/release/{library} -n 10000 --set fail_every=10
```

`--debug` runs ten calls in one thread and prints each of them, with its
result and its measurements; the last command passes a parameter that the
operation reads with `rec.param("fail_every")`.

## Next steps

- Put the work you want to multiply in `operation`; return a short label
  (`"200"`, `"SUCCESS"`, an error kind) for the report to group by.
- Time sub-steps with `rec.measure("name", || ...)` or
  `let step = rec.start("name"); ...; step.stop();`.
- For a client or a connection made once per lane (a thread, or a fiber
  with `--fibers`), use
  `export!(operation, setup = setup)`; see the plugin guide
  (docs/plugins.md in the Gorgon repository) and `cargo doc --open`.

`vendor/gorgon-plugin-api` is the plugin API, copied by `gorgon new` so
this crate builds without a network and matches the gorgon that made it.
To build against a newer gorgon, run `gorgon new` again and copy
`vendor/` over, or depend on `gorgon-plugin-api` by path in a Gorgon
checkout.
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_cargo_rules() {
        for good in ["my-test", "api_load", "x1", "A"] {
            assert_eq!(crate_name(Path::new(good)).unwrap(), good);
        }
        assert_eq!(
            crate_name(Path::new("some/dir/my-test")).unwrap(),
            "my-test"
        );
        for bad in [
            "1st",
            "my test",
            "é",
            "fn",
            "test",
            "build",
            "gorgon-plugin-api",
            "a.b",
        ] {
            assert!(crate_name(Path::new(bad)).is_err(), "{bad}");
        }
        assert!(crate_name(Path::new("/")).is_err());
    }

    #[test]
    fn every_api_source_file_is_embedded() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gorgon-plugin-api/src");
        let mut on_disk: Vec<String> = fs::read_dir(src)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = API_SOURCES.iter().map(|(f, _)| f.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "update API_SOURCES in scaffold.rs");
    }

    #[test]
    fn library_names_use_underscores() {
        assert_eq!(library_file("my-test"), "libmy_test.so");
    }
}
