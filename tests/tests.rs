//! netdriver's integration tests, one binary with a module per feature. They run as root and
//! make real namespaces, links, qdiscs and processes (`sudo scripts/test`).
//!
//! Select a feature with its module path: `cargo test --test integration -- qos::`.

mod bad_input;
mod cli;
mod clock;
mod common;
mod conditions;
mod dual_stack;
mod errors;
mod etcd;
mod events;
mod hardening;
mod load;
mod nemesis;
mod network;
mod partition;
mod profiles;
mod qos;
mod scale;
mod services;
mod signals;
mod timeline;
