//! The cheapest possible operation: Gorgon's own overhead is all that is
//! left to measure, which is what the benchmarks use it for.
use gorgon_plugin_api::{export, Recorder};

fn operation(_number: u64, _rec: &mut Recorder) -> &'static str {
    "OK"
}

export!(operation);
