//! `gorgon-floor PLUGIN N [tsc]`: the cheapest loop that still does what Gorgon
//! must do per call — call the plugin's `operation` through a function
//! pointer, read the clock before and after, record the difference in an
//! HDR histogram — and nothing else. Its cost per call is the floor that
//! `gorgon run`'s overhead is measured against (bench/overhead.sh).
//!
//! Prints `ns_per_op_tsc=… ns_per_op_instant=…`: the loop timed with the
//! TSC (quanta's raw counter, what gorgon's workers use) and, for
//! reference, with `std::time::Instant` (left out when the third
//! argument is `tsc`, for runs of several loops side by side).

use std::ffi::c_void;
use std::time::Instant;

use gorgon_plugin_api::abi::{HostVTable, OperationFn, SYMBOL_OPERATION};
use gorgon_plugin_api::Recorder;
use hdrhistogram::Histogram;

unsafe extern "C" fn ignore_measurement(_: *mut c_void, _: *const u8, _: usize, _: u64) {}

unsafe extern "C" fn no_param(_: *mut c_void, _: *const u8, _: usize, _: *mut usize) -> *const u8 {
    std::ptr::null()
}

unsafe extern "C" fn ready_at_once(_: *mut c_void, _: i32, _: u32, _: u64) -> i32 {
    0
}

unsafe extern "C" fn not_cooperative(_: *mut c_void) -> u32 {
    0
}

unsafe extern "C" fn ignore_step(_: *mut c_void, _: *const u8, _: usize) {}

static VTABLE: HostVTable = HostVTable {
    record_measurement: ignore_measurement,
    param: no_param,
    wait: ready_at_once,
    cooperative: not_cooperative,
    step_begin: ignore_step,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (plugin, count, only_tsc) = match args.as_slice() {
        [_, plugin, count] => (plugin, count, false),
        [_, plugin, count, mode] if mode == "tsc" => (plugin, count, true),
        _ => {
            eprintln!("usage: gorgon-floor PLUGIN.so N [tsc]");
            std::process::exit(2);
        }
    };
    let count: u64 = count.parse().expect("N is a number");
    let plugin = std::fs::canonicalize(plugin).expect("the plugin exists");
    // SAFETY: loading runs the library's initialisers; this is a benchmark
    // of our own noop plugin.
    let library = unsafe { libloading::Library::new(&plugin) }.expect("the plugin loads");
    // SAFETY: `operation` has the type the export! macro gives it, and
    // `library` stays loaded until the end of `main`.
    let operation = *unsafe { library.get::<OperationFn>(SYMBOL_OPERATION) }.expect("operation");
    // SAFETY: the vtable ignores every callback, so the null host is never read.
    let mut rec = unsafe { Recorder::from_raw(std::ptr::null_mut(), &VTABLE) };

    let clock = quanta::Clock::new();
    let mut histogram = Histogram::<u64>::new(3).expect("valid precision");
    let started = Instant::now();
    for number in 0..count {
        let t0 = clock.raw();
        // SAFETY: the noop plugin's operation, with a valid recorder.
        std::hint::black_box(unsafe { operation(number, &mut rec) });
        let t1 = clock.raw();
        let _ = histogram.record(clock.delta_as_nanos(t0, t1));
    }
    let tsc = started.elapsed().as_nanos() as f64 / count as f64;
    if only_tsc {
        println!("ns_per_op_tsc={tsc:.1}");
        return;
    }

    let mut histogram = Histogram::<u64>::new(3).expect("valid precision");
    let started = Instant::now();
    for number in 0..count {
        let t0 = Instant::now();
        // SAFETY: as above.
        std::hint::black_box(unsafe { operation(number, &mut rec) });
        let _ = histogram.record(t0.elapsed().as_nanos() as u64);
    }
    let instant = started.elapsed().as_nanos() as f64 / count as f64;
    println!("ns_per_op_tsc={tsc:.1} ns_per_op_instant={instant:.1}");
}
