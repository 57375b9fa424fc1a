//! The one crate a Gorgon plugin depends on.
//!
//! A plugin is a `cdylib` crate holding an ordinary Rust function. The
//! [`export!`] macro turns it into the C-ABI symbols `gorgon` loads, so a
//! plugin author writes no `unsafe` and no `extern`:
//!
//! ```
//! use gorgon_plugin_api::{export, Recorder};
//!
//! fn operation(number: u64, rec: &mut Recorder) -> &'static str {
//!     let sum = rec.measure("sum", || (0..number % 1000).sum::<u64>());
//!     if sum % 2 == 0 { "EVEN" } else { "ODD" }
//! }
//!
//! export!(operation);
//! # fn main() {}
//! ```
//!
//! with, in the plugin's `Cargo.toml`:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! gorgon-plugin-api = "0.1"
//! ```
//!
//! `gorgon new NAME` writes such a crate, with a copy of this API as a path
//! dependency so that it builds without a network; `gorgon run --plugin
//! target/release/libNAME.so --debug` then runs it at once.
//!
//! The value the function returns (anything [`Display`](std::fmt::Display))
//! is the call's *result label*: the report groups calls by it. A panic is
//! caught inside the plugin and counted under the label `panic`.
//!
//! # Failed calls
//!
//! A call that returns `Result<L, E>` (both `Display`) says whether it
//! failed: `Ok(label)` succeeded, `Err(label)` failed. Failed calls are
//! grouped by their label like any other, and also counted as errors in
//! the report, the error rate and the exit code, whatever the label is, so
//! a `404` or a refused connection is an error without the user listing
//! the good labels with `--ok` (which still decides when given). Panics
//! are always errors.
//!
//! ```
//! use gorgon_plugin_api::{export, Recorder};
//!
//! fn operation(number: u64, _rec: &mut Recorder) -> Result<&'static str, String> {
//!     if number % 100 == 99 {
//!         return Err(format!("rejected"));
//!     }
//!     Ok("accepted")
//! }
//!
//! export!(operation);
//! # fn main() {}
//! ```
//!
//! # Per-lane state
//!
//! A *lane* is one sequence of calls: a worker thread, or, with `gorgon
//! run --fibers N`, each of the N fibers of a thread. Work that should
//! happen once per lane (an HTTP client, a database connection) goes in a
//! setup function; its value is handed to every call of that lane and
//! dropped when the lane ends:
//!
//! ```
//! use gorgon_plugin_api::{export, Recorder};
//!
//! struct Conn { calls: u64 }
//!
//! fn setup(rec: &Recorder) -> Result<Conn, String> {
//!     let _url = rec.param("url").unwrap_or("http://127.0.0.1:8080");
//!     Ok(Conn { calls: 0 })
//! }
//!
//! fn operation(_number: u64, _rec: &mut Recorder, conn: &mut Conn) -> u16 {
//!     conn.calls += 1;
//!     200
//! }
//!
//! export!(operation, setup = setup);
//! # fn main() {}
//! ```
//!
//! A setup error stops the run before its first call, with the error text
//! in gorgon's message: any `Display` value says "the run could not start"
//! (gorgon exits 3), and [`SetupError::bad_input`] says "the user's input is
//! wrong" (a malformed file or parameter: gorgon exits 2, as for any other
//! bad input). `teardown = f` names a `fn(State)` run when the lane ends,
//! if dropping the state is not enough.

use std::ffi::c_void;
use std::time::{Duration, Instant};

/// The version of the binary contract between a plugin and `gorgon`.
///
/// `gorgon` refuses a plugin built against another version before the first
/// call, since the layout of [`Recorder`] and of the exported functions may
/// differ. Version 2 added [`Recorder::wait`] (two host callbacks at the
/// end of [`abi::HostVTable`]); version 3 added the failed-call status
/// ([`abi::STATUS_FAILED`], from an operation that returns a `Result`). A
/// gorgon that speaks 3 still runs plugins built for 1 and 2, which never
/// read the newer callbacks nor return the newer status; an older gorgon
/// refuses a plugin built for 3 instead of miscounting its failures.
pub const ABI_VERSION: u32 = 3;

/// The oldest plugin ABI a host of this version still runs.
pub const OLDEST_ABI_VERSION: u32 = 1;

/// What [`Recorder::wait`] waits for on a file descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Data to read, or the peer's end of stream, or an error.
    Readable,
    /// Room to write (a connecting socket is writable once connected or
    /// failed).
    Writable,
}

/// The handle an operation uses to time sub-steps and read parameters.
///
/// It is created by `gorgon` for each lane (a worker thread, or one fiber
/// of a thread with `--fibers`) and lives as long as that lane; the
/// operation only ever borrows it.
#[repr(C)]
pub struct Recorder {
    host: *mut c_void,
    vtable: *const abi::HostVTable,
    state: *mut c_void,
}

impl Recorder {
    /// Runs `f` and records its duration under the measurement `name`.
    ///
    /// The report shows one line per measurement name, marked with a
    /// trailing `<`, beside the result labels. gorgon also hears when the
    /// step begins, so a call stuck in `f` is reported with the step's name
    /// (`call #50 has run for 12s in step "fetch"`); names longer than 48
    /// bytes are shortened there, not in the report.
    ///
    /// ```
    /// # use gorgon_plugin_api::Recorder;
    /// fn operation(_number: u64, rec: &mut Recorder) -> &'static str {
    ///     let body = rec.measure("fetch", || "payload".to_string());
    ///     rec.measure("parse", || body.len());
    ///     "OK"
    /// }
    /// ```
    pub fn measure<T>(&self, name: &str, f: impl FnOnce() -> T) -> T {
        self.begin(name);
        let start = Instant::now();
        let value = f();
        self.record(name, start.elapsed());
        value
    }

    /// Starts a measurement that ends when the returned guard is dropped
    /// (or [`Measurement::stop`] is called), for sub-steps that do not fit
    /// in a closure. As with [`Recorder::measure`], a call stuck before the
    /// guard goes is reported as in this step.
    ///
    /// ```
    /// # use gorgon_plugin_api::Recorder;
    /// fn operation(_number: u64, rec: &mut Recorder) -> &'static str {
    ///     let step = rec.start("login");
    ///     // ... several statements ...
    ///     step.stop();
    ///     "OK"
    /// }
    /// ```
    pub fn start<'a>(&'a self, name: &'a str) -> Measurement<'a> {
        self.begin(name);
        Measurement {
            rec: self,
            name,
            start: Instant::now(),
        }
    }

    /// Records a duration measured by other means under `name`, for a
    /// sub-step whose start and end are not in one place. gorgon hears of
    /// the step only now, so a call stuck after it is reported as `after
    /// step "name"`, and one stuck during it is not said to be in it.
    ///
    /// ```
    /// # use gorgon_plugin_api::Recorder;
    /// use std::time::Instant;
    ///
    /// fn operation(_number: u64, rec: &mut Recorder) -> &'static str {
    ///     let sent = Instant::now();
    ///     // ... send a message, then wait for its echo ...
    ///     rec.record("round trip", sent.elapsed());
    ///     "OK"
    /// }
    /// ```
    pub fn record(&self, name: &str, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        // SAFETY: `host` and `vtable` were set by gorgon for this thread and
        // outlive every call made with this recorder.
        unsafe { ((*self.vtable).record_measurement)(self.host, name.as_ptr(), name.len(), nanos) }
    }

    /// Tells gorgon a step named `name` begins: its watchdog names it if
    /// the call gets stuck before the step's measurement is recorded.
    fn begin(&self, name: &str) {
        // SAFETY: as in `record`; a host that hands out this vtable speaks
        // ABI 4 (checked when the plugin was loaded), so the field exists.
        unsafe { ((*self.vtable).step_begin)(self.host, name.as_ptr(), name.len()) }
    }

    /// The value of a run parameter (`gorgon run --set key=value`, or the
    /// `[params]` table of `gorgon.toml`). Every worker, on every node,
    /// sees the same values.
    ///
    /// Read parameters once per lane in a setup function when the
    /// operation is fast; a lookup is a short scan, cheap but not free.
    ///
    /// ```
    /// # use gorgon_plugin_api::Recorder;
    /// // gorgon run --plugin ... --set greeting=hello
    /// fn operation(_number: u64, rec: &mut Recorder) -> String {
    ///     let greeting = rec.param("greeting").unwrap_or("hi");
    ///     format!("said {greeting}")
    /// }
    /// ```
    pub fn param(&self, key: &str) -> Option<&str> {
        let mut len = 0usize;
        // SAFETY: as in `record`; the host keeps the returned bytes alive,
        // unchanged, for the life of the worker process.
        unsafe {
            let ptr = ((*self.vtable).param)(self.host, key.as_ptr(), key.len(), &mut len);
            if ptr.is_null() {
                return None;
            }
            let bytes = std::slice::from_raw_parts(ptr, len);
            std::str::from_utf8(bytes).ok()
        }
    }

    /// Waits until `fd` is ready for `interest`, or until `timeout` has
    /// passed (`None`: no limit); a timeout is an error of kind
    /// [`std::io::ErrorKind::TimedOut`].
    ///
    /// This is how an operation waits for I/O without holding its thread.
    /// With `gorgon run --fibers N`, each worker thread runs N operations
    /// at once, each on its own fiber (a stack of its own): a wait here
    /// suspends this operation's fiber and the thread runs the others,
    /// and one `epoll` wait serves them all, as in an event loop, while
    /// the operation stays plain sequential code. Without fibers it is a
    /// `poll(2)` on the calling thread. Use it with non-blocking
    /// descriptors: a blocking `read` would hold the whole thread. See
    /// [`Recorder::is_cooperative`] for choosing the mode.
    ///
    /// ```no_run
    /// # use gorgon_plugin_api::{Interest, Recorder};
    /// use std::io::{ErrorKind, Read};
    /// use std::net::TcpStream;
    /// use std::os::fd::AsRawFd;
    /// use std::time::Duration;
    ///
    /// /// Reads what the peer sends, letting other fibers run meanwhile.
    /// fn read_some(rec: &Recorder, stream: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    ///     stream.set_nonblocking(true)?;
    ///     loop {
    ///         match stream.read(buf) {
    ///             Err(e) if e.kind() == ErrorKind::WouldBlock => {
    ///                 rec.wait(stream.as_raw_fd(), Interest::Readable, Some(Duration::from_secs(5)))?
    ///             }
    ///             other => return other,
    ///         }
    ///     }
    /// }
    /// ```
    pub fn wait(
        &self,
        fd: std::os::fd::RawFd,
        interest: Interest,
        timeout: Option<Duration>,
    ) -> std::io::Result<()> {
        let timeout_ns = timeout.map_or(u64::MAX, |t| {
            u64::try_from(t.as_nanos()).unwrap_or(u64::MAX - 1)
        });
        let writable = u32::from(interest == Interest::Writable);
        // SAFETY: as in `record`; a host that hands out this vtable speaks
        // ABI 2 (checked when the plugin was loaded), so the field exists.
        let code = unsafe { ((*self.vtable).wait)(self.host, fd, writable, timeout_ns) };
        match code {
            0 => Ok(()),
            abi::WAIT_TIMED_OUT => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "timed out waiting for I/O",
            )),
            errno => Err(std::io::Error::from_raw_os_error(errno)),
        }
    }

    /// True when this operation runs on a fiber (`gorgon run --fibers N`
    /// with N above 1): [`Recorder::wait`] then lets the thread's other
    /// operations run, and I/O should be non-blocking and wait through it.
    /// When false, blocking I/O is as good and saves the extra system call
    /// of a `poll`.
    pub fn is_cooperative(&self) -> bool {
        // SAFETY: as in `wait`.
        unsafe { ((*self.vtable).cooperative)(self.host) != 0 }
    }

    /// Builds a recorder. Only `gorgon` itself calls this.
    ///
    /// # Safety
    /// `host` must stay valid for the callbacks in `vtable` as long as the
    /// recorder is used, and on the thread that uses it.
    #[doc(hidden)]
    pub unsafe fn from_raw(host: *mut c_void, vtable: *const abi::HostVTable) -> Self {
        Recorder {
            host,
            vtable,
            state: std::ptr::null_mut(),
        }
    }
}

/// Why a lane's setup failed, and so why the run did not start.
///
/// Any [`Display`](std::fmt::Display) value (a `String`, an `io::Error`, …)
/// converts into one, so a setup function can return `Result<State, String>`
/// and use `?` freely; gorgon then exits with code 3 (the run failed). When
/// the cause is the user's input, say so with [`SetupError::bad_input`] and
/// gorgon exits with code 2 instead, like for a bad flag:
///
/// ```
/// use gorgon_plugin_api::{export, Recorder, SetupError};
///
/// struct Plan { pause_ms: u64 }
///
/// fn setup(rec: &Recorder) -> Result<Plan, SetupError> {
///     let text = rec.param("pause_ms").unwrap_or("0");
///     let pause_ms = text.parse().map_err(|_| {
///         SetupError::bad_input(format!("pause_ms must be a number, not {text:?}"))
///     })?;
///     Ok(Plan { pause_ms })
/// }
///
/// fn operation(_number: u64, _rec: &mut Recorder, plan: &mut Plan) -> &'static str {
///     std::thread::sleep(std::time::Duration::from_millis(plan.pause_ms));
///     "OK"
/// }
///
/// export!(operation, setup = setup);
/// # fn main() {}
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupError {
    message: String,
    bad_input: bool,
}

impl SetupError {
    /// The user's input is wrong (gorgon exits 2). `message` is one
    /// sentence that names the input and what is wrong with it.
    pub fn bad_input(message: impl std::fmt::Display) -> SetupError {
        SetupError {
            message: message.to_string(),
            bad_input: true,
        }
    }

    /// The run cannot start for another reason (gorgon exits 3), such as an
    /// unreachable server. Plain `Display` errors convert to this.
    pub fn failed(message: impl std::fmt::Display) -> SetupError {
        SetupError {
            message: message.to_string(),
            bad_input: false,
        }
    }

    /// The sentence gorgon prints.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the cause is the user's input.
    pub fn is_bad_input(&self) -> bool {
        self.bad_input
    }
}

/// `SetupError` deliberately does not implement `Display` itself: that is
/// what lets every `Display` error convert into it without a conflict.
impl<E: std::fmt::Display> From<E> for SetupError {
    fn from(error: E) -> SetupError {
        SetupError::failed(error)
    }
}

/// A running measurement, from [`Recorder::start`].
pub struct Measurement<'a> {
    rec: &'a Recorder,
    name: &'a str,
    start: Instant,
}

impl Measurement<'_> {
    /// Ends the measurement now (dropping the guard does the same).
    pub fn stop(self) {}
}

impl Drop for Measurement<'_> {
    fn drop(&mut self) {
        self.rec.record(self.name, self.start.elapsed());
    }
}

/// The raw contract between `gorgon` and a plugin. Plugin authors never use
/// it directly: [`export!`] generates the symbols.
///
/// Symbols a plugin exports:
///
/// | symbol | type | required |
/// |---|---|---|
/// | `gorgon_abi_version` | `static u32` = [`ABI_VERSION`] | yes |
/// | `operation` | [`OperationFn`] | yes |
/// | `gorgon_thread_start` | [`ThreadHookFn`] | no |
/// | `gorgon_thread_stop` | [`ThreadHookFn`] | no |
pub mod abi {
    use std::ffi::c_void;

    /// Callbacks into the host, passed to the plugin inside every
    /// [`Recorder`](crate::Recorder).
    #[repr(C)]
    pub struct HostVTable {
        /// Records `nanos` under the measurement named by the UTF-8 bytes.
        pub record_measurement:
            unsafe extern "C" fn(host: *mut c_void, name: *const u8, len: usize, nanos: u64),
        /// Looks a parameter up; returns null when it is not set, else a
        /// pointer to UTF-8 bytes (length in `*out_len`) the host keeps alive.
        pub param: unsafe extern "C" fn(
            host: *mut c_void,
            key: *const u8,
            len: usize,
            out_len: *mut usize,
        ) -> *const u8,
        /// ABI 2: waits until `fd` is readable (`writable` = 0) or
        /// writable (1), or `timeout_ns` has passed (`u64::MAX`: no
        /// limit). Returns 0 when ready, [`WAIT_TIMED_OUT`] on timeout,
        /// else an `errno` value.
        pub wait:
            unsafe extern "C" fn(host: *mut c_void, fd: i32, writable: u32, timeout_ns: u64) -> i32,
        /// ABI 2: 1 when calls run on fibers, so that `wait` lets the
        /// thread's other lanes run; 0 otherwise.
        pub cooperative: unsafe extern "C" fn(host: *mut c_void) -> u32,
        /// ABI 4: a step named by the UTF-8 bytes begins; it ends with the
        /// next `record_measurement`. Only for the watchdog's report of a
        /// stuck call: the host keeps at most a short prefix of the name,
        /// and the call must cost no more than copying it.
        pub step_begin: unsafe extern "C" fn(host: *mut c_void, name: *const u8, len: usize),
    }

    /// What `wait` returns on timeout: negative, so no `errno` value.
    pub const WAIT_TIMED_OUT: i32 = -1;

    /// The call returned normally; `text` is its result label.
    pub const STATUS_OK: u32 = 0;
    /// The call panicked; `text` is the panic message and location.
    pub const STATUS_PANIC: u32 = 1;
    /// A thread hook failed without panicking; `text` says why.
    pub const STATUS_ERROR: u32 = 2;
    /// A lane's setup refused the user's input; `text` says why (the
    /// host treats it as bad usage). Hosts that predate it see an error.
    pub const STATUS_BAD_INPUT: u32 = 3;
    /// ABI 3: the call returned normally and failed; `text` is its result
    /// label. The host counts it under the label and as an error.
    pub const STATUS_FAILED: u32 = 4;

    /// What a call hands back. `text` points into memory owned by the plugin
    /// that stays valid until the next call on the same thread.
    #[repr(C)]
    pub struct RawOutcome {
        pub status: u32,
        pub text: *const u8,
        pub len: usize,
    }

    /// The `operation` symbol.
    pub type OperationFn =
        unsafe extern "C" fn(number: u64, rec: *mut crate::Recorder) -> RawOutcome;
    /// The optional `gorgon_thread_start` / `gorgon_thread_stop` symbols.
    pub type ThreadHookFn = unsafe extern "C" fn(rec: *mut crate::Recorder) -> RawOutcome;

    /// The exported symbol names, NUL-terminated for `dlsym`.
    pub const SYMBOL_ABI_VERSION: &[u8] = b"gorgon_abi_version\0";
    pub const SYMBOL_OPERATION: &[u8] = b"operation\0";
    pub const SYMBOL_THREAD_START: &[u8] = b"gorgon_thread_start\0";
    pub const SYMBOL_THREAD_STOP: &[u8] = b"gorgon_thread_stop\0";
}

/// Exports an operation function as a Gorgon plugin.
///
/// * `export!(operation)` for `fn(u64, &mut Recorder) -> impl Display`;
/// * `export!(operation, setup = setup)` for
///   `fn(u64, &mut Recorder, &mut State) -> impl Display` with
///   `fn setup(&Recorder) -> Result<State, E>` run once per lane (a
///   worker thread, or each fiber of a thread with `--fibers`), where
///   `E` is any `Display` error or a [`SetupError`];
/// * `export!(operation, setup = setup, teardown = teardown)` adds a
///   `fn(State)` run when the lane ends.
///
/// See the [crate documentation](crate) for examples.
#[macro_export]
macro_rules! export {
    ($operation:path) => {
        // In an anonymous const so the generated names never clash with the
        // user's own `fn operation`.
        const _: () = {
            #[export_name = "gorgon_abi_version"]
            static GORGON_ABI_VERSION: u32 = $crate::ABI_VERSION;

            #[export_name = "operation"]
            unsafe extern "C" fn gorgon_operation(
                number: u64,
                rec: *mut $crate::Recorder,
            ) -> $crate::abi::RawOutcome {
                // SAFETY: gorgon calls this with its live recorder for the
                // calling thread, which nothing else borrows meanwhile.
                unsafe {
                    $crate::__private::call(number, rec, |number, rec| {
                        #[allow(unused_imports)]
                        use $crate::__private::{
                            DisplayLabel as _, ResultLabel as _, StaticLabel as _, StringLabel as _,
                        };
                        (&&$crate::__private::Label($operation(number, rec))).into_outcome()
                    })
                }
            }
        };
    };
    ($operation:path, setup = $setup:path) => {
        $crate::export!($operation, setup = $setup, teardown = ::std::mem::drop);
    };
    ($operation:path, setup = $setup:path, teardown = $teardown:path) => {
        const _: () = {
            #[export_name = "gorgon_abi_version"]
            static GORGON_ABI_VERSION: u32 = $crate::ABI_VERSION;

            #[export_name = "operation"]
            unsafe extern "C" fn gorgon_operation(
                number: u64,
                rec: *mut $crate::Recorder,
            ) -> $crate::abi::RawOutcome {
                // SAFETY: as for the stateless operation above; gorgon
                // calls it only after `gorgon_thread_start` succeeded on
                // this recorder.
                unsafe {
                    $crate::__private::call_with_state(
                        number,
                        rec,
                        |number, rec, state| {
                            #[allow(unused_imports)]
                            use $crate::__private::{
                                DisplayLabel as _, ResultLabel as _, StaticLabel as _,
                                StringLabel as _,
                            };
                            (&&$crate::__private::Label($operation(number, rec, state)))
                                .into_outcome()
                        },
                        $setup,
                    )
                }
            }

            #[export_name = "gorgon_thread_start"]
            unsafe extern "C" fn gorgon_thread_start(
                rec: *mut $crate::Recorder,
            ) -> $crate::abi::RawOutcome {
                // SAFETY: gorgon calls this with its live recorder for the
                // calling thread, which nothing else borrows meanwhile.
                unsafe { $crate::__private::thread_start(rec, $setup) }
            }

            #[export_name = "gorgon_thread_stop"]
            unsafe extern "C" fn gorgon_thread_stop(
                rec: *mut $crate::Recorder,
            ) -> $crate::abi::RawOutcome {
                // SAFETY: as for `gorgon_thread_start`.
                unsafe { $crate::__private::thread_stop(rec, $setup, $teardown) }
            }
        };
    };
}

#[doc(hidden)]
pub mod __private;
