//! The plugin the end-to-end tests steer with parameters (`--set`), so one
//! library can panic, crash, stall or tell which numbers it saw.
//!
//! | parameter | effect |
//! |---|---|
//! | `label=TEXT` | the result label (default `OK`) |
//! | `panic_every=K` | numbers divisible by K panic with `planned panic at N` |
//! | `abort_at=N` | number N aborts the whole worker process |
//! | `numbers_dir=DIR` | each call appends its number to a file in DIR, one per thread |
//! | `sleep_us=U` | each call sleeps U microseconds |
//! | `wait_us=U` | each call waits U microseconds through `rec.wait` on a pipe nobody writes to (with `--fibers`, the thread's other fibers run meanwhile); a wait that ends otherwise than by its timeout makes the label `wait ended early: …` |
//! | `label_in_flight=1` | the result label is `N at once`: the calls in progress on this worker thread when this one began, itself included (more than 1 only on fibers) |
//! | `stall_at=N` and `stall_ms=M` | number N sleeps M milliseconds |
//! | `fail_setup=1` | the thread setup fails (the run failed: exit 3) |
//! | `fail_setup=input` | the thread setup refuses its input (bad input: exit 2) |
//! | `measure=NAME` | each call records a measurement NAME around its work |
//! | `label_policy=1` | the result label is the thread's scheduling policy: `SCHED_OTHER`, `SCHED_BATCH` or `policy N` |
//! | `spin_at=N` | number N spins on the CPU forever (a call that never returns) |
//! | `hang_at=N` | number N sleeps forever (a call stuck in a system call) |
//! | `hang_in_step=NAME` | with `spin_at` or `hang_at`: the stuck call first finishes a step `before NAME`, then gets stuck inside a step NAME (`rec.measure` when spinning, `rec.start` when sleeping) |
//! | `hang_teardown=1` | the thread teardown sleeps forever |
//! | `fail_every=K` | numbers divisible by K return a failed call labelled `failed` |
//! | `distinct_labels=1` | each call's label is `L` and its number: as many labels as calls |
//! | `setup_prints=1` | the thread setup writes a line to stdout and to stderr |
//! | `first_call_file=PATH` | the first call of each worker process appends `UNIX_NS PID` to PATH: when it began, in nanoseconds since the Unix epoch (for the start-up benchmark, bench/startup.sh) |
use std::cell::Cell;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gorgon_plugin_api::{export, Interest, Recorder, SetupError};

thread_local! {
    /// Calls in progress on this worker thread (several only on fibers).
    static IN_FLIGHT: Cell<u32> = const { Cell::new(0) };
}

/// A pipe nobody writes to: (read end, write end, kept open).
fn silent_pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: a plain system call filling two descriptors we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fresh descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

struct Plan {
    label: String,
    panic_every: Option<u64>,
    abort_at: Option<u64>,
    numbers: Option<std::fs::File>,
    sleep: Option<Duration>,
    stall: Option<(u64, Duration)>,
    measure: Option<String>,
    first_call: Option<PathBuf>,
    label_policy: bool,
    wait: Option<(Duration, (OwnedFd, OwnedFd))>,
    label_in_flight: bool,
    spin_at: Option<u64>,
    hang_at: Option<u64>,
    hang_in_step: Option<String>,
    hang_teardown: bool,
    fail_every: Option<u64>,
    distinct_labels: bool,
}

/// The calling thread's scheduling policy, by name.
fn policy() -> String {
    // SAFETY: a plain system call about the calling thread.
    match unsafe { libc::sched_getscheduler(0) } {
        libc::SCHED_OTHER => "SCHED_OTHER".to_string(),
        libc::SCHED_BATCH => "SCHED_BATCH".to_string(),
        other => format!("policy {other}"),
    }
}

/// Whether this process has made its first call yet (one copy of the
/// plugin per worker process, so this is per process).
static CALLED: AtomicBool = AtomicBool::new(false);

/// Appends when the first call of this process began, read before anything
/// else the call does.
fn note_first_call(path: &PathBuf) {
    let began = SystemTime::now();
    if CALLED.load(Ordering::Relaxed) || CALLED.swap(true, Ordering::Relaxed) {
        return;
    }
    let ns = began
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let line = format!("{ns} {}\n", std::process::id());
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(line.as_bytes()))
        .expect("the first_call_file is writable");
}

fn number(rec: &Recorder, key: &str) -> Result<Option<u64>, String> {
    rec.param(key)
        .map(|v| {
            v.parse()
                .map_err(|_| format!("{key} must be a number, not {v:?}"))
        })
        .transpose()
}

fn setup(rec: &Recorder) -> Result<Plan, SetupError> {
    if let Some(ms) = number(rec, "setup_sleep_ms")? {
        std::thread::sleep(Duration::from_millis(ms));
    }
    match rec.param("fail_setup") {
        Some("input") => {
            return Err(SetupError::bad_input(
                "fail_setup=input says the input is bad",
            ))
        }
        Some(_) => return Err("asked to fail by fail_setup".into()),
        None => {}
    }
    if rec.param("setup_prints").is_some() {
        println!("testkit setup writes this to stdout");
        eprintln!("testkit setup writes this to stderr");
    }
    let numbers = match rec.param("numbers_dir") {
        Some(dir) => {
            let thread = format!("{:?}", std::thread::current().id());
            let digits: String = thread.chars().filter(char::is_ascii_digit).collect();
            let path = PathBuf::from(dir).join(format!("{}-{digits}.txt", std::process::id()));
            Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    Ok(Plan {
        label: rec.param("label").unwrap_or("OK").to_string(),
        panic_every: number(rec, "panic_every")?,
        abort_at: number(rec, "abort_at")?,
        numbers,
        sleep: number(rec, "sleep_us")?.map(Duration::from_micros),
        stall: match (number(rec, "stall_at")?, number(rec, "stall_ms")?) {
            (Some(at), Some(ms)) => Some((at, Duration::from_millis(ms))),
            _ => None,
        },
        measure: rec.param("measure").map(str::to_string),
        first_call: rec.param("first_call_file").map(PathBuf::from),
        label_policy: rec.param("label_policy").is_some(),
        wait: match number(rec, "wait_us")? {
            Some(us) => Some((Duration::from_micros(us), silent_pipe()?)),
            None => None,
        },
        label_in_flight: rec.param("label_in_flight").is_some(),
        spin_at: number(rec, "spin_at")?,
        hang_at: number(rec, "hang_at")?,
        hang_in_step: rec.param("hang_in_step").map(str::to_string),
        hang_teardown: rec.param("hang_teardown").is_some(),
        fail_every: number(rec, "fail_every")?,
        distinct_labels: rec.param("distinct_labels").is_some(),
    })
}

/// Never returns: the hostile plugin the deadline and liveness checks are
/// for. `black_box` keeps the loop from being optimised into a halt.
fn spin_forever() -> ! {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn sleep_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn teardown(plan: Plan) {
    if plan.hang_teardown {
        sleep_forever();
    }
}

fn operation(number: u64, rec: &mut Recorder, plan: &mut Plan) -> Result<String, String> {
    let stuck = [plan.spin_at, plan.hang_at].contains(&Some(number));
    if let (true, Some(step)) = (stuck, &plan.hang_in_step) {
        rec.measure(&format!("before {step}"), || ());
        if plan.spin_at == Some(number) {
            rec.measure(step, || spin_forever());
        }
        let _inside = rec.start(step);
        sleep_forever();
    }
    if plan.spin_at == Some(number) {
        spin_forever();
    }
    if plan.hang_at == Some(number) {
        sleep_forever();
    }
    if plan
        .fail_every
        .is_some_and(|every| number.is_multiple_of(every))
    {
        return Err("failed".to_string());
    }
    label(number, rec, plan).map(|label| match plan.distinct_labels {
        true => format!("L{number}"),
        false => label,
    })
}

fn label(number: u64, rec: &mut Recorder, plan: &mut Plan) -> Result<String, String> {
    if let Some(path) = &plan.first_call {
        note_first_call(path);
    }
    if let Some(file) = &mut plan.numbers {
        writeln!(file, "{number}").expect("the numbers file is writable");
    }
    if plan.abort_at == Some(number) {
        std::process::abort();
    }
    let in_flight = IN_FLIGHT.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    let waited = waited(rec, plan);
    IN_FLIGHT.with(|n| n.set(n.get() - 1));
    if let Err(early) = waited {
        return Ok(early);
    }
    if plan.label_in_flight {
        return Ok(format!("{in_flight} at once"));
    }
    if let Some(every) = plan.panic_every {
        if number.is_multiple_of(every) {
            panic!("planned panic at {number}");
        }
    }
    let work = || {
        if let Some(pause) = plan.sleep {
            std::thread::sleep(pause);
        }
        if let Some((at, pause)) = plan.stall {
            if at == number {
                std::thread::sleep(pause);
            }
        }
    };
    match &plan.measure {
        Some(name) => rec.measure(name, work),
        None => work(),
    }
    if plan.label_policy {
        return Ok(policy());
    }
    Ok(plan.label.clone())
}

/// Waits `wait_us` through the recorder; the pipe never becomes readable,
/// so only the timeout may end the wait.
fn waited(rec: &Recorder, plan: &Plan) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let Some((pause, (read_end, _))) = &plan.wait else {
        return Ok(());
    };
    match rec.wait(read_end.as_raw_fd(), Interest::Readable, Some(*pause)) {
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(()),
        other => Err(format!("wait ended early: {other:?}")),
    }
}

export!(operation, setup = setup, teardown = teardown);
