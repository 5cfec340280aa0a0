//! Networks: bring-up, network-wide start and stop, and teardown of everything made.

mod bringup;
mod capacity;
mod conditions;
mod partition;
mod qos;
mod watch;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::cancel::Cancel;
use crate::error::Result;
use crate::events::{self, Actor, Event, EventKind, EventLog};
use crate::fabric::Fabric;
use crate::files;
use crate::node::{self, Node};
use crate::process;
use crate::registry::Record;
use crate::runtime::Io;
use crate::service::Service;
use crate::spec::{self, FaultServices, NemesisSpec, NetworkSpec};
use crate::subnet::{Subnet, Subnet6};

/// How often a slow start says how many services are ready.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// How far a bring-up has come: `done` of `total` nodes are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Nodes ready so far.
    pub done: usize,
    /// Nodes in the network.
    pub total: usize,
}

/// A live network. Dropping it (or [`Network::down`]) stops every process and removes every
/// namespace and link it made; its logs stay in [`Network::run_dir`].
#[derive(Debug)]
pub struct Network {
    record: Record,
    subnet: Subnet,
    subnet6: Option<Subnet6>,
    keep_data: bool,
    /// Service indexes grouped by dependency depth: each level starts after the one before.
    levels: Vec<Vec<usize>>,
    /// The spec's fault schedule and the services faults may pick ([`NetworkSpec::nemesis`],
    /// [`NetworkSpec::fault_services`]).
    nemesis: Option<NemesisSpec>,
    fault_services: FaultServices,
    nodes: Vec<Node>,
    fabric: Option<Fabric>,
    /// The (from, to) node index pairs whose traffic the lab drops.
    cuts: Mutex<Vec<partition::IndexCut>>,
    shaping: Mutex<qos::Shaping>,
    /// Raised to end the network's waits (readiness, a profile's settling) at once.
    cancel: Cancel,
    /// The run's timeline.
    events: Arc<EventLog>,
    /// Notices services that exit on their own; stopped first at teardown.
    watcher: Option<watch::Watcher>,
    /// Drives netlink and HTTP probes; the last field, so dropped after the fabric.
    io: Io,
}

impl Network {
    /// Brings up the nodes of `spec` (namespaces, links, addresses) and sets up its
    /// [conditions](NetworkSpec::conditions); services are not started. Everything that can
    /// be checked is checked before anything is made.
    pub fn up(spec: &NetworkSpec) -> Result<Network> {
        Network::up_with(spec, &mut |_| {}, &Cancel::new())
    }

    /// Like [`Network::up`], reporting progress after each node; raising `cancel` ends the
    /// bring-up (and later, the network's readiness waits) with [`Error::Cancelled`].
    ///
    /// [`Error::Cancelled`]: crate::error::Error::Cancelled
    pub fn up_with(spec: &NetworkSpec, progress: &mut dyn FnMut(Progress), cancel: &Cancel) -> Result<Network> {
        Network::bring_up(spec, progress, cancel)
    }

    /// The run's id: unique among live networks on this host, and part of every name made.
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// The network's name, from its spec.
    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// The subnet the nodes' addresses come from.
    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    /// The host's address on the network, through which the host reaches the nodes.
    pub fn host_ip(&self) -> Ipv4Addr {
        self.subnet.host()
    }

    /// The IPv6 prefix the nodes' IPv6 addresses come from, in a dual-stack network.
    pub fn subnet6(&self) -> Option<Subnet6> {
        self.subnet6
    }

    /// The host's IPv6 address on the network, in a dual-stack network.
    pub fn host_ip6(&self) -> Option<Ipv6Addr> {
        self.subnet6.map(|s| s.host())
    }

    /// Where the logs (kept after teardown) and data of the run are.
    pub fn run_dir(&self) -> &Path {
        &self.record.run_dir
    }

    /// The nodes, in index order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node with this name, or this index.
    pub fn node(&self, key: &str) -> Result<&Node> {
        Ok(&self.nodes[spec::find_node(key, self.node_names())?])
    }

    /// The node names, in index order.
    fn node_names(&self) -> impl Iterator<Item = &str> + Clone {
        self.nodes.iter().map(Node::name)
    }

    /// What ends the network's waits: raise it to make a [`Network::start`] (or a profile's
    /// settling) in progress give up.
    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    /// Starts every service on every node: dependency level by level, each level spawned on
    /// all nodes at once and then awaited, so that members of a cluster can find each other.
    pub fn start(&self) -> Result<()> {
        for level in &self.levels {
            let services = || self.nodes.iter().flat_map(|n| level.iter().map(|&s| &*n.services()[s]));
            let _ops: Vec<_> = services().map(Service::operation).collect();
            for node in &self.nodes {
                self.cancel.check(|| format!("starting services (at {})", node.name()))?;
                for &s in level {
                    node.services()[s].spawn()?;
                }
            }
            let (total, since) = (services().count(), Instant::now());
            let mut told = since;
            for (ready, service) in services().enumerate() {
                if told.elapsed() >= PROGRESS_EVERY {
                    tracing::info!("{ready} of {total} services ready after {:.0?}", since.elapsed());
                    told = Instant::now();
                }
                service.wait_ready()?;
            }
        }
        Ok(())
    }

    /// Stops every service on every node, level by level in reverse, each level at once.
    pub fn stop(&self) -> Result<()> {
        for level in self.levels.iter().rev() {
            let services = || self.nodes.iter().flat_map(|n| level.iter().map(|&s| &*n.services()[s]));
            let _ops: Vec<_> = services().map(Service::operation).collect();
            services().for_each(Service::terminate);
            let grace = services().map(Service::stop_timeout).max().unwrap_or_default();
            let deadline = Instant::now() + grace;
            services().for_each(|s| s.wait_exit(deadline));
            // One scan of /proc per round for the whole level, not one per service.
            process::kill_until_gone(|| {
                let table = process::Table::scan();
                services().flat_map(|s| s.processes(&table)).collect()
            });
            services().try_for_each(|s| s.reap(EventKind::Stopped))?;
        }
        Ok(())
    }

    /// Tears the network down, reporting the first error (Drop does the same silently).
    pub fn down(mut self) -> Result<()> {
        self.teardown()
    }

    /// The fault schedule of the network's spec (a manifest's `[nemesis]`), if it has one.
    pub fn nemesis_spec(&self) -> Option<&NemesisSpec> {
        self.nemesis.as_ref()
    }

    /// The services a fault schedule that names none may pick (a profile's choice).
    pub fn fault_services(&self) -> &FaultServices {
        &self.fault_services
    }

    /// The run's timeline so far (`<run_dir>/events.jsonl`, kept after teardown).
    pub fn events(&self) -> Result<Vec<Event>> {
        events::read(self.events.path())
    }

    /// The file of the run's timeline.
    pub fn events_file(&self) -> &Path {
        self.events.path()
    }

    /// Records the changes made by threads that name no [`Actor`] (see [`events::acting_as`])
    /// as `actor`'s: the face that drives the network (the library's default).
    pub fn set_actor(&self, actor: Actor) {
        self.events.set_default_actor(actor);
    }

    /// Records an event made by the calling thread's actor.
    pub(crate) fn note(&self, kind: EventKind, node: Option<&str>, details: serde_json::Value) {
        self.events.record(kind, node, None, details);
    }

    /// The record that names what this network made.
    pub(crate) fn record(&self) -> &Record {
        &self.record
    }

    fn teardown(&mut self) -> Result<()> {
        if self.fabric.is_none() && self.nodes.is_empty() {
            self.record.remove();
            return Ok(());
        }
        self.watcher = None;
        self.events.record(EventKind::Down, None, None, serde_json::Value::Null);
        let stopped = self.stop();
        node::kill_leftovers(&self.nodes);
        let destroyed = self.fabric.take().map_or(Ok(()), Fabric::destroy);
        let mut removed = Ok(());
        for node in self.nodes.drain(..) {
            let data = node.services().iter().map(|s| s.data_dir()).filter(|_| !self.keep_data);
            for dir in
                std::iter::once(node.dir().join("tmp").as_path()).chain(data).map(Path::to_path_buf).collect::<Vec<_>>()
            {
                removed = removed.and(files::remove_tree(&dir));
            }
        }
        self.record.remove();
        stopped.and(destroyed).and(removed)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::warn!("tearing down network {}: {e}", self.record.id);
        }
    }
}
