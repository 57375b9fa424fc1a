//! The seed's "subcalls" example: one operation with two timed sub-steps.
//! The report shows a line per step, marked with a trailing `<`.
use std::time::Duration;

use gorgon_plugin_api::{export, Recorder};

fn operation(number: u64, rec: &mut Recorder) -> u16 {
    rec.measure("http call 1", || {
        std::thread::sleep(Duration::from_micros(200))
    });
    let call_2 = rec.start("http call 2");
    std::thread::sleep(Duration::from_micros(100 + number % 100));
    call_2.stop();
    200
}

export!(operation);
