//! Fibers: several calls at once on one worker thread (`--fibers N`).
//!
//! A blocking operation holds its thread while it waits, so the
//! concurrency of a run is its number of threads, and every reply wakes a
//! thread of its own. For a server on the same machine that wake-up is
//! the server's cost, paid once per request: measured against nginx it is
//! what kept thread-per-connection clients about 6% below wrk, whose two
//! threads each serve many connections from one `epoll` wait
//! (docs/design-notes-fibers.md).
//!
//! With fibers, each worker thread runs N lanes, each with a stack of its
//! own (corosensei), its own recorder and its own plugin state, running
//! the same closed or paced loop as a thread does. A plugin that waits
//! through [`Recorder::wait`](gorgon_plugin_api::Recorder::wait) suspends
//! its fiber; the thread's scheduler below then runs the fibers that are
//! ready, and when none is, makes one `epoll_wait` for all of them. The
//! operation stays plain sequential code, and its latency is still the
//! time from its start to its end, waits included.
//!
//! A plugin that never waits through the recorder runs its fibers one
//! after the other: correct, counted exactly, but no more concurrent
//! than one thread.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use nix::libc;

/// Each fiber's stack. It is reserved, not committed: pages are taken as
/// they are touched, so a thousand fibers cost their real depth, not
/// 512 MiB. Deep enough for the plugins we know (the HTTP plugin with
/// serde_json uses well under 64 KiB); a guard page turns an overflow
/// into a crash that is reported, not into corruption.
pub const STACK_BYTES: usize = 512 * 1024;

/// How a fiber's wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    Ready,
    TimedOut,
    /// The wait itself failed with this `errno` (a closed descriptor, say).
    Failed(i32),
}

/// What a fiber waits for when it hands the thread back.
#[derive(Debug, Clone, Copy)]
pub enum Suspend {
    Io {
        fd: i32,
        writable: bool,
        deadline: Option<Instant>,
    },
    Until(Instant),
}

type FiberYielder = Yielder<Wake, Suspend>;

/// A fiber's way back to its scheduler, kept in its recorder while its
/// calls run.
#[derive(Clone, Copy)]
pub struct FiberHandle(*const FiberYielder);

impl FiberHandle {
    /// Suspends the fiber until `fd` is ready or `timeout` has passed.
    pub fn wait_fd(self, fd: i32, writable: bool, timeout: Option<Duration>) -> Wake {
        let deadline = timeout.map(|t| Instant::now() + t);
        // SAFETY: the yielder lives as long as the fiber's body, which is
        // the only place this handle is used from.
        unsafe {
            (*self.0).suspend(Suspend::Io {
                fd,
                writable,
                deadline,
            })
        }
    }

    /// Suspends the fiber until `deadline`.
    pub fn sleep_until(self, deadline: Instant) {
        // SAFETY: as in `wait_fd`.
        unsafe { (*self.0).suspend(Suspend::Until(deadline)) };
    }
}

/// A wait off fibers: `poll(2)` on the calling thread.
pub fn poll_fd(fd: i32, writable: bool, timeout: Option<Duration>) -> Wake {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut entry = libc::pollfd {
        fd,
        events: if writable {
            libc::POLLOUT
        } else {
            libc::POLLIN
        },
        revents: 0,
    };
    loop {
        let ms = deadline.map_or(-1, |d| {
            millis_up(d.saturating_duration_since(Instant::now()))
        });
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut entry, 1, ms) };
        match n {
            0 => match deadline {
                Some(d) if Instant::now() < d => continue,
                _ => return Wake::TimedOut,
            },
            n if n > 0 => {
                if entry.revents & libc::POLLNVAL != 0 {
                    return Wake::Failed(libc::EBADF);
                }
                return Wake::Ready;
            }
            _ => match nix::errno::Errno::last_raw() {
                libc::EINTR => continue,
                errno => return Wake::Failed(errno),
            },
        }
    }
}

/// A duration in whole milliseconds, rounded up, for `poll`/`epoll_wait`.
fn millis_up(d: Duration) -> i32 {
    let ms = d.as_nanos().div_ceil(1_000_000);
    i32::try_from(ms).unwrap_or(i32::MAX)
}

/// A fiber's body: its lane's whole part of the run. It gets the handle
/// its waits go through.
pub type Body<'a> = Box<dyn FnOnce(FiberHandle) + 'a>;

/// The stacks and the scheduler for one thread's fibers, made before the
/// run starts so that a failure to make them stops the run before its
/// first call.
pub struct Stacks {
    stacks: Vec<DefaultStack>,
    scheduler: Scheduler,
}

impl Stacks {
    pub fn new(fibers: usize) -> std::io::Result<Stacks> {
        Ok(Stacks {
            stacks: (0..fibers)
                .map(|_| DefaultStack::new(STACK_BYTES))
                .collect::<Result<_, _>>()?,
            scheduler: Scheduler::new(fibers)?,
        })
    }

    /// Runs `bodies` (one per stack) as fibers on the calling thread until
    /// every one has returned.
    pub fn run(self, bodies: Vec<Body<'_>>) -> std::io::Result<()> {
        let Stacks {
            stacks,
            mut scheduler,
        } = self;
        debug_assert_eq!(stacks.len(), bodies.len());
        let mut fibers: Vec<Fiber> = stacks
            .into_iter()
            .zip(bodies)
            .map(|(stack, body)| {
                // SAFETY: every fiber is driven to completion below, before
                // this function returns, so what `body` borrows outlives
                // it; should the scheduler fail (or a body panic), dropping
                // the coroutine unwinds its stack before the borrows end,
                // still inside this function.
                unsafe {
                    Coroutine::with_stack_unchecked(
                        stack,
                        move |yielder: &FiberYielder, _: Wake| body(FiberHandle(yielder)),
                    )
                }
            })
            .collect();
        scheduler.drive(&mut fibers)
    }
}

#[cfg(test)]
fn run_all(bodies: Vec<Body<'_>>) -> std::io::Result<()> {
    Stacks::new(bodies.len())?.run(bodies)
}

/// One thread's fibers: which are ready, which wait on what.
struct Scheduler {
    epoll: std::os::fd::OwnedFd,
    ready: VecDeque<(usize, Wake)>,
    /// The wait each fiber is in, numbered so that a timer or an event
    /// left over from an earlier wait is recognised and ignored.
    waits: Vec<Option<Waiting>>,
    next_wait: u64,
    /// Which fiber waits on a descriptor, indexed by the descriptor
    /// (small integers: a vector beats hashing them).
    by_fd: Vec<Option<usize>>,
    /// Deadlines of waits. A wait that ends otherwise leaves its entry
    /// behind until it reaches the top or the heap is pruned.
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
}

#[derive(Clone, Copy)]
struct Waiting {
    id: u64,
    fd: Option<i32>,
}

/// Within this of a timer, the scheduler polls instead of sleeping, since
/// `epoll_wait` sleeps in whole milliseconds and overshoots by its slack.
const SPIN: Duration = Duration::from_micros(1_200);

type Fiber = Coroutine<Wake, Suspend, (), DefaultStack>;

impl Scheduler {
    fn new(fibers: usize) -> std::io::Result<Scheduler> {
        // SAFETY: a plain system call; the fd is owned below.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let epoll = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
        Ok(Scheduler {
            epoll,
            ready: (0..fibers).map(|i| (i, Wake::Ready)).collect(),
            waits: vec![None; fibers],
            next_wait: 0,
            by_fd: Vec::new(),
            timers: BinaryHeap::new(),
        })
    }

    fn drive(&mut self, fibers: &mut [Fiber]) -> std::io::Result<()> {
        let mut live = fibers.len();
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; fibers.len().min(1024)];
        while live > 0 {
            while let Some((index, wake)) = self.ready.pop_front() {
                match fibers[index].resume(wake) {
                    CoroutineResult::Yield(suspend) => self.suspend(index, suspend),
                    CoroutineResult::Return(()) => live -= 1,
                }
            }
            if live > 0 {
                self.wait_for_events(&mut events)?;
            }
        }
        Ok(())
    }

    /// Files fiber `index` under what it waits for.
    fn suspend(&mut self, index: usize, suspend: Suspend) {
        let id = self.next_wait;
        self.next_wait += 1;
        let (fd, deadline) = match suspend {
            Suspend::Io {
                fd,
                writable,
                deadline,
            } => {
                if let Err(errno) = self.arm(fd, writable) {
                    self.ready.push_back((index, Wake::Failed(errno)));
                    return;
                }
                self.set_waiter(fd, Some(index));
                (Some(fd), deadline)
            }
            Suspend::Until(deadline) => (None, Some(deadline)),
        };
        self.waits[index] = Some(Waiting { id, fd });
        if let Some(deadline) = deadline {
            self.prune_timers();
            self.timers.push(Reverse((deadline, index, id)));
        }
    }

    /// Drops the entries of waits that ended by an event, once they
    /// outnumber the fibers: behind one long wait at the top, the short
    /// waits of the other fibers would otherwise pile up for as long as it
    /// lasts (a slow server, up to the plugin's timeout).
    fn prune_timers(&mut self) {
        if self.timers.len() > 2 * self.waits.len() + 64 {
            let waits = &self.waits;
            self.timers
                .retain(|Reverse((_, index, id))| waits[*index].is_some_and(|w| w.id == *id));
        }
    }

    fn set_waiter(&mut self, fd: i32, fiber: Option<usize>) {
        let slot = fd as usize;
        if slot >= self.by_fd.len() {
            self.by_fd.resize(slot + 1, None);
        }
        self.by_fd[slot] = fiber;
    }

    /// The fiber waiting on `fd`, no longer waiting on it.
    fn take_waiter(&mut self, fd: i32) -> Option<usize> {
        self.by_fd.get_mut(fd as usize).and_then(Option::take)
    }

    /// Asks for one event when `fd` is ready. One-shot, so that an event
    /// comes only for a wait; re-armed per wait with `EPOLL_CTL_MOD`, or
    /// added when the descriptor is new (or was closed and its number
    /// reused, which removes it from the epoll set).
    fn arm(&self, fd: i32, writable: bool) -> Result<(), i32> {
        use std::os::fd::AsRawFd;
        let interest = if writable {
            libc::EPOLLOUT
        } else {
            libc::EPOLLIN | libc::EPOLLRDHUP
        };
        let mut event = libc::epoll_event {
            events: (interest | libc::EPOLLONESHOT) as u32,
            u64: fd as u64,
        };
        let epoll = self.epoll.as_raw_fd();
        // SAFETY: plain system calls with a valid event.
        unsafe {
            if libc::epoll_ctl(epoll, libc::EPOLL_CTL_MOD, fd, &mut event) == 0 {
                return Ok(());
            }
            if nix::errno::Errno::last_raw() == libc::ENOENT
                && libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut event) == 0
            {
                return Ok(());
            }
        }
        Err(nix::errno::Errno::last_raw())
    }

    /// Sleeps until a descriptor is ready or the next timer is due, and
    /// makes the fibers concerned ready.
    fn wait_for_events(&mut self, events: &mut [libc::epoll_event]) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let timeout_ms = match self.next_timer() {
            None => -1,
            Some(due) => {
                let left = due.saturating_duration_since(Instant::now());
                if left > SPIN {
                    millis_up(left - SPIN).max(1)
                } else {
                    0
                }
            }
        };
        // SAFETY: `events` is a valid buffer of its length.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                timeout_ms,
            )
        };
        if n < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
        for event in &events[..n.max(0) as usize] {
            let fd = event.u64 as i32;
            if let Some(index) = self.take_waiter(fd) {
                self.waits[index] = None;
                self.ready.push_back((index, Wake::Ready));
            }
        }
        self.expire_timers();
        if n == 0 && self.ready.is_empty() && timeout_ms == 0 {
            // Close to a timer: let other threads run while polling.
            std::thread::yield_now();
        }
        Ok(())
    }

    /// The earliest timer of a wait still in progress.
    fn next_timer(&mut self) -> Option<Instant> {
        while let Some(Reverse((due, index, id))) = self.timers.peek().copied() {
            if self.waits[index].is_some_and(|w| w.id == id) {
                return Some(due);
            }
            self.timers.pop();
        }
        None
    }

    fn expire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((due, index, id))) = self.timers.peek().copied() {
            if due > now {
                break;
            }
            self.timers.pop();
            let Some(waiting) = self.waits[index].filter(|w| w.id == id) else {
                continue;
            };
            self.waits[index] = None;
            let wake = match waiting.fd {
                // The descriptor stays armed; its event, if it comes, finds
                // no waiter and is dropped, and the next wait re-arms it.
                Some(fd) => {
                    self.take_waiter(fd);
                    Wake::TimedOut
                }
                None => Wake::Ready,
            };
            self.ready.push_back((index, wake));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn fibers_interleave_at_their_waits() {
        let log = RefCell::new(Vec::new());
        let (mut a, mut a_peer) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let log_ref = &log;
        let bodies: Vec<Body<'_>> = vec![
            Box::new(move |fiber: FiberHandle| {
                log_ref.borrow_mut().push("a waits");
                assert_eq!(fiber.wait_fd(a.as_raw_fd(), false, None), Wake::Ready);
                let mut buf = [0u8; 8];
                let n = a.read(&mut buf).unwrap();
                log_ref
                    .borrow_mut()
                    .push(if n == 2 { "a read" } else { "a short" });
            }),
            Box::new(move |fiber: FiberHandle| {
                log_ref.borrow_mut().push("b sleeps");
                fiber.sleep_until(Instant::now() + Duration::from_millis(5));
                log_ref.borrow_mut().push("b writes");
                a_peer.write_all(b"hi").unwrap();
            }),
        ];
        run_all(bodies).unwrap();
        assert_eq!(
            *log.borrow(),
            ["a waits", "b sleeps", "b writes", "a read"],
            "each fiber runs while the other waits"
        );
    }

    #[test]
    fn a_wait_times_out_and_a_sleep_ends_on_time() {
        let (a, _peer) = UnixStream::pair().unwrap();
        let started = Instant::now();
        let woke = RefCell::new(None);
        let woke_ref = &woke;
        run_all(vec![Box::new(move |fiber: FiberHandle| {
            *woke_ref.borrow_mut() =
                Some(fiber.wait_fd(a.as_raw_fd(), false, Some(Duration::from_millis(20))));
        })])
        .unwrap();
        assert_eq!(*woke.borrow(), Some(Wake::TimedOut));
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(20), "{took:?}");
    }

    #[test]
    fn timers_of_waits_that_ended_early_do_not_pile_up() {
        let (long, _long_peer) = UnixStream::pair().unwrap();
        let (mut short, mut short_peer) = UnixStream::pair().unwrap();
        short.set_nonblocking(true).unwrap();
        let most = RefCell::new(0);
        let most_ref = &most;
        let mut scheduler = Scheduler::new(2).unwrap();
        let scheduler_ptr: *const Scheduler = &scheduler;
        let bodies: Vec<Body<'_>> = vec![
            // One wait with a far deadline stays at the top of the heap.
            Box::new(move |fiber: FiberHandle| {
                let woke = fiber.wait_fd(long.as_raw_fd(), false, Some(Duration::from_millis(300)));
                assert_eq!(woke, Wake::TimedOut);
            }),
            // Meanwhile the other fiber makes 1,000 short waits that end
            // by their event.
            Box::new(move |fiber: FiberHandle| {
                for _ in 0..1000 {
                    short_peer.write_all(b"x").unwrap();
                    let woke =
                        fiber.wait_fd(short.as_raw_fd(), false, Some(Duration::from_secs(5)));
                    assert_eq!(woke, Wake::Ready);
                    short.read_exact(&mut [0u8; 1]).unwrap();
                    // SAFETY: read while the scheduler is not running (this
                    // fiber holds the thread).
                    let pending = unsafe { (*scheduler_ptr).timers.len() };
                    let mut most = most_ref.borrow_mut();
                    *most = (*most).max(pending);
                }
            }),
        ];
        let stacks: Vec<DefaultStack> = (0..2)
            .map(|_| DefaultStack::new(STACK_BYTES).unwrap())
            .collect();
        let mut fibers: Vec<Fiber> = stacks
            .into_iter()
            .zip(bodies)
            .map(|(stack, body)| unsafe {
                Coroutine::with_stack_unchecked(stack, move |y: &FiberYielder, _: Wake| {
                    body(FiberHandle(y))
                })
            })
            .collect();
        scheduler.drive(&mut fibers).unwrap();
        let most = *most.borrow();
        assert!(most <= 2 * 2 + 64 + 1, "{most} timers pending at most");
    }

    #[test]
    fn waiting_on_a_closed_descriptor_fails_instead_of_hanging() {
        let woke = RefCell::new(None);
        let woke_ref = &woke;
        run_all(vec![Box::new(move |fiber: FiberHandle| {
            *woke_ref.borrow_mut() = Some(fiber.wait_fd(987_654, false, None));
        })])
        .unwrap();
        assert_eq!(*woke.borrow(), Some(Wake::Failed(libc::EBADF)));
        assert_eq!(poll_fd(987_654, false, None), Wake::Failed(libc::EBADF));
    }
}
