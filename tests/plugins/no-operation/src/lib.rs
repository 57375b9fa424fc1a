//! A shared library with the ABI marker but no `operation` symbol.
#![allow(non_upper_case_globals)]

#[no_mangle]
pub static gorgon_abi_version: u32 = 1;
