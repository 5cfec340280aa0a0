//! netdriver: a network of nodes for integration tests, on one Linux host, without containers.
//!
//! Each node is a set of namespaces (network, mount, UTS) joined by a veth pair to a router,
//! with its own address; its services are processes spawned directly inside. Build a
//! [`NetworkSpec`] (in code or from a TOML manifest), bring it up with [`Network::up`], drive
//! the nodes, and drop the network to tear everything down.
//!
//! ```no_run
//! use netdriver::{Network, NetworkSpec, ServiceSpec, Probe};
//! use std::time::Duration;
//!
//! let web = ServiceSpec::new("web", "python3")?
//!     .args(["-m", "http.server", "8000", "--bind", "{ip}"])?
//!     .ready(Probe::Tcp(8000), Duration::from_secs(10));
//! let network = Network::up(&NetworkSpec::new("demo", 3).service(web))?;
//! network.start()?;
//! let out = network.node("node1")?.exec(["curl", "-s", "http://node0:8000/"])?;
//! assert!(out.status.success());
//! # Ok::<(), netdriver::Error>(())
//! ```
//!
//! ## Layers
//!
//! Read the modules bottom-up. Each names (through `crate::`) only the ones listed before it,
//! so no layer reaches into a higher one and the module graph has no cycle;
//! `scripts/check-layers` checks it.
//!
//! | layer | modules, in order | what they own |
//! |---|---|---|
//! | foundations | `error`, `units`, `cancel`, `files`, `events`, `subnet`, `template`, `config`, `shaping`, `clock`, `timeline` | the error type, durations, cancelling waits, files and directories made without trusting others, the run's timeline, IPv4 and IPv6 subnets, placeholders, configuration files, link shaping values and their qdisc encodings, clock offsets, the timeline's picture (which reads them) |
//! | kernel primitives | `runtime`, `ns`, `wallclock`, `fabric`, `process` | the async runtime for netlink and probes, and the spawner thread; namespaces and what a node's mount namespace shows; each node's wall clock for every program in it (exec filter, supervisor, vDSO stub); the lab router, veths, routes, neighbour entries, partitions and qdiscs; spawning into namespaces and the process table |
//! | specs | `spec`, `manifest` | what a network should be, in code or as a TOML manifest |
//! | live networks | `registry`, `gc`, `inside`, `service`, `node`, `network`, `nemesis` | run records and subnet picking; reclaiming dead runs; what a node's processes share; services; nodes; networks; seeded fault schedules run on a network |
//! | profiles | `profile` | ready-made application networks: Tendermint, kvstore, BigchainDB |
//! | faces | `control` | the control socket; the CLI (`src/cli`) and the Python package (`python/`) are crates above the library and only translate |

pub mod cancel;
pub mod clock;
pub mod config;
pub mod control;
pub mod error;
pub mod events;
mod fabric;
mod files;
pub mod gc;
mod inside;
pub mod manifest;
pub mod nemesis;
pub mod network;
pub mod node;
mod ns;
mod process;
pub mod profile;
mod registry;
mod runtime;
pub mod service;
pub mod shaping;
pub mod spec;
pub mod subnet;
pub mod template;
pub mod timeline;
pub mod units;
pub mod wallclock;

pub use cancel::Cancel;
pub use clock::{ClockReport, ClockSkew, Drift, Offset};
pub use error::{Error, Result};
pub use events::{Actor, Event, EventKind};
pub use gc::{gc, GcReport};
pub use network::{Network, Progress};
pub use node::Node;
pub use service::{Op, Service, ServiceState};
pub use shaping::{Direction, Distribution, Loss, Percent, Qos, Rate};
pub use spec::{Conditions, Cut, NetworkSpec, Probe, QosRule, QosTarget, ServiceSpec, MAX_NODES};
pub use subnet::{Subnet, Subnet6};
