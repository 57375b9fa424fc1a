//! The parent's control lines (`go`, `stop`) and the gate that holds the
//! worker's threads until the run starts.

use std::io::{self, BufRead};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Condvar, Mutex};

use super::Shared;
use crate::clock::Clock;
use crate::exit;
use crate::protocol;

/// Reads the parent's control lines for the whole life of the worker, from
/// before the plugin's thread setup: `go` is passed on through the returned
/// channel; `stop` raises the stop flag. Before `go` there is nothing to
/// report, so `stop` or the end of input ends the worker at once: a thread
/// stuck in the plugin's setup must not keep it (or its parent) waiting.
/// After `go`, the end of input means the parent is gone (killed, or its
/// SSH connection lost): nobody will read another result, so the worker
/// ends at once too, stuck calls and all. No worker outlives its parent.
pub(super) fn listen(shared: Arc<Shared>) -> mpsc::Receiver<()> {
    let (go, started) = mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let mut line = String::new();
        let mut running = false;
        loop {
            line.clear();
            let command = match io::stdin().lock().read_line(&mut line) {
                // `_exit`: no atexit handler of a plugin may hold it up.
                Ok(0) | Err(_) if running => super::process::exit_now(exit::RUN_FAILED),
                Ok(0) | Err(_) => protocol::STOP,
                Ok(_) => line.trim(),
            };
            if command == protocol::GO && !running {
                running = true;
                let _ = go.send(());
            } else if command == protocol::STOP {
                if !running {
                    std::process::exit(i32::from(exit::OK));
                }
                shared.stop.store(true, Ordering::Relaxed);
            }
        }
    });
    started
}

/// The start of the run: the clock every lane uses and its reading at
/// `go`.
#[derive(Clone, Copy)]
pub(super) struct Start {
    pub origin: u64,
    pub clock: Clock,
}

/// Holds threads until the run starts; carries the start, or `None` when
/// the run is called off.
#[derive(Default)]
pub(super) struct Gate {
    state: Mutex<Option<Option<Start>>>,
    opened: Condvar,
}

impl Gate {
    /// Lets the waiting threads through, with the start or with `None`
    /// (called off). Only the first opening counts.
    pub fn open(&self, start: Option<Start>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.get_or_insert(start);
        self.opened.notify_all();
    }

    /// Waits until the gate opens.
    pub fn wait(&self) -> Option<Start> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(start) = *state {
                return start;
            }
            state = self.opened.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_holds_threads_until_opened_and_the_first_opening_counts() {
        let gate = Gate::default();
        let clock = Clock::monotonic();
        let origins: Vec<Option<u64>> = std::thread::scope(|scope| {
            let waiting: Vec<_> = (0..3)
                .map(|_| scope.spawn(|| gate.wait().map(|start| start.origin)))
                .collect();
            gate.open(Some(Start { origin: 42, clock }));
            gate.open(None);
            waiting.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(origins, [Some(42); 3]);
        assert_eq!(gate.wait().map(|start| start.origin), Some(42));
    }

    #[test]
    fn a_gate_opened_with_nothing_calls_the_run_off() {
        let gate = Gate::default();
        gate.open(None);
        gate.open(Some(Start {
            origin: 1,
            clock: Clock::monotonic(),
        }));
        assert!(gate.wait().is_none());
    }
}
