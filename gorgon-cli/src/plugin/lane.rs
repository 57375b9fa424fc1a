//! One lane of calls into a plugin, and the host side of its `Recorder`.
//!
//! A lane is one sequence of calls: a worker thread, one fiber of a
//! thread with `--fibers N`, or the single thread of `--debug`. It runs
//! the plugin's thread setup, its calls and its teardown on its own
//! plugin state, and records into the recorder of the thread it runs on.
//!
//! Everything that calls the plugin or that the plugin calls back is here,
//! and so is every `unsafe` it takes: the plugin reaches the lane through
//! raw pointers (its `Recorder` holds one across calls), so the lane's
//! state lives behind raw pointers too, and the rest of gorgon sees only
//! [`PluginLane`] (with [`Caller`], the lane held for a loop of calls),
//! [`SharedRecorder`] and [`Returned`], which are safe to use. Their
//! rules, checked by the borrow checker:
//!
//! - a lane borrows its plugin and its thread's recorder, so neither can
//!   go while the lane is alive;
//! - a lane is not `Send` (its `Recorder` holds raw pointers), so it is
//!   set up, called and torn down on one thread;
//! - what a call returned ([`Returned`]) borrows the lane mutably, so the
//!   lane can neither call again nor let another fiber run while the
//!   outcome's text (the plugin's, valid until its next call on this
//!   thread) is read.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gorgon_plugin_api::abi::{
    HostVTable, OperationFn, RawOutcome, ThreadHookFn, STATUS_BAD_INPUT, STATUS_FAILED, STATUS_OK,
    WAIT_TIMED_OUT,
};
use gorgon_plugin_api::Recorder;

use super::slot::CallSlot;
use super::watch::ThreadWatch;
use super::Plugin;
use crate::fibers::{self, FiberHandle, Wake};
use crate::recorder::{Outcome, Params, ThreadRecorder};

/// A value on the heap reached only through its raw pointer, which a
/// plugin's `Recorder` holds across calls; freed when this goes. (A `Box`
/// would be reborrowed by each use, which invalidates the pointer the
/// plugin holds, as far as Rust's aliasing rules go.)
struct Pinned<T>(*mut T);

impl<T> Pinned<T> {
    fn new(value: T) -> Pinned<T> {
        Pinned(Box::into_raw(Box::new(value)))
    }

    fn ptr(&self) -> *mut T {
        self.0
    }

    fn into_inner(self) -> T {
        let ptr = self.0;
        std::mem::forget(self);
        // SAFETY: made by `Box::into_raw` in `new`; `self` is forgotten,
        // so its `Drop` does not free it a second time.
        *unsafe { Box::from_raw(ptr) }
    }
}

impl<T> Drop for Pinned<T> {
    fn drop(&mut self) {
        // SAFETY: made by `Box::into_raw` in `new`, freed only here.
        drop(unsafe { Box::from_raw(self.0) });
    }
}

/// A thread's recorder, which its lanes take turns recording into: the
/// thread itself, or each of its fibers. One lane runs at a time, and no
/// lane holds a borrow of it across a call or a fiber switch.
pub struct SharedRecorder(Pinned<ThreadRecorder>);

impl SharedRecorder {
    pub fn new(recorder: ThreadRecorder) -> SharedRecorder {
        SharedRecorder(Pinned::new(recorder))
    }

    /// The recorder back, once no lane uses it.
    pub fn into_inner(self) -> ThreadRecorder {
        self.0.into_inner()
    }

    /// Publishes the recorder in its thread's watch, so that the worker's
    /// main thread can take its results while the thread is stuck in a
    /// call (see [`crate::plugin::watch`]).
    pub fn publish(&self, watch: &ThreadWatch) {
        watch.publish(self.0.ptr());
    }
}

/// What a plugin's `Recorder` points to: one lane's way to its thread's
/// recorder.
struct LaneHost {
    recorder: *mut ThreadRecorder,
    /// False while the lane warms up: its calls' measurements are left out.
    measuring: bool,
    /// Set while the lane runs on a fiber: where the plugin's waits
    /// suspend to (see [`crate::fibers`]).
    fiber: Option<FiberHandle>,
    /// Where the lane says which step its call is in, for the watchdog;
    /// null when nothing watches (`--debug`).
    slot: *const CallSlot,
    /// Its thread's watch, which the callbacks that write the recorder
    /// and the fiber's waits keep up to date; null when nothing watches.
    watch: *const ThreadWatch,
    /// The run parameters, read by `Recorder::param` without going
    /// through the recorder, which the main thread may be taking from.
    params: Arc<Params>,
}

impl LaneHost {
    /// The plugin's call enters (`ended` false) or records (true) the
    /// step named by `name`.
    fn step(&self, name: &[u8], ended: bool) {
        // SAFETY: the slot outlives the lane (`PluginLane::start` borrows
        // it for `'t`).
        if let Some(slot) = unsafe { self.slot.as_ref() } {
            slot.step(name, ended);
        }
    }

    /// The thread's watch, if any.
    fn watch(&self) -> Option<&ThreadWatch> {
        // SAFETY: the watch outlives the lane (`PluginLane::start` borrows
        // it for `'t`).
        unsafe { self.watch.as_ref() }
    }
}

/// Why the plugin's thread setup failed, in its own words.
#[derive(Debug, PartialEq, Eq)]
pub enum SetupFailed {
    /// The setup said the user's input is wrong (`SetupError::bad_input`).
    BadInput(String),
    /// Anything else: an error, or a panic.
    Failed(String),
}

/// One lane's plugin state: its `Recorder` (with the state the plugin's
/// setup left in it) and the host side the recorder points to.
pub struct PluginLane<'t> {
    operation: OperationFn,
    thread_stop: Option<ThreadHookFn>,
    /// Reached only through its pointer: by the plugin during a call and
    /// by the lane's methods between calls.
    host: Pinned<LaneHost>,
    /// The thread's recorder, as in `host`, copied so the hot path reads
    /// it without going through the host.
    recorder: *mut ThreadRecorder,
    rec: Recorder,
    /// The library the function pointers are in, the recorder and the
    /// slot must outlive the lane.
    _borrows: PhantomData<(
        &'t Plugin,
        &'t SharedRecorder,
        &'t CallSlot,
        &'t ThreadWatch,
    )>,
}

impl<'t> PluginLane<'t> {
    /// Makes the lane's plugin recorder and runs the plugin's thread setup
    /// on it. The lane starts in its warm-up: its measurements are left
    /// out until [`PluginLane::start_measuring`]. The plugin's steps are
    /// noted in `slot`, the lane's on the worker's board, if given, and
    /// its callbacks keep `watch`, its thread's, up to date.
    pub fn start(
        plugin: &'t Plugin,
        recorder: &'t SharedRecorder,
        board: Option<(&'t CallSlot, &'t ThreadWatch)>,
    ) -> Result<Self, SetupFailed> {
        // SAFETY: no lane of this recorder is in a call yet, and the
        // parameters are never written after the recorder is made.
        let params = unsafe { &*recorder.0.ptr() }.params();
        let host = Pinned::new(LaneHost {
            recorder: recorder.0.ptr(),
            measuring: false,
            fiber: None,
            slot: board.map_or(std::ptr::null(), |(slot, _)| std::ptr::from_ref(slot)),
            watch: board.map_or(std::ptr::null(), |(_, watch)| std::ptr::from_ref(watch)),
            params,
        });
        // SAFETY: the host is freed only when the lane goes, with the
        // `Recorder` beside it; the thread's recorder outlives the lane
        // (`'t`); the lane is not `Send`, so the recorder is used on this
        // thread only.
        let rec = unsafe { Recorder::from_raw(host.ptr().cast::<c_void>(), &VTABLE) };
        let mut lane = PluginLane {
            operation: plugin.operation,
            thread_stop: plugin.thread_stop,
            recorder: recorder.0.ptr(),
            host,
            rec,
            _borrows: PhantomData,
        };
        if let Some(start) = plugin.thread_start {
            // SAFETY: the hook's type was vouched for by the ABI version
            // checked at load, and the library stays loaded for `'t`;
            // `rec` is this lane's, fresh, and borrowed by nothing else.
            let raw = unsafe { start(&mut lane.rec) };
            if raw.status != STATUS_OK {
                // SAFETY: `raw` was just returned on this thread, and no
                // call has been made since.
                let text = unsafe { read_outcome(&raw) }.text();
                return Err(if raw.status == STATUS_BAD_INPUT {
                    SetupFailed::BadInput(text)
                } else {
                    SetupFailed::Failed(text)
                });
            }
        }
        Ok(lane)
    }

    /// Calls the plugin's operation with `number`. What it returned must
    /// be read (and recorded) before the lane does anything else.
    #[inline(always)]
    pub fn call(&mut self, number: u64) -> Returned<'_> {
        // SAFETY: the operation's type was vouched for by the ABI version
        // checked at load, and the library stays loaded for `'t`; `rec` is
        // this lane's and was set up on this thread (a lane is not `Send`).
        let raw = unsafe { (self.operation)(number, &mut self.rec) };
        Returned {
            raw,
            recorder: self.recorder,
            _lane: PhantomData,
        }
    }

    /// Holds the lane for a loop of calls that does nothing else with it
    /// (the closed loop): what each call needs is copied out, so that the
    /// loop keeps it in registers across the plugin call.
    #[inline(always)]
    pub fn caller(&mut self) -> Caller<'_> {
        Caller {
            operation: self.operation,
            rec: &mut self.rec,
            recorder: self.recorder,
            _lane: PhantomData,
        }
    }

    /// Runs the plugin's teardown, then hands `then` the thread's
    /// recorder, which now holds what the teardown measured. A failing
    /// teardown has nothing left to spoil: the lane's calls are all
    /// recorded.
    pub fn stop(mut self, then: impl FnOnce(&mut ThreadRecorder)) {
        if let Some(stop) = self.thread_stop {
            // SAFETY: as in `call`; the lane makes no call after this.
            let _ = unsafe { stop(&mut self.rec) };
        }
        then(self.recorder());
    }

    /// The thread's recorder, between calls.
    pub fn recorder(&mut self) -> &mut ThreadRecorder {
        // SAFETY: the recorder outlives the lane; between calls the plugin
        // holds no borrow of it, and the lanes of a thread run one at a
        // time and hold none across a call or a fiber switch, which the
        // `&mut self` here rules out for as long as this borrow lasts.
        unsafe { &mut *self.recorder }
    }

    /// False during the lane's warm-up, whose calls are counted and not
    /// recorded (the plugin's measurements check the same flag).
    pub fn measuring(&self) -> bool {
        self.host().measuring
    }

    /// Ends the lane's warm-up: from now on its measurements count.
    pub fn start_measuring(&mut self) {
        self.host_mut().measuring = true;
    }

    /// Puts the lane on a fiber: the plugin's waits suspend it, and so do
    /// [`PluginLane::sleep_until`]'s.
    pub fn attach_fiber(&mut self, fiber: FiberHandle) {
        self.host_mut().fiber = Some(fiber);
    }

    /// Whether the lane runs on a fiber.
    pub fn on_fiber(&self) -> bool {
        self.host().fiber.is_some()
    }

    /// On a fiber, lets the thread's other fibers run until `deadline`;
    /// off one, sleeps the thread.
    pub fn sleep_until(&mut self, deadline: Instant) {
        match self.host().fiber {
            Some(fiber) => fiber.sleep_until(deadline),
            None => std::thread::sleep(deadline.saturating_duration_since(Instant::now())),
        }
    }

    fn host(&self) -> &LaneHost {
        // SAFETY: the host lives as long as the lane; between calls (the
        // lane's methods take `self`, so no call is running) the plugin
        // holds no borrow of it.
        unsafe { &*self.host.ptr() }
    }

    fn host_mut(&mut self) -> &mut LaneHost {
        // SAFETY: as in `host`, and `&mut self` makes this the only borrow.
        unsafe { &mut *self.host.ptr() }
    }
}

/// A lane held for a loop of calls (see [`PluginLane::caller`]).
pub struct Caller<'l> {
    operation: OperationFn,
    rec: *mut Recorder,
    recorder: *mut ThreadRecorder,
    /// Holds the lane's `&mut` borrow: nothing else uses it meanwhile.
    _lane: PhantomData<&'l mut ()>,
}

impl Caller<'_> {
    /// As [`PluginLane::call`].
    #[inline(always)]
    pub fn call(&mut self, number: u64) -> Returned<'_> {
        // SAFETY: as in `PluginLane::call`: `rec` is the lane's, borrowed
        // from it for as long as this caller lives.
        let raw = unsafe { (self.operation)(number, self.rec) };
        Returned {
            raw,
            recorder: self.recorder,
            _lane: PhantomData,
        }
    }
}

/// What one call returned, read before the lane's next call.
pub struct Returned<'l> {
    raw: RawOutcome,
    recorder: *mut ThreadRecorder,
    /// Holds the lane's `&mut` borrow: no other call, and no fiber switch,
    /// while this lives.
    _lane: PhantomData<&'l mut ()>,
}

impl Returned<'_> {
    /// The call's result label, or its panic.
    #[inline(always)]
    pub fn outcome(&self) -> Outcome<'_> {
        // SAFETY: `raw` comes from the lane's last call, and the lane is
        // borrowed until this goes, so no call on this thread has been
        // made since.
        unsafe { read_outcome(&self.raw) }
    }

    /// The thread's recorder, for what must be done before the call is
    /// recorded (handing the ended interval over).
    #[inline(always)]
    pub fn recorder(&mut self) -> &mut ThreadRecorder {
        // SAFETY: as in `PluginLane::recorder`; the call has returned.
        unsafe { &mut *self.recorder }
    }

    /// Counts the call under its label, `nanos` long.
    #[inline(always)]
    pub fn record(&mut self, nanos: u64) {
        // SAFETY: as in `outcome` and `recorder`: the outcome's text is
        // the plugin's, never the recorder's, so the two do not overlap.
        let (outcome, recorder) = unsafe { (read_outcome(&self.raw), &mut *self.recorder) };
        recorder.record_outcome(&outcome, nanos);
    }

    /// Counts a call of the open model (see
    /// [`ThreadRecorder::record_paced`]).
    #[inline(always)]
    pub fn record_paced(&mut self, latency: u64, service: u64, late: bool) {
        // SAFETY: as in `record`.
        let (outcome, recorder) = unsafe { (read_outcome(&self.raw), &mut *self.recorder) };
        recorder.record_paced(&outcome, latency, service, late);
    }
}

/// Reads an outcome's text.
///
/// # Safety
/// `raw` must come straight from a plugin call on this thread, with no
/// call since: its text is valid until the next one.
#[inline(always)]
unsafe fn read_outcome(raw: &RawOutcome) -> Outcome<'_> {
    let text = if raw.text.is_null() {
        &[][..]
    } else {
        // SAFETY: the plugin hands over `len` initialised bytes at `text`,
        // valid until its next call on this thread (the caller's promise).
        unsafe { std::slice::from_raw_parts(raw.text, raw.len) }
    };
    match raw.status {
        STATUS_OK => Outcome::Label(text),
        STATUS_FAILED => Outcome::Failed(text),
        _ => Outcome::Panic(text),
    }
}

static VTABLE: HostVTable = HostVTable {
    record_measurement,
    param,
    wait,
    cooperative,
    step_begin,
};

/// The lane behind a callback's host pointer.
///
/// # Safety
/// `host` must be the pointer a [`PluginLane`] gave its `Recorder`, called
/// back during one of the lane's calls (so the lane, and its host, are
/// alive and not borrowed by the lane's own methods).
unsafe fn lane_host<'a>(host: *mut c_void) -> &'a LaneHost {
    // SAFETY: the caller's promise.
    unsafe { &*host.cast::<LaneHost>() }
}

/// `Recorder::record`: a measurement inside a call.
///
/// # Safety
/// Called by the plugin during a lane's call, as [`lane_host`] requires,
/// with `len` bytes at `name`.
unsafe extern "C" fn record_measurement(
    host: *mut c_void,
    name: *const u8,
    len: usize,
    nanos: u64,
) {
    // SAFETY: the function's promise.
    let lane = unsafe { lane_host(host) };
    // SAFETY: the plugin passes `len` bytes at `name` (`Recorder::record`
    // hands over a `&str`).
    let name = unsafe { std::slice::from_raw_parts(name, len) };
    // Warm-up calls get stuck too. A plugin built for ABI 3 or older never
    // says a step begins: its stuck call is then said to be after the last
    // step it recorded.
    lane.step(name, true);
    if !lane.measuring {
        return;
    }
    let write = || {
        // SAFETY: the thread's recorder outlives its lanes; during a call
        // the lane's methods hold no borrow of it, this borrow ends before
        // the callback returns, and with a watch the main thread does not
        // take from the recorder meanwhile (`ThreadWatch::touching`).
        let recorder = unsafe { &mut *lane.recorder };
        recorder.record_measurement(name, nanos);
    };
    match lane.watch() {
        Some(watch) => watch.touching(write),
        None => write(),
    }
}

/// `Recorder::measure` and `Recorder::start` (ABI 4): a step begins.
///
/// # Safety
/// As for [`record_measurement`], with `len` bytes at `name`.
unsafe extern "C" fn step_begin(host: *mut c_void, name: *const u8, len: usize) {
    // SAFETY: the function's promise; the plugin passes a `&str`.
    let (lane, name) = unsafe { (lane_host(host), std::slice::from_raw_parts(name, len)) };
    lane.step(name, false);
}

/// `Recorder::param`: a run parameter, whose bytes stay put for the life
/// of the worker (the recorder holds the parameters in an `Arc`).
///
/// # Safety
/// As for [`record_measurement`], with `len` bytes at `key` and a valid
/// `out_len`.
unsafe extern "C" fn param(
    host: *mut c_void,
    key: *const u8,
    len: usize,
    out_len: *mut usize,
) -> *const u8 {
    // SAFETY: the function's promise.
    let lane = unsafe { lane_host(host) };
    // SAFETY: the plugin passes `len` bytes at `key`.
    let key = unsafe { std::slice::from_raw_parts(key, len) };
    match lane.params.get(key) {
        Some(value) => {
            // SAFETY: `out_len` points to the plugin's `usize`.
            unsafe { *out_len = value.len() };
            value.as_ptr()
        }
        None => std::ptr::null(),
    }
}

/// `Recorder::wait`: a wait on a descriptor, which suspends the lane's
/// fiber, or polls on the thread off fibers.
///
/// # Safety
/// As for [`record_measurement`].
unsafe extern "C" fn wait(host: *mut c_void, fd: i32, writable: u32, timeout_ns: u64) -> i32 {
    let timeout = (timeout_ns != u64::MAX).then(|| Duration::from_nanos(timeout_ns));
    let (fiber, watch) = {
        // SAFETY: the function's promise. The handle and the watch are
        // copied out, so no borrow of the host is held while the fiber is
        // suspended.
        let lane = unsafe { lane_host(host) };
        (lane.fiber, lane.watch)
    };
    let woke = match fiber {
        Some(fiber) => {
            // Read first: after the first wait, no lane writes the line.
            if !WAITED_ON_FIBER.load(Ordering::Relaxed) {
                WAITED_ON_FIBER.store(true, Ordering::Relaxed);
            }
            // SAFETY: as in `LaneHost::watch`.
            let watch = unsafe { watch.as_ref() };
            // The thread's other fibers run meanwhile, in host code that
            // records: this thread is no longer stuck in this call.
            if let Some(watch) = watch {
                watch.returned();
            }
            let woke = fiber.wait_fd(fd, writable != 0, timeout);
            if let Some(watch) = watch {
                watch.entering(ThreadWatch::fresh_stamp());
            }
            woke
        }
        None => fibers::poll_fd(fd, writable != 0, timeout),
    };
    match woke {
        Wake::Ready => 0,
        Wake::TimedOut => WAIT_TIMED_OUT,
        Wake::Failed(errno) => errno,
    }
}

/// Set the first time a plugin waits through `rec.wait` on a fiber: with
/// `--fibers`, a plugin that never does runs one call at a time per thread
/// whatever the number of fibers, and the user is told.
static WAITED_ON_FIBER: AtomicBool = AtomicBool::new(false);

/// Whether any lane of this process waited through `rec.wait` on a fiber.
pub fn waited_on_fiber() -> bool {
    WAITED_ON_FIBER.load(Ordering::Relaxed)
}

/// `Recorder::is_cooperative`: whether the lane runs on a fiber.
///
/// # Safety
/// As for [`record_measurement`].
unsafe extern "C" fn cooperative(host: *mut c_void) -> u32 {
    // SAFETY: the function's promise.
    u32::from(unsafe { lane_host(host) }.fiber.is_some())
}
