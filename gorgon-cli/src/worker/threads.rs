//! A worker thread: sets up its lanes (one, or one per fiber), waits for
//! the start, and runs them.

use std::sync::mpsc::Sender;
use std::sync::Arc;

use super::{lanes, process, Message, Shared};
use crate::exit;
use crate::fibers;
use crate::plugin::lane::{PluginLane, SharedRecorder};
use crate::plugin::watch::ThreadWatch;
use crate::plugin::Plugin;
use crate::recorder::{Params, ThreadRecorder};

/// Runs thread number `thread` of the worker from its setup to its end.
pub(super) fn run(
    thread: u32,
    plugin: &Plugin,
    shared: &Shared,
    params: Arc<Params>,
    sender: &Sender<Message>,
) {
    if shared.load.batch_scheduling {
        process::batch_this_thread();
    }
    let fibers = shared.load.fibers.max(1);
    // Stacks first: a worker out of memory mappings should stop before
    // thousands of setups have opened their connections.
    let stacks = match fibers {
        1 => None,
        _ => match fibers::Stacks::new(fibers as usize) {
            Ok(stacks) => Some(stacks),
            Err(error) => {
                let message = fibers::cannot_make(fibers, shared.lanes, &error);
                let _ = sender.send(Message::StartFailed(message));
                return;
            }
        },
    };
    // The thread's results: its lanes take turns recording into it, and
    // the main thread takes them over if the thread gets stuck in a call.
    let recorder = SharedRecorder::new(ThreadRecorder::new(params));
    let watch = shared.board.watch(thread);
    recorder.publish(watch);
    // Dropped before the recorder, whatever way this returns.
    let _withdraw = Withdraw(watch);
    let first_lane = thread * fibers;
    let mut lanes = Vec::with_capacity(fibers as usize);
    for index in first_lane..first_lane + fibers {
        // The lane says in its slot which step it is in, for the watchdog.
        let board = (shared.board.slot(index), watch);
        match PluginLane::start(plugin, &recorder, Some(board)) {
            Ok(lane) => lanes.push(lane),
            Err(failed) => {
                let _ = sender.send(failed.into());
                stop_all(lanes);
                return;
            }
        }
    }
    let _ = sender.send(Message::Ready);
    let Some(start) = shared.gate.wait() else {
        stop_all(lanes);
        return;
    };
    let Some(stacks) = stacks else {
        for lane in lanes {
            lanes::run(lane, first_lane, shared, sender, start);
        }
        return;
    };
    let bodies = lanes
        .into_iter()
        .zip(first_lane..)
        .map(|(mut lane, index)| -> fibers::Body<'_> {
            Box::new(move |fiber| {
                lane.attach_fiber(fiber);
                lanes::run(lane, index, shared, sender, start);
            })
        })
        .collect();
    if let Err(failure) = stacks.run(bodies) {
        // Rare (a broken epoll set, a bug): the parent reports the
        // worker's exit and keeps what the other workers did.
        eprintln!("gorgon worker: {failure}");
        std::process::exit(i32::from(exit::RUN_FAILED));
    }
}

/// Takes the thread's recorder out of its watch before the recorder goes.
struct Withdraw<'a>(&'a ThreadWatch);

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.0.withdraw();
    }
}

/// Runs the teardown of lanes that were set up but will make no call.
fn stop_all(lanes: Vec<PluginLane<'_>>) {
    for lane in lanes {
        lane.stop(|_| {});
    }
}
