//! Loading a plugin and checking it speaks our ABI before anything calls it.
//! Calling it is [`lane`]'s business: the entry points are private to
//! this module, so every call into the plugin goes through a lane.

pub mod lane;
pub mod slot;
pub mod watch;

use std::path::{Path, PathBuf};

use gorgon_plugin_api::abi::{
    OperationFn, ThreadHookFn, SYMBOL_OPERATION, SYMBOL_THREAD_START, SYMBOL_THREAD_STOP,
};
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

use crate::plugin_file::{inspect, this_machine, FileError};

/// Why a plugin cannot be used. Each message is one sentence that names the
/// file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// What its headers say (the file, its architecture, its symbols, its
    /// ABI version): the same checks the parent makes before a run.
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot load plugin {path}: {reason}")]
    NotLoadable { path: PathBuf, reason: String },
    #[error(
        "plugin {0} has no `operation` symbol: export your function with \
         gorgon_plugin_api::export!(operation)"
    )]
    NoOperation(PathBuf),
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
    /// Checks the file's headers, then loads the library with every symbol
    /// bound now (a missing dependency fails here, not at the first call).
    pub fn load(path: &Path) -> Result<Plugin, PluginError> {
        // The headers first: a truncated copy would otherwise die of
        // SIGBUS inside dlopen, and another machine's library would come
        // back as a baffling "No such file or directory".
        let path = inspect(path, this_machine())?.path;
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
        // ABI version, checked in the headers above, vouches for them.
        unsafe {
            let operation = *library
                .get::<OperationFn>(SYMBOL_OPERATION)
                .map_err(|_| PluginError::NoOperation(path.clone()))?;
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
