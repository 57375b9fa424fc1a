//! Loading a plugin and checking it speaks our ABI before anything calls it.
//! Calling it is [`lane`]'s business: the entry points are private to
//! this module, so every call into the plugin goes through a lane.

pub mod lane;

use std::path::{Path, PathBuf};

use gorgon_plugin_api::abi::{
    OperationFn, ThreadHookFn, SYMBOL_ABI_VERSION, SYMBOL_OPERATION, SYMBOL_THREAD_START,
    SYMBOL_THREAD_STOP,
};
use gorgon_plugin_api::{ABI_VERSION, OLDEST_ABI_VERSION};
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

/// Why a plugin cannot be used. Each message is one sentence that names the
/// file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {0} does not exist")]
    Missing(PathBuf),
    #[error("plugin {0} is not a file")]
    NotAFile(PathBuf),
    #[error("cannot load plugin {path}: {reason}")]
    NotLoadable { path: PathBuf, reason: String },
    #[error(
        "plugin {0} has no `operation` symbol: export your function with \
         gorgon_plugin_api::export!(operation)"
    )]
    NoOperation(PathBuf),
    #[error(
        "plugin {0} has no `gorgon_abi_version` symbol: build it with the \
         gorgon_plugin_api::export! macro"
    )]
    NoAbiVersion(PathBuf),
    #[error(
        "plugin {path} was built for plugin ABI {found} but this gorgon speaks ABI {oldest} to \
         {expected}: rebuild it against gorgon-plugin-api {version}"
    )]
    AbiMismatch {
        path: PathBuf,
        found: u32,
        oldest: u32,
        expected: u32,
        version: &'static str,
    },
}

/// A loaded plugin with its entry points resolved.
///
/// The function pointers stay valid as long as `_library` is loaded, which
/// is as long as this value lives.
pub struct Plugin {
    pub path: PathBuf,
    operation: OperationFn,
    thread_start: Option<ThreadHookFn>,
    thread_stop: Option<ThreadHookFn>,
    _library: Library,
}

impl Plugin {
    /// Loads the library with every symbol bound now (a missing dependency
    /// fails here, not at the first call) and checks the ABI version.
    pub fn load(path: &Path) -> Result<Plugin, PluginError> {
        let metadata =
            std::fs::metadata(path).map_err(|_| PluginError::Missing(path.to_path_buf()))?;
        if !metadata.is_file() {
            return Err(PluginError::NotAFile(path.to_path_buf()));
        }
        // dlopen searches the library path for a name without a slash;
        // an absolute path makes it load exactly this file.
        let path = std::fs::canonicalize(path).map_err(|_| PluginError::Missing(path.into()))?;
        // SAFETY: loading runs the library's initialisers; that is the
        // contract of a plugin, which the user chose to run.
        let library =
            unsafe { Library::open(Some(&path), RTLD_NOW | RTLD_LOCAL) }.map_err(|error| {
                PluginError::NotLoadable {
                    reason: load_reason(&error, &path),
                    path: path.clone(),
                }
            })?;
        // SAFETY: the symbol types are those the export! macro defines; the
        // ABI version, checked below before any call, vouches for them.
        unsafe {
            let operation = *library
                .get::<OperationFn>(SYMBOL_OPERATION)
                .map_err(|_| PluginError::NoOperation(path.clone()))?;
            let version = *library
                .get::<*const u32>(SYMBOL_ABI_VERSION)
                .map_err(|_| PluginError::NoAbiVersion(path.clone()))?;
            let found = std::ptr::read(version);
            // A plugin built for an older ABI reads only the part of the
            // host's vtable that ABI had, which is still there, unchanged.
            if !(OLDEST_ABI_VERSION..=ABI_VERSION).contains(&found) {
                return Err(PluginError::AbiMismatch {
                    path,
                    found,
                    oldest: OLDEST_ABI_VERSION,
                    expected: ABI_VERSION,
                    version: env!("CARGO_PKG_VERSION"),
                });
            }
            let thread_start = library
                .get::<ThreadHookFn>(SYMBOL_THREAD_START)
                .ok()
                .map(|s| *s);
            let thread_stop = library
                .get::<ThreadHookFn>(SYMBOL_THREAD_STOP)
                .ok()
                .map(|s| *s);
            Ok(Plugin {
                path,
                operation,
                thread_start,
                thread_stop,
                _library: library,
            })
        }
    }
}

/// libloading's own message is just "dlopen failed"; the useful text
/// ("invalid ELF header", "file too short") is dlerror's, in the source.
fn load_reason(error: &libloading::Error, path: &Path) -> String {
    let detail = std::error::Error::source(error)
        .map(|source| source.to_string())
        .unwrap_or_else(|| error.to_string());
    let detail = detail
        .strip_prefix(&format!("{}: ", path.display()))
        .unwrap_or(&detail)
        .to_string();
    if detail.contains("invalid ELF header") || detail.contains("file too short") {
        format!("it is not a shared library ({detail})")
    } else {
        detail
    }
}
