//! The plugin side of the C ABI, called only by the code [`export!`] writes.
//!
//! Everything here runs inside the plugin, with the plugin's own copy of
//! `std`. That is why panics are caught here: one that crossed the C
//! boundary would abort the worker process (the host's unwinder sees a
//! foreign exception), so each call is wrapped in `catch_unwind` and the
//! panic becomes a status the host can count.
//!
//! [`export!`]: crate::export

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::fmt::{Display, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use crate::abi::{
    RawOutcome, STATUS_BAD_INPUT, STATUS_ERROR, STATUS_FAILED, STATUS_OK, STATUS_PANIC,
};
use crate::{Recorder, SetupError};

thread_local! {
    /// The text of the last outcome; the host reads it before the next call
    /// on this thread, so one reused buffer per thread avoids allocating.
    static TEXT: RefCell<String> = RefCell::new(String::with_capacity(64));
    /// Where the last panic on this thread happened, set by our hook.
    static PANIC_LOCATION: Cell<Option<String>> = const { Cell::new(None) };
}

/// Replaces the plugin's default panic hook, which would print every
/// caught panic to stderr; the message goes into the report instead.
fn install_quiet_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            PANIC_LOCATION.with(|cell| cell.set(location));
        }))
    });
}

fn outcome(status: u32, text: impl Display) -> RawOutcome {
    TEXT.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        buffer.clear();
        // Writing into a String fails only if `Display` itself reports an
        // error; the label is then whatever was written before it.
        let _ = write!(buffer, "{text}");
        RawOutcome {
            status,
            text: buffer.as_ptr(),
            len: buffer.len(),
        }
    })
}

fn panic_outcome(payload: Box<dyn std::any::Any + Send>) -> RawOutcome {
    let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    };
    match PANIC_LOCATION.with(|cell| cell.take()) {
        Some(location) => outcome(STATUS_PANIC, format_args!("{message} (at {location})")),
        None => outcome(STATUS_PANIC, message),
    }
}

/// An operation's return value on its way to becoming a result label.
///
/// `export!` hands it over with `(&&Label(value)).into_outcome()`, in code
/// that is not generic, so method lookup sees the concrete type and picks
/// the cheapest way (autoref specialisation): a `&'static str` is handed
/// over as it is, with no copy; a `String` is copied; anything else is
/// formatted with `Display` into the thread's buffer. A no-op returning
/// `"OK"` thus costs the host no formatting at all.
pub struct Label<T>(pub T);

/// A `&'static str` label: it lives as long as the plugin is loaded, so
/// the host may read it where it is.
pub trait StaticLabel {
    fn into_outcome(self) -> RawOutcome;
}

impl StaticLabel for &&Label<&'static str> {
    #[inline]
    fn into_outcome(self) -> RawOutcome {
        RawOutcome {
            status: STATUS_OK,
            text: self.0.as_ptr(),
            len: self.0.len(),
        }
    }
}

/// A `String` label: copied into the thread's buffer, with no formatting.
pub trait StringLabel {
    fn into_outcome(self) -> RawOutcome;
}

impl StringLabel for &&Label<String> {
    #[inline]
    fn into_outcome(self) -> RawOutcome {
        copied(STATUS_OK, &self.0)
    }
}

/// A `Result` label: `Ok(label)` is a call that succeeded, `Err(label)`
/// one that failed (a `404`, a refused connection), each formatted with
/// `Display`. The host counts the failures as errors whatever the label
/// says, so a plugin need not rely on the user listing `--ok` labels.
pub trait ResultLabel {
    fn into_outcome(self) -> RawOutcome;
}

impl<T: Display, E: Display> ResultLabel for &&Label<Result<T, E>> {
    #[inline]
    fn into_outcome(self) -> RawOutcome {
        match &self.0 {
            Ok(label) => outcome(STATUS_OK, label),
            Err(label) => outcome(STATUS_FAILED, label),
        }
    }
}

/// Any other label: formatted with `Display`.
pub trait DisplayLabel {
    fn into_outcome(self) -> RawOutcome;
}

impl<T: Display> DisplayLabel for &Label<T> {
    #[inline]
    fn into_outcome(self) -> RawOutcome {
        outcome(STATUS_OK, &self.0)
    }
}

/// Copies `text` into the thread's buffer.
fn copied(status: u32, text: &str) -> RawOutcome {
    TEXT.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        buffer.clear();
        buffer.push_str(text);
        RawOutcome {
            status,
            text: buffer.as_ptr(),
            len: buffer.len(),
        }
    })
}

/// Runs one stateless operation and turns its result or panic into a status.
/// `operation` calls the plugin's function and hands its label over (see
/// [`Label`]).
///
/// # Safety
/// `rec` must point to a live recorder that no one else borrows.
pub unsafe fn call(
    number: u64,
    rec: *mut Recorder,
    operation: impl FnOnce(u64, &mut Recorder) -> RawOutcome,
) -> RawOutcome {
    install_quiet_panic_hook();
    // SAFETY: the caller's promise: a live recorder, borrowed by no one
    // else for this call.
    let rec = unsafe { &mut *rec };
    // The label is made inside the guard too: a `Display` that panics is
    // the operation's panic, not the worker's.
    match catch_unwind(AssertUnwindSafe(|| operation(number, rec))) {
        Ok(done) => done,
        Err(payload) => panic_outcome(payload),
    }
}

/// Runs one operation with the lane's state made by `thread_start`.
/// `_setup` is only there so the compiler checks that the state the setup
/// makes is the state the operation takes.
///
/// # Safety
/// As for [`call`]; `thread_start` must have succeeded on this recorder.
pub unsafe fn call_with_state<S, E>(
    number: u64,
    rec: *mut Recorder,
    operation: impl FnOnce(u64, &mut Recorder, &mut S) -> RawOutcome,
    _setup: impl FnOnce(&Recorder) -> Result<S, E>,
) -> RawOutcome {
    // No hook to install here: `thread_start` installed it before the
    // state this call needs could exist.
    // SAFETY: as in `call`.
    let rec = unsafe { &mut *rec };
    let state = rec.state as *mut S;
    if state.is_null() {
        return outcome(STATUS_ERROR, "the thread's setup did not run");
    }
    // SAFETY: a non-null state was made by `thread_start` from a `Box<S>`
    // of this very `S` (`_setup` makes the compiler check that it is the
    // setup's type), and is freed only by `thread_stop`, after the last
    // call; it lives in this recorder, which no one else borrows.
    let state = unsafe { &mut *state };
    match catch_unwind(AssertUnwindSafe(|| operation(number, rec, state))) {
        Ok(done) => done,
        Err(payload) => panic_outcome(payload),
    }
}

/// Runs the setup for one lane (a thread, or a fiber) and keeps its state
/// in the lane's recorder.
///
/// # Safety
/// As for [`call`].
pub unsafe fn thread_start<S, E: Into<SetupError>>(
    rec: *mut Recorder,
    setup: impl FnOnce(&Recorder) -> Result<S, E>,
) -> RawOutcome {
    install_quiet_panic_hook();
    // SAFETY: as in `call`.
    let rec = unsafe { &mut *rec };
    match catch_unwind(AssertUnwindSafe(|| setup(rec))) {
        Ok(Ok(state)) => {
            rec.state = Box::into_raw(Box::new(state)) as *mut c_void;
            outcome(STATUS_OK, "")
        }
        Ok(Err(error)) => {
            let error: SetupError = error.into();
            let status = if error.is_bad_input() {
                STATUS_BAD_INPUT
            } else {
                STATUS_ERROR
            };
            outcome(status, error.message())
        }
        Err(payload) => panic_outcome(payload),
    }
}

/// Hands the lane's state to the teardown; the state is freed here, on
/// the side that allocated it.
///
/// # Safety
/// As for [`call`].
pub unsafe fn thread_stop<S, E>(
    rec: *mut Recorder,
    _setup: impl FnOnce(&Recorder) -> Result<S, E>,
    teardown: impl FnOnce(S),
) -> RawOutcome {
    // SAFETY: as in `call`.
    let rec = unsafe { &mut *rec };
    let state = std::mem::replace(&mut rec.state, std::ptr::null_mut()) as *mut S;
    if state.is_null() {
        return outcome(STATUS_OK, "");
    }
    // SAFETY: made by `thread_start` with `Box::into_raw` from a `Box<S>`
    // of this `S` (checked through `_setup`, as in `call_with_state`);
    // the recorder's pointer was cleared above, so it is freed once.
    let state = *unsafe { Box::from_raw(state) };
    match catch_unwind(AssertUnwindSafe(|| teardown(state))) {
        Ok(()) => outcome(STATUS_OK, ""),
        Err(payload) => panic_outcome(payload),
    }
}

// The `&&` is the point: it is how `export!` lets method lookup pick a path.
#[allow(clippy::needless_borrow)]
#[cfg(test)]
mod tests {
    //! The label paths `export!` picks, driven the way its expansion
    //! drives them: in non-generic code, with the concrete return type.
    use super::*;
    use crate::abi::HostVTable;

    unsafe extern "C" fn no_measurement(_: *mut c_void, _: *const u8, _: usize, _: u64) {}
    unsafe extern "C" fn no_param(
        _: *mut c_void,
        _: *const u8,
        _: usize,
        _: *mut usize,
    ) -> *const u8 {
        std::ptr::null()
    }
    unsafe extern "C" fn no_wait(_: *mut c_void, _: i32, _: u32, _: u64) -> i32 {
        0
    }
    unsafe extern "C" fn not_cooperative(_: *mut c_void) -> u32 {
        0
    }
    unsafe extern "C" fn no_step(_: *mut c_void, _: *const u8, _: usize) {}
    static VTABLE: HostVTable = HostVTable {
        record_measurement: no_measurement,
        param: no_param,
        wait: no_wait,
        cooperative: not_cooperative,
        step_begin: no_step,
    };

    fn recorder() -> Recorder {
        // SAFETY: the vtable ignores the host pointer.
        unsafe { Recorder::from_raw(std::ptr::null_mut(), &VTABLE) }
    }

    /// The outcome's status and text, read as the host reads them.
    fn read(raw: RawOutcome) -> (u32, String) {
        // SAFETY: `raw` was just returned on this thread.
        let text = unsafe { std::slice::from_raw_parts(raw.text, raw.len) };
        (raw.status, String::from_utf8(text.to_vec()).unwrap())
    }

    static STATIC_LABEL: &str = "STATIC";

    fn static_label(_: u64, _: &mut Recorder) -> &'static str {
        STATIC_LABEL
    }

    #[test]
    fn a_static_str_is_handed_over_where_it_lives() {
        let mut rec = recorder();
        // SAFETY: a live recorder, used by this call only.
        let raw = unsafe {
            call(7, &mut rec, |n, r| {
                (&&Label(static_label(n, r))).into_outcome()
            })
        };
        assert_eq!(raw.text, STATIC_LABEL.as_ptr(), "no copy of a static label");
        assert_eq!(read(raw), (STATUS_OK, "STATIC".to_string()));
    }

    fn string_label(number: u64, _: &mut Recorder) -> String {
        format!("item {number}")
    }

    #[test]
    fn a_string_is_copied_and_outlives_the_call() {
        let mut rec = recorder();
        // SAFETY: as above.
        let raw = unsafe {
            call(42, &mut rec, |n, r| {
                (&&Label(string_label(n, r))).into_outcome()
            })
        };
        assert_eq!(read(raw), (STATUS_OK, "item 42".to_string()));
    }

    struct Status(u16);

    impl std::fmt::Display for Status {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "HTTP {}", self.0)
        }
    }

    fn display_label(number: u64, _: &mut Recorder) -> Status {
        Status(200 + number as u16)
    }

    fn number_label(number: u64, _: &mut Recorder) -> u16 {
        number as u16
    }

    fn opaque_label(_: u64, _: &mut Recorder) -> impl Display {
        "opaque"
    }

    #[test]
    fn any_other_display_is_formatted() {
        let mut rec = recorder();
        // SAFETY: as above, for each call.
        unsafe {
            let raw = call(4, &mut rec, |n, r| {
                (&&Label(display_label(n, r))).into_outcome()
            });
            assert_eq!(read(raw), (STATUS_OK, "HTTP 204".to_string()));
            let raw = call(404, &mut rec, |n, r| {
                (&&Label(number_label(n, r))).into_outcome()
            });
            assert_eq!(read(raw), (STATUS_OK, "404".to_string()));
            let raw = call(0, &mut rec, |n, r| {
                (&&Label(opaque_label(n, r))).into_outcome()
            });
            assert_eq!(read(raw), (STATUS_OK, "opaque".to_string()));
        }
    }

    fn checked_label(number: u64, _: &mut Recorder) -> Result<&'static str, u16> {
        if number.is_multiple_of(2) {
            Ok("even")
        } else {
            Err(404)
        }
    }

    #[test]
    fn a_result_says_whether_the_call_failed() {
        let mut rec = recorder();
        // SAFETY: as above, for each call.
        unsafe {
            let raw = call(2, &mut rec, |n, r| {
                (&&Label(checked_label(n, r))).into_outcome()
            });
            assert_eq!(read(raw), (STATUS_OK, "even".to_string()));
            let raw = call(3, &mut rec, |n, r| {
                (&&Label(checked_label(n, r))).into_outcome()
            });
            assert_eq!(read(raw), (STATUS_FAILED, "404".to_string()));
        }
    }

    struct Exploding;

    impl std::fmt::Display for Exploding {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("cannot show this label")
        }
    }

    fn exploding_label(_: u64, _: &mut Recorder) -> Exploding {
        Exploding
    }

    #[test]
    fn a_label_that_panics_while_formatted_is_a_panic() {
        let mut rec = recorder();
        // SAFETY: as above.
        let raw = unsafe {
            call(1, &mut rec, |n, r| {
                (&&Label(exploding_label(n, r))).into_outcome()
            })
        };
        let (status, text) = read(raw);
        assert_eq!(status, STATUS_PANIC);
        assert!(text.starts_with("cannot show this label"), "{text}");
    }
}
