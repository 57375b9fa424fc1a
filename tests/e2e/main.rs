//! End-to-end tests: build real plugins, spawn the real `gorgon` binary,
//! read what it prints. Each module covers one area of behaviour.

mod support;

mod bad_input;
mod config;
mod core;
mod http;
mod scaffold;
