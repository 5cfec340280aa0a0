//! Profiles: ready-made networks of one application stack. A profile says what every node runs
//! ([`Profile::spec`], each service with its configuration file), writes what the services
//! need before their first start (keys, genesis, configuration: [`Profile::prepare`]), and
//! waits after the first start until the network is usable ([`Profile::settle`]). What it
//! brings up is a plain [`Network`].
//!
//! ```no_run
//! use netdriver::profile::{Kvstore, Profile};
//!
//! let network = Kvstore::locate(None)?.launch("kv", 4)?;
//! network.node("node0")?.stop()?;
//! # Ok::<(), netdriver::Error>(())
//! ```

pub mod bigchaindb;
pub mod database;
mod kvstore;
pub mod tendermint;

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use bigchaindb::{BigchainDb, BigchainDbNode};
pub use kvstore::Kvstore;
pub use tendermint::Converged;

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::network::{Network, Progress};
use crate::spec::NetworkSpec;

/// A kind of network: what each node runs and how it is set up.
pub trait Profile: Debug + Send + Sync {
    /// The profile's name, e.g. `bigchaindb`.
    fn name(&self) -> &'static str;

    /// The spec of a network called `name` with `nodes` nodes; adjust it (conditions, run
    /// root) before [`Profile::up`].
    fn spec(&self, name: &str, nodes: usize) -> Result<NetworkSpec>;

    /// Writes what the services need before their first start.
    fn prepare(&self, network: &Network) -> Result<()>;

    /// Waits, after the first start of every service, until the network is usable (for a
    /// chain: its first block is committed).
    fn settle(&self, network: &Network) -> Result<()>;

    /// Waits until the nodes agree on the state (for a chain: every node has the block the
    /// most advanced one had when the wait began, the same one): what a test asks after
    /// faults. Profiles without such a notion say so.
    fn wait_converged(&self, network: &Network, timeout: Duration) -> Result<Converged> {
        let _ = (network, timeout);
        Err(Error::invalid(
            "wait_converged",
            format!("the {} profile has no notion of convergence (kvstore and bigchaindb do)", self.name()),
        ))
    }

    /// Brings up `spec` (from [`Profile::spec`], maybe adjusted) and prepares it; services are
    /// not started.
    fn up(&self, spec: &NetworkSpec) -> Result<Network> {
        self.up_with(spec, &mut |_| {}, &Cancel::new())
    }

    /// Like [`Profile::up`], reporting progress and cancellable as [`Network::up_with`] is.
    fn up_with(&self, spec: &NetworkSpec, progress: &mut dyn FnMut(Progress), cancel: &Cancel) -> Result<Network> {
        let network = Network::up_with(spec, progress, cancel)?;
        self.prepare(&network)?;
        Ok(network)
    }

    /// Starts every service of every node ([`Network::start`]) and waits until the network is
    /// usable ([`Profile::settle`]).
    fn start(&self, network: &Network) -> Result<()> {
        network.start()?;
        self.settle(network)
    }

    /// Brings up `nodes` nodes called `name`, prepares them and starts every service.
    fn launch(&self, name: &str, nodes: usize) -> Result<Network> {
        let network = self.up(&self.spec(name, nodes)?)?;
        self.start(&network)?;
        Ok(network)
    }
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

/// Where `scripts/install-stack` puts what it builds: `$NETDRIVER_STACK` or `/opt/netdriver`.
pub fn stack_dir() -> PathBuf {
    std::env::var_os("NETDRIVER_STACK").map_or_else(|| PathBuf::from("/opt/netdriver"), PathBuf::from)
}

/// Finds `program`: at `given` if set, else on PATH, else in the stack directory's `bin` and
/// `venv/bin`.
pub(crate) fn locate(service: &str, program: &str, given: Option<&Path>) -> Result<PathBuf> {
    let missing = |program: String, fix: String| Error::MissingBinary { service: service.into(), program, fix };
    if let Some(path) = given {
        return crate::files::find_program(&path.to_string_lossy())
            .ok_or_else(|| missing(path.display().to_string(), "the path given is not an executable file".into()));
    }
    let stack = stack_dir();
    crate::files::find_program(program)
        .or_else(|| ["bin", "venv/bin"].iter().map(|d| stack.join(d).join(program)).find(|p| crate::files::find_program(&p.to_string_lossy()).is_some()))
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
}
