//! netdriver: a network of nodes for integration tests, on one Linux host, without containers.
//!
//! Each node is a set of namespaces (network, mount, UTS) joined by a veth pair to a bridge,
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

pub mod clock;
pub mod control;
pub mod error;
mod fabric;
pub mod manifest;
pub mod network;
pub mod node;
mod process;
pub mod profile;
mod registry;
pub mod service;
pub mod shaping;
pub mod spec;
pub mod template;
pub mod units;

pub use clock::{ClockReport, ClockSkew, Offset};
pub use error::{Error, Result};
pub use network::{Direction, Network, Progress};
pub use node::Node;
pub use registry::{gc, GcReport};
pub use service::{Service, ServiceState};
pub use shaping::{Distribution, Loss, Percent, Qos, Rate};
pub use spec::{Conditions, NetworkSpec, Probe, QosRule, ServiceSpec, Subnet};
