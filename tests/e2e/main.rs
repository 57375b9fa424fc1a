//! End-to-end tests: build real plugins, spawn the real `gorgon` binary,
//! read what it prints. Each module covers one area of behaviour.

mod sshd;
mod support;

mod bad_input;
mod cluster;
mod cluster_loss;
mod compare_json;
mod config;
mod core;
mod deadlines;
mod failures;
mod fibers;
mod footprint;
mod hostile;
mod http;
mod load_shapes;
mod metrics;
mod plugin_names;
mod progress;
mod reports;
mod scaffold;
mod scheduling;
mod stuck;
mod timeline;
mod verdict;
