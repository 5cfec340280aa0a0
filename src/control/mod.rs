//! The control socket: how other processes (the CLI, scripts) drive a live network.
//!
//! A controller serves its [`Network`](crate::network::Network) on
//! `/run/netdriver/<id>.sock` ([`Server`]); a [`Client`] finds a live network in the registry
//! and sends it requests ([`protocol`]). To run a command inside a node, the client asks for
//! the node's namespace descriptors, which come back over the socket (SCM_RIGHTS), and spawns
//! the command itself: its terminal, standard streams and exit status stay the client's.

mod client;
pub mod protocol;
mod server;

pub use client::Client;
pub use protocol::{Logs, NodeStatus, ServiceStatus, Status};
pub use server::Server;
