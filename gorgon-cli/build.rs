//! Bundles the ready plugins (http, hash, noop, subcalls) into the
//! executable, so `cargo install --path gorgon-cli` gives a `gorgon` that
//! runs `--plugin http` with no build tree around (see src/plugin_path.rs).
//!
//! The plugins are built by a nested `cargo build` with the same profile,
//! into a target directory of their own (the outer cargo holds a lock on
//! its own): `<target>/bundled-plugins`, shared by every build of
//! gorgon-cli in that target directory, so only the first build pays for
//! it and later ones cost a no-op cargo call. `GORGON_BUNDLE_PLUGINS=0`
//! builds a gorgon without them (names then resolve only on
//! `GORGON_PLUGIN_PATH` and beside the executable).

use std::path::{Path, PathBuf};
use std::process::Command;

/// (name for `--plugin`, cargo package).
const PLUGINS: &[(&str, &str)] = &[
    ("http", "gorgon-http"),
    ("hash", "gorgon-hash"),
    ("noop", "gorgon-noop"),
    ("subcalls", "gorgon-subcalls"),
];

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("gorgon-cli is in the workspace");
    let out_dir = PathBuf::from(env("OUT_DIR"));
    println!("cargo:rerun-if-env-changed=GORGON_BUNDLE_PLUGINS");
    for watched in ["plugins", "gorgon-plugin-api", "Cargo.lock", "Cargo.toml"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    let bundle = std::env::var("GORGON_BUNDLE_PLUGINS").map_or(true, |v| v != "0");
    let entries = if bundle {
        let files = build_plugins(workspace, &out_dir);
        PLUGINS
            .iter()
            .zip(files)
            .map(|((name, _), file)| {
                let file_name = file.file_name().unwrap().to_str().unwrap().to_string();
                format!(
                    "    Bundled {{ name: {name:?}, file_name: {file_name:?}, \
                     bytes: include_bytes!({:?}) }},\n",
                    file.display().to_string()
                )
            })
            .collect::<String>()
    } else {
        String::new()
    };
    std::fs::write(
        out_dir.join("bundled_plugins.rs"),
        format!("static BUNDLED: &[Bundled] = &[\n{entries}];\n"),
    )
    .expect("OUT_DIR is writable");
}

/// Builds the plugin crates and returns their libraries, in PLUGINS order.
fn build_plugins(workspace: &Path, out_dir: &Path) -> Vec<PathBuf> {
    let target_dir = bundle_target_dir(out_dir);
    let release = env("PROFILE") == "release";
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's stdout is read for `cargo:` lines.
        .stdout(std::process::Stdio::null());
    for (_, package) in PLUGINS {
        command.args(["-p", package]);
    }
    if release {
        command.arg("--release");
    }
    let (target, host) = (env("TARGET"), env("HOST"));
    if target != host {
        command.args(["--target", &target]);
    }
    // `cargo clippy` lints through this wrapper; the plugins need a real
    // build (they are linted by the outer run as workspace members).
    command
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS");
    let status = command
        .status()
        .expect("cargo runs (to build the bundled plugins)");
    assert!(
        status.success(),
        "building the bundled plugins failed; GORGON_BUNDLE_PLUGINS=0 builds gorgon without them"
    );
    let mut dir = target_dir;
    if target != host {
        dir.push(&target);
    }
    dir.push(if release { "release" } else { "debug" });
    PLUGINS
        .iter()
        .map(|(_, package)| dir.join(format!("lib{}.so", package.replace('-', "_"))))
        .collect()
}

/// `<target>/bundled-plugins`, where `<target>` is the directory holding
/// the profile directory that OUT_DIR is in
/// (`<target>/[<triple>/]<profile>/build/gorgon-cli-<hash>/out`).
fn bundle_target_dir(out_dir: &Path) -> PathBuf {
    let profile_dir = out_dir
        .ancestors()
        .nth(3)
        .expect("OUT_DIR is <profile>/build/<crate>/out");
    let mut target = profile_dir.parent().expect("a target directory");
    if target.join("CACHEDIR.TAG").exists() || target.parent().is_none() {
        return target.join("bundled-plugins");
    }
    // Cross builds have one more level (<target>/<triple>/<profile>).
    if let Some(parent) = target.parent() {
        if parent.join("CACHEDIR.TAG").exists() {
            target = parent;
        }
    }
    target.join("bundled-plugins")
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}
