//! A plugin whose load-time code misbehaves, as chosen by the environment
//! variable `GORGON_TEST_CONSTRUCTOR` (parameters are not readable that
//! early: this runs inside `dlopen`, before any call):
//!
//! | value | effect |
//! |---|---|
//! | `print` | writes a line to stdout and one to stderr |
//! | `exit` | ends the process with exit code 7 |
//! | `crash` | writes to an unmapped address: `SIGSEGV` |
//!
//! Unset, it is a plain plugin whose calls return `OK`.

use gorgon_plugin_api::{export, Recorder};

/// Run by the dynamic loader when the library is loaded, like a C
/// `__attribute__((constructor))`.
#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = on_load;

extern "C" fn on_load() {
    match std::env::var("GORGON_TEST_CONSTRUCTOR").as_deref() {
        Ok("print") => {
            println!("constructor writes this to stdout");
            eprintln!("constructor writes this to stderr");
        }
        // SAFETY: ending the process at once is the point of this plugin.
        Ok("exit") => unsafe { libc::_exit(7) },
        // SAFETY: none: a write to an unmapped address is the crash this
        // plugin exists to make (volatile, so it is not optimised away).
        Ok("crash") => unsafe { std::ptr::write_volatile(8 as *mut u8, 1) },
        _ => {}
    }
}

fn operation(_number: u64, _rec: &mut Recorder) -> &'static str {
    "OK"
}

export!(operation);
