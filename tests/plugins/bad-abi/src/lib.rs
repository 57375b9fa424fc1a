//! A plugin that claims a future ABI version: gorgon must refuse it before
//! calling anything.
#![allow(non_upper_case_globals)]

#[no_mangle]
pub static gorgon_abi_version: u32 = 999;

/// Never called: a host that checks the ABI stops before it.
#[no_mangle]
pub extern "C" fn operation() {
    std::process::abort();
}
