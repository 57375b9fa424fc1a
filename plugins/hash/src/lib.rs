//! The seed's README example: a computationally expensive operation.
//! SHA-512 updated 4000 times with `TEXT {number}`; every fifth call fails.
use gorgon_plugin_api::{export, Recorder};
use sha2::{Digest, Sha512};

fn operation(number: u64, _rec: &mut Recorder) -> &'static str {
    let text = format!("TEXT {number}");
    let mut hasher = Sha512::new();
    for _ in 0..4000 {
        hasher.update(text.as_bytes());
    }
    std::hint::black_box(hasher.finalize());
    if number.is_multiple_of(5) {
        "FAIL"
    } else {
        "SUCCESS"
    }
}

export!(operation);
