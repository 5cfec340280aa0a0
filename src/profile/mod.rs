//! Profiles: ready-made networks of one application stack. A profile says what every node runs
//! ([`Profile::spec`]), writes what the services need before their first start (keys,
//! genesis, configuration: [`Profile::prepare`]), and names each service's configuration file
//! so that it can be changed per node ([`Cluster::configure`]).
//!
//! ```no_run
//! use netdriver::profile::{Cluster, Kvstore};
//! use std::sync::Arc;
//!
//! let cluster = Cluster::launch(Arc::new(Kvstore::locate(None)?), "kv", 4)?;
//! cluster.node("node0")?.stop()?;
//! # Ok::<(), netdriver::Error>(())
//! ```

pub mod bigchaindb;
pub mod config;
pub mod database;
mod kvstore;
pub mod tendermint;

use std::fmt::Debug;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

pub use bigchaindb::{BigchainDb, BigchainDbNode};
pub use config::{ConfigFile, Format};
pub use kvstore::Kvstore;

use crate::error::{Error, Result};
use crate::network::Network;
use crate::node::Node;
use crate::spec::NetworkSpec;

/// A kind of network: what each node runs and how it is set up.
pub trait Profile: Debug + Send + Sync {
    /// The profile's name, e.g. `bigchaindb`.
    fn name(&self) -> &'static str;

    /// The spec of a network called `name` with `nodes` nodes; adjust it (conditions, run
    /// root) before [`Cluster::up`].
    fn spec(&self, name: &str, nodes: usize) -> Result<NetworkSpec>;

    /// Writes what the services need before their first start.
    fn prepare(&self, network: &Network) -> Result<()>;

    /// Waits, after the first start of every service, until the network is usable (for a
    /// chain: its first block is committed).
    fn settle(&self, network: &Network) -> Result<()>;

    /// The configuration file of `service` on `node`.
    fn config_file(&self, node: &Node, service: &str) -> Result<ConfigFile>;
}

/// The profiles known by name: `bigchaindb` and `kvstore`, with binaries found on PATH,
/// in the stack directory, or at the paths given in `binaries` (program name → path).
pub fn by_name(name: &str, binaries: &[(String, PathBuf)]) -> Result<Arc<dyn Profile>> {
    let given = |program: &str| binaries.iter().find(|(p, _)| p == program).map(|(_, path)| path.as_path());
    let known = ["tendermint", "bigchaindb", "mongod", "ferretdb"];
    if let Some((program, _)) = binaries.iter().find(|(p, _)| !known.contains(&p.as_str())) {
        return Err(Error::invalid("binaries", format!("unknown program '{program}'; known: {}", known.join(", "))));
    }
    match name {
        "bigchaindb" => Ok(Arc::new(BigchainDb::locate(given)?)),
        "kvstore" => Ok(Arc::new(Kvstore::locate(given("tendermint"))?)),
        other => Err(Error::invalid("profile", format!("unknown profile '{other}'; known: bigchaindb, kvstore"))),
    }
}

/// A live network of a profile. It derefs to its [`Network`] for everything else: nodes,
/// partitions, link shaping. Dropping it tears the network down.
#[derive(Debug)]
pub struct Cluster {
    network: Network,
    profile: Arc<dyn Profile>,
}

impl Cluster {
    /// Brings up `nodes` nodes of `profile`, prepares them and starts every service
    /// ([`Cluster::start`]).
    pub fn launch(profile: Arc<dyn Profile>, name: &str, nodes: usize) -> Result<Cluster> {
        let spec = profile.spec(name, nodes)?;
        let cluster = Cluster::up(profile, &spec)?;
        cluster.start()?;
        Ok(cluster)
    }

    /// Brings up `spec` (from [`Profile::spec`], maybe adjusted) and prepares it; services
    /// are not started.
    pub fn up(profile: Arc<dyn Profile>, spec: &NetworkSpec) -> Result<Cluster> {
        Cluster::up_with_progress(profile, spec, |_| {})
    }

    /// Like [`Cluster::up`], reporting progress after each node.
    pub fn up_with_progress(
        profile: Arc<dyn Profile>,
        spec: &NetworkSpec,
        progress: impl FnMut(crate::Progress),
    ) -> Result<Cluster> {
        let network = Network::up_with_progress(spec, progress)?;
        profile.prepare(&network)?;
        Ok(Cluster { network, profile })
    }

    /// Starts every service of every node ([`Network::start`]) and waits until the network
    /// is usable ([`Profile::settle`]).
    pub fn start(&self) -> Result<()> {
        self.network.start()?;
        self.profile.settle(&self.network)
    }

    /// The profile.
    pub fn profile(&self) -> &dyn Profile {
        &*self.profile
    }

    /// Merges `settings` into the configuration of `service` on `node` (a name or index).
    /// Keys may be nested objects or dotted (`consensus.timeout_commit`); a null removes a
    /// key. It takes effect when the service next starts: restart it to apply it now.
    pub fn configure(&self, node: &str, service: &str, settings: &Value) -> Result<()> {
        let node = self.network.node(node)?;
        node.service(service)?;
        self.profile.config_file(node, service)?.update(settings)
    }

    /// Tears the network down, reporting the first error.
    pub fn down(self) -> Result<()> {
        self.network.down()
    }
}

impl Deref for Cluster {
    type Target = Network;
    fn deref(&self) -> &Network {
        &self.network
    }
}

/// Where `scripts/install-stack` puts what it builds: `$NETDRIVER_STACK` or `/opt/netdriver`.
pub fn stack_dir() -> PathBuf {
    std::env::var_os("NETDRIVER_STACK").map_or_else(|| PathBuf::from("/opt/netdriver"), PathBuf::from)
}

/// Finds `program`: at `given` if set, else on PATH, else in the stack directory's `bin` and
/// `venv/bin`.
pub(crate) fn locate(service: &str, program: &str, given: Option<&Path>) -> Result<PathBuf> {
    let missing = |program: String, fix: String| Error::MissingBinary { service: service.into(), program, fix };
    if let Some(path) = given {
        return crate::process::find_program(&path.to_string_lossy())
            .ok_or_else(|| missing(path.display().to_string(), "the path given is not an executable file".into()));
    }
    let stack = stack_dir();
    crate::process::find_program(program)
        .or_else(|| ["bin", "venv/bin"].iter().map(|d| stack.join(d).join(program)).find(|p| crate::process::find_program(&p.to_string_lossy()).is_some()))
        .ok_or_else(|| {
            missing(
                program.into(),
                format!("it is on neither PATH nor {}/bin; run `sudo scripts/install-stack` to build it there, or give its path", stack.display()),
            )
        })
}

/// A manifest as a profile: its services on any number of nodes, nothing to prepare.
#[derive(Debug, Clone)]
pub struct Manifest {
    spec: NetworkSpec,
}

impl Manifest {
    /// Reads the manifest at `path` (see [`crate::manifest`]).
    pub fn load(path: &Path) -> Result<Manifest> {
        Ok(Manifest { spec: crate::manifest::load(path)? })
    }

    /// How many nodes the manifest names.
    pub fn nodes(&self) -> usize {
        self.spec.nodes.len()
    }
}

impl Profile for Manifest {
    fn name(&self) -> &'static str {
        "manifest"
    }

    /// The manifest's spec, with `nodes` nodes named `node0`, `node1`... unless the manifest
    /// has that many already; its own name if `name` is empty.
    fn spec(&self, name: &str, nodes: usize) -> Result<NetworkSpec> {
        let mut spec = self.spec.clone();
        if !name.is_empty() {
            spec.name = name.to_string();
        }
        if nodes != spec.nodes.len() {
            spec.nodes = NetworkSpec::new("", nodes).nodes;
        }
        Ok(spec)
    }

    fn prepare(&self, _: &Network) -> Result<()> {
        Ok(())
    }

    fn settle(&self, _: &Network) -> Result<()> {
        Ok(())
    }

    fn config_file(&self, _: &Node, service: &str) -> Result<ConfigFile> {
        Err(Error::invalid(
            "service",
            format!("{service}: a manifest's services have no configuration files netdriver knows"),
        ))
    }
}
