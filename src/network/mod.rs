//! Networks: bring-up, network-wide start and stop, and teardown of everything made.

mod conditions;
mod partition;
mod qos;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::clock::{ClockSkew, NodeClock};
use crate::config::ConfigFile;
use crate::error::{Context, Error, Result};
use crate::fabric::Fabric;
use crate::gc;
use crate::inside::{NetCtx, NodeCtx};
use crate::node::{self, Node};
use crate::ns::{self, NodeView};
use crate::process;
use crate::registry::{Record, Registry};
use crate::runtime::Io;
use crate::service::{make_data_dir, Launch, ReadyCheck, Service};
use crate::spec::{self, NetworkSpec, Probe};
use crate::subnet::Subnet;
use crate::template::{NodeVars, Vars};

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
    keep_data: bool,
    /// Service indexes grouped by dependency depth: each level starts after the one before.
    levels: Vec<Vec<usize>>,
    nodes: Vec<Node>,
    fabric: Option<Fabric>,
    /// The (from, to) node index pairs whose traffic the bridge drops.
    cut: Mutex<BTreeSet<(usize, usize)>>,
    shaping: Mutex<qos::Shaping>,
    /// Drives netlink and HTTP probes; the last field, so dropped after the fabric.
    io: Io,
}

impl Network {
    /// Brings up the nodes of `spec` (namespaces, links, addresses) and sets up its
    /// [conditions](NetworkSpec::conditions); services are not started.
    pub fn up(spec: &NetworkSpec) -> Result<Network> {
        Network::up_with_progress(spec, |_| {})
    }

    /// Like [`Network::up`], reporting progress after each node.
    pub fn up_with_progress(spec: &NetworkSpec, progress: impl FnMut(Progress)) -> Result<Network> {
        spec.validate()?;
        check_privileges()?;
        let run_root = run_root(&spec.run_root)?;
        let io = Io::new()?;
        let record = {
            let registry = Registry::lock()?;
            gc::reclaim(&registry);
            registry.claim(&spec.name, spec.subnet, spec.nodes.len(), &run_root)?
        };
        let subnet = record.subnet.parse()?;
        // From here on, Drop reclaims whatever was made if a step fails.
        let mut network = Network {
            record,
            subnet,
            keep_data: spec.keep_data,
            levels: levels(spec),
            nodes: Vec::new(),
            fabric: None,
            cut: Mutex::default(),
            shaping: Mutex::default(),
            io,
        };
        network.build(spec, progress)?;
        network.apply_conditions(&spec.conditions)?;
        Ok(network)
    }

    fn build(&mut self, spec: &NetworkSpec, mut progress: impl FnMut(Progress)) -> Result<()> {
        let run_dir = self.record.run_dir.clone();
        let vars: Vec<NodeVars> = spec
            .nodes
            .iter()
            .enumerate()
            .map(|(i, name)| NodeVars { name: name.clone(), ip: self.subnet.node(i) })
            .collect();
        let subnet_text = self.subnet.to_string();
        let base = Vars {
            index: 0,
            nodes: &vars,
            data: Path::new(""),
            dir: Path::new(""),
            network: &spec.name,
            subnet: &subnet_text,
            host: self.subnet.host(),
        };
        for s in &spec.services {
            let program = s.command.render(&base);
            if process::find_program(&program).is_none() {
                return Err(Error::missing_binary(&s.name, program));
            }
        }
        mkdir(&run_dir)?;
        let hosts = run_dir.join("hosts");
        std::fs::write(&hosts, hosts_file(self.subnet.host(), &vars))
            .context(|| format!("writing {}", hosts.display()))?;

        let mut plans = Vec::with_capacity(spec.nodes.len());
        for (index, name) in spec.nodes.iter().enumerate() {
            plans.push(self.plan_node(spec, index, name, &run_dir, base)?);
        }
        let fabric = self.fabric.insert(Fabric::create(self.io.handle(), &self.record.id, self.subnet, spec.ipv6)?);
        let net = Arc::new(NetCtx {
            rt: self.io.handle(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(|e| Error::io("building the HTTP client", std::io::Error::other(e)))?,
        });
        // Namespaces are made on one thread while this one links them up: the two kinds of
        // kernel work overlap on two cores.
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel(64);
            let (plans, hosts) = (&plans, &hosts);
            scope.spawn(move || {
                for plan in plans {
                    let view =
                        NodeView { hostname: &plan.name, hosts_file: hosts, tmp_dir: &plan.tmp, binds: &plan.binds };
                    let made = ns::create_node(&view);
                    let failed = made.is_err();
                    if tx.send(made).is_err() || failed {
                        break;
                    }
                }
            });
            for (plan, made) in plans.iter().zip(rx) {
                let (ns, socket) = made?;
                let index = self.nodes.len();
                let ip = self.subnet.node(index);
                self.record.netns.push(ns.net_inode);
                let ctx = Arc::new(NodeCtx {
                    name: plan.name.clone(),
                    run_id: self.record.id.clone(),
                    ns,
                    net: net.clone(),
                    clock: Mutex::new(NodeClock { skew: ClockSkew::default(), timens: None }),
                });
                fabric.attach(index, &ctx.ns, socket, ip, spec.ipv6)?;
                let services = spec
                    .services
                    .iter()
                    .zip(plan.launches.clone())
                    .map(|(s, l)| Service::new(s.name.clone(), ctx.clone(), l))
                    .collect();
                self.nodes.push(Node::new(ctx, index, ip, plan.dir.clone(), plan.url.clone(), services));
                progress(Progress { done: index + 1, total: plans.len() });
            }
            Ok::<_, Error>(())
        })?;
        self.record.save()
    }

    /// Makes a node's directories and renders its services' templates.
    fn plan_node(
        &self,
        spec: &NetworkSpec,
        index: usize,
        name: &str,
        run_dir: &Path,
        base: Vars<'_>,
    ) -> Result<NodePlan> {
        let dir = run_dir.join(name);
        let tmp = dir.join("tmp");
        mkdir(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))
            .context(|| format!("chmod {}", tmp.display()))?;
        let mut launches = Vec::new();
        let mut binds = Vec::new();
        for s in &spec.services {
            let sdir = dir.join(&s.name);
            let data = sdir.join("data");
            make_data_dir(&data)?;
            let v = Vars { index, data: &data, dir: &dir, ..base };
            for (target, source) in &s.binds {
                let source = PathBuf::from(source.render(&v));
                mkdir(&source)?;
                binds.push((target.clone(), source));
            }
            launches.push(Launch {
                program: s.command.render(&v),
                args: s.args.iter().map(|a| a.render(&v)).collect(),
                env: s.env.iter().map(|(k, t)| (k.clone(), t.render(&v))).collect(),
                workdir: s.workdir.as_ref().map_or_else(|| data.clone(), |w| PathBuf::from(w.render(&v))),
                probe: s.ready.as_ref().map(|p| match p {
                    Probe::Tcp(port) => ReadyCheck::Tcp(SocketAddr::new(self.subnet.node(index).into(), *port)),
                    Probe::Http(url) => ReadyCheck::Http(url.render(&v)),
                }),
                ready_timeout: s.ready_timeout,
                stop_timeout: s.stop_timeout,
                reset: s.reset.iter().map(|a| a.render(&v)).collect(),
                restart_with: s.restart_with.clone(),
                config: s.config.as_ref().map(|(path, format)| ConfigFile::new(path.render(&v), *format)),
                dir: sdir,
                data,
            });
        }
        let url = spec.url.as_ref().map(|u| u.render(&Vars { index, dir: &dir, ..base }));
        Ok(NodePlan { name: name.to_string(), dir, tmp, binds, launches, url })
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

    /// Starts every service on every node: dependency level by level, each level spawned on
    /// all nodes at once and then awaited, so that members of a cluster can find each other.
    pub fn start(&self) -> Result<()> {
        for level in &self.levels {
            let since = Instant::now();
            for node in &self.nodes {
                for &s in level {
                    node.services()[s].spawn()?;
                }
            }
            for node in &self.nodes {
                for &s in level {
                    node.services()[s].wait_ready(since)?;
                }
            }
        }
        Ok(())
    }

    /// Stops every service on every node, level by level in reverse, each level at once.
    pub fn stop(&self) -> Result<()> {
        for level in self.levels.iter().rev() {
            let services = || self.nodes.iter().flat_map(|n| level.iter().map(|&s| &n.services()[s]));
            services().for_each(Service::terminate);
            let grace = services().map(super::service::Service::stop_timeout).max().unwrap_or_default();
            let deadline = Instant::now() + grace;
            services().for_each(|s| s.wait_exit(deadline));
            // One scan of /proc per round for the whole level, not one per service.
            process::kill_until_gone(|| {
                let table = process::Table::scan();
                services().flat_map(|s| s.processes(&table)).collect()
            });
            services().try_for_each(Service::reap)?;
        }
        Ok(())
    }

    /// Tears the network down, reporting the first error (Drop does the same silently).
    pub fn down(mut self) -> Result<()> {
        self.teardown()
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
        let stopped = self.stop();
        node::kill_leftovers(&self.nodes);
        let destroyed = self.fabric.take().map_or(Ok(()), Fabric::destroy);
        for node in self.nodes.drain(..) {
            let _ = std::fs::remove_dir_all(node.dir().join("tmp"));
            if !self.keep_data {
                node.services().iter().for_each(|s| drop(std::fs::remove_dir_all(s.data_dir())));
            }
        }
        self.record.remove();
        stopped.and(destroyed)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::warn!("tearing down network {}: {e}", self.record.id);
        }
    }
}

/// A node's directories and rendered services, ready for its namespaces.
struct NodePlan {
    name: String,
    dir: PathBuf,
    tmp: PathBuf,
    binds: Vec<(PathBuf, PathBuf)>,
    launches: Vec<Launch>,
    url: Option<String>,
}

fn levels(spec: &NetworkSpec) -> Vec<Vec<usize>> {
    let mut depth = vec![0usize; spec.services.len()];
    for (i, s) in spec.services.iter().enumerate() {
        // validate() guarantees that dependencies come earlier.
        depth[i] = s
            .after
            .iter()
            .filter_map(|d| spec.services.iter().position(|o| &o.name == d))
            .map(|p| depth[p] + 1)
            .max()
            .unwrap_or(0);
    }
    let mut levels = vec![Vec::new(); depth.iter().max().map_or(0, |d| d + 1)];
    for (i, d) in depth.into_iter().enumerate() {
        levels[d].push(i);
    }
    levels
}

fn hosts_file(host: Ipv4Addr, nodes: &[NodeVars]) -> String {
    let mut text = format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{host}\thost\n");
    for n in nodes {
        let _ = writeln!(text, "{}\t{}", n.ip, n.name);
    }
    text
}

/// The run root made absolute (symlinks resolved), refused under /tmp.
fn run_root(root: &Path) -> Result<PathBuf> {
    mkdir(root)?;
    let root = root.canonicalize().context(|| format!("resolving {}", root.display()))?;
    if root.starts_with("/tmp") {
        return Err(Error::invalid(
            "run_root",
            format!(
                "{} is under /tmp, which each node replaces with its own; use e.g. /var/tmp/netdriver",
                root.display()
            ),
        ));
    }
    Ok(root)
}

fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).context(|| format!("creating {}", path.display()))
}

fn check_privileges() -> Result<()> {
    use caps::{CapSet, Capability};
    let needed = [Capability::CAP_NET_ADMIN, Capability::CAP_SYS_ADMIN];
    let missing: Vec<String> = needed
        .iter()
        .filter(|c| !caps::has_cap(None, CapSet::Effective, **c).unwrap_or(false))
        .map(std::string::ToString::to_string)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Privilege { missing: missing.join(", ") })
    }
}
