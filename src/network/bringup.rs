//! Bring-up: every check first (the spec, privileges, the run root, programs, bind targets),
//! then the run's record, directories, namespaces and links, node by node.
//!
//! The run directory is `<run_root>/<name>-<id>` (0755): the network's hosts file
//! (`hosts.txt`, 0644; names with a dot are the network's, names without are its nodes'), and
//! a directory per node (0700: only root reaches a node's files from the host) holding its
//! private `/tmp` (1777) and a directory per service (0700) with its logs (0644) and its data
//! directory (0700).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::watch::Watcher;
use super::{capacity, Network, Progress};
use crate::cancel::Cancel;
use crate::clock::ClockSkew;
use crate::config::ConfigFile;
use crate::error::{Error, Result};
use crate::events::{EventKind, EventLog};
use crate::fabric::Fabric;
use crate::files;
use crate::gc;
use crate::inside::{NetCtx, NodeClock, NodeCtx};
use crate::node::Node;
use crate::ns::{self, NodeView};
use crate::process;
use crate::registry::Registry;
use crate::runtime::{self, Io};
use crate::service::{Launch, ReadyCheck, Service};

use crate::spec::{NetworkSpec, Probe};
use crate::subnet::{Subnet, Subnet6};
use crate::template::{NodeVars, Vars};
use crate::wallclock::{self, Page, Supervisor};

/// The network-wide files of a run directory: a dot in their names keeps them apart from the
/// nodes' directories (a node name has none).
const HOSTS_FILE: &str = "hosts.txt";
/// The directory of the nodes' clock pages (one file each, named as the node).
const CLOCKS_DIR: &str = "clocks.d";
/// How many nodes are attached at once, their netlink requests in flight together.
const ATTACH_BATCH: usize = 64;

impl Network {
    /// Brings up `spec`: checks everything that can be checked first, then makes the nodes and
    /// sets up the conditions. `progress` hears after each node; `cancel` ends it early.
    pub(super) fn bring_up(spec: &NetworkSpec, progress: &mut dyn FnMut(Progress), cancel: &Cancel) -> Result<Network> {
        spec.validate()?;
        check_privileges()?;
        let run_root = run_root(&spec.run_root)?;
        preflight(spec, &run_root)?;
        if spec.ipv6 {
            check_host_ipv6()?;
        }
        capacity::check(spec.nodes.len(), spec.services.len())?;
        if spec.wall_clock {
            wallclock::preflight()?;
        }
        let io = Io::new()?;
        let record = {
            let registry = Registry::lock()?;
            gc::reclaim(&registry);
            registry.claim(spec, &run_root)?
        };
        let subnet = record.subnet.parse()?;
        let subnet6 = record.subnet6.as_deref().map(str::parse).transpose()?;
        let events = files::make_dir(&record.run_dir, 0o755).and_then(|()| EventLog::create(&record.run_dir));
        let events = match events {
            Ok(events) => Arc::new(events),
            Err(e) => {
                record.remove();
                return Err(e);
            }
        };
        // From here on, Drop reclaims whatever was made if a step fails.
        let mut network = Network {
            record,
            subnet,
            subnet6,
            keep_data: spec.keep_data,
            levels: spec.levels()?,
            nemesis: spec.nemesis.clone(),
            fault_services: spec.fault_services.clone(),
            nodes: Vec::new(),
            fabric: None,
            cuts: Mutex::default(),
            shaping: Mutex::default(),
            cancel: cancel.clone(),
            events,
            watcher: None,
            io,
        };
        network.build(spec, progress)?;
        let mut details = json!({"nodes": spec.nodes.len(), "subnet": network.subnet.to_string()});
        if let Some(s6) = network.subnet6 {
            details["subnet6"] = s6.to_string().into();
        }
        network.events.record(EventKind::Up, None, None, details);
        network.apply_conditions(&spec.conditions)?;
        network.watcher = Some(Watcher::start(&network.nodes));
        Ok(network)
    }

    fn build(&mut self, spec: &NetworkSpec, progress: &mut dyn FnMut(Progress)) -> Result<()> {
        let run_dir = self.record.run_dir.clone();
        let vars = node_vars(spec, self.subnet, self.subnet6);
        let subnet_text = self.subnet.to_string();
        let base = Vars {
            index: 0,
            nodes: &vars,
            data: Path::new(""),
            dir: Path::new(""),
            network: &spec.name,
            subnet: &subnet_text,
            host: self.subnet.host(),
            subnet6: self.subnet6,
        };
        let hosts = run_dir.join(HOSTS_FILE);
        let host6 = self.subnet6.map(|s| s.host());
        files::write_file(&hosts, hosts_file(self.subnet.host(), host6, &vars).as_bytes(), 0o644)?;

        // The clock pages sit apart from the nodes' private directories: every process of a
        // node maps its page, whatever user it runs as.
        let clocks = run_dir.join(CLOCKS_DIR);
        if spec.wall_clock {
            files::make_dir(&clocks, 0o755)?;
        }
        let mut plans = Vec::with_capacity(spec.nodes.len());
        let mut pages = Vec::with_capacity(spec.nodes.len());
        for (index, name) in spec.nodes.iter().enumerate() {
            self.cancel.check(|| "making the nodes' directories".into())?;
            plans.push(Self::plan_node(spec, index, name, &run_dir, base)?);
            pages.push(spec.wall_clock.then(|| Page::create(&clocks.join(name))).transpose()?);
        }
        let supervisor = if spec.wall_clock {
            let marks = [(process::RUN_MARKER, self.record.id.as_str())];
            let supervisor = Supervisor::start(&marks, &run_dir.join("clock-supervisor.log"))?;
            let pid = supervisor.pid() as i32;
            self.record.supervisor = Some((pid, process::start_time(pid).unwrap_or(0)));
            self.record.save()?;
            Some(supervisor)
        } else {
            None
        };
        let fabric = self.fabric.insert(Fabric::create(
            self.io.handle(),
            &self.record.id,
            self.subnet,
            self.subnet6,
            spec.nodes.len(),
        )?);
        let net = Arc::new(NetCtx {
            rt: self.io.handle(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(|e| Error::io("building the HTTP client", std::io::Error::other(e)))?,
            cancel: self.cancel.clone(),
            supervisor,
            events: self.events.clone(),
        });
        // Namespaces are made on one thread while this one links them up, a batch of nodes
        // at a time with their netlink requests in flight together: the two kinds of kernel
        // work overlap on two cores, and no request waits for another node's.
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel(2 * ATTACH_BATCH);
            let (plans, hosts) = (&plans, &hosts);
            scope.spawn(move || {
                let mut maker = match ns::Keep::create().and_then(ns::NodeMaker::new) {
                    Ok(maker) => maker,
                    Err(e) => return drop(tx.send(Err(e))),
                };
                for (index, plan) in plans.iter().enumerate() {
                    let view =
                        NodeView { hostname: &plan.name, hosts_file: hosts, tmp_dir: &plan.tmp, binds: &plan.binds };
                    let made = maker.make(index, &view);
                    let failed = made.is_err();
                    if tx.send(made).is_err() || failed {
                        break;
                    }
                }
            });
            let mut made = rx.into_iter();
            while self.nodes.len() < plans.len() {
                self.cancel.check(|| format!("bringing up the nodes ({} of {} up)", self.nodes.len(), plans.len()))?;
                let first = self.nodes.len();
                let mut namespaces = Vec::with_capacity(ATTACH_BATCH);
                let mut sockets = Vec::with_capacity(ATTACH_BATCH);
                for made in made.by_ref().take(ATTACH_BATCH.min(plans.len() - first)) {
                    let (ns, socket) = made?;
                    self.record.netns.push(ns.net);
                    namespaces.push(ns);
                    sockets.push(socket);
                }
                let attach = namespaces
                    .iter()
                    .zip(sockets)
                    .enumerate()
                    .map(|(i, (ns, socket))| fabric.attach(first + i, ns, socket));
                runtime::block_on(&net.rt, futures::future::try_join_all(attach))?;
                for (ns, plan) in namespaces.into_iter().zip(&plans[first..]) {
                    let index = self.nodes.len();
                    let ctx = Arc::new(NodeCtx {
                        name: plan.name.clone(),
                        run_id: self.record.id.clone(),
                        ns,
                        net: net.clone(),
                        clock: Mutex::new(NodeClock {
                            skew: ClockSkew::default(),
                            timens: None,
                            page: pages[index].take(),
                        }),
                    });
                    let services = spec
                        .services
                        .iter()
                        .zip(plan.launches.clone())
                        .map(|(s, l)| Arc::new(Service::new(s.name.clone(), ctx.clone(), l)))
                        .collect();
                    let NodeVars { ip, ip6, .. } = vars[index];
                    self.nodes.push(Node::new(ctx, index, ip, ip6, plan.dir.clone(), plan.url.clone(), services));
                    progress(Progress { done: index + 1, total: plans.len() });
                }
            }
            Ok::<_, Error>(())
        })?;
        self.record.save()
    }

    /// Makes a node's directories and renders its services' templates.
    fn plan_node(spec: &NetworkSpec, index: usize, name: &str, run_dir: &Path, base: Vars<'_>) -> Result<NodePlan> {
        let dir = run_dir.join(name);
        let tmp = dir.join("tmp");
        files::make_dir(&dir, 0o700)?;
        files::make_dir(&tmp, 0o1777)?;
        let mut launches = Vec::new();
        let mut binds = Vec::new();
        for s in &spec.services {
            let sdir = dir.join(&s.name);
            let data = sdir.join("data");
            files::make_dir(&sdir, 0o700)?;
            files::make_dir(&data, 0o700)?;
            let v = Vars { index, data: &data, dir: &dir, ..base };
            for (target, source) in &s.binds {
                let source = PathBuf::from(source.render(&v));
                // Inside the run directory, the source is netdriver's to make; elsewhere it
                // exists already (preflight checked).
                if source.starts_with(run_dir) {
                    files::make_dirs(run_dir, &source, 0o700)?;
                }
                binds.push((target.clone(), source));
            }
            launches.push(Launch {
                program: s.command.render(&v),
                args: s.args.iter().map(|a| a.render(&v)).collect(),
                env: s.env.iter().map(|(k, t)| (k.clone(), t.render(&v))).collect(),
                workdir: s.workdir.as_ref().map_or_else(|| data.clone(), |w| PathBuf::from(w.render(&v))),
                probe: s.ready.as_ref().map(|p| match p {
                    Probe::Tcp(port) => {
                        let NodeVars { ip, ip6, .. } = base.nodes[index];
                        let ips = std::iter::once(IpAddr::from(ip)).chain(ip6.map(IpAddr::from));
                        ReadyCheck::Tcp(ips.map(|ip| SocketAddr::new(ip, *port)).collect())
                    }
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

/// What needs the host, checked before anything is made: every service's program is there,
/// and every bind has a target on the host and a source that netdriver makes (in the run
/// directory) or that exists. Templates are rendered as for node 0 of a stand-in run.
fn preflight(spec: &NetworkSpec, run_root: &Path) -> Result<()> {
    let subnet = spec.subnet.unwrap_or(Subnet::SAMPLE);
    let subnet6 = spec.ipv6.then(|| spec.subnet6.unwrap_or(Subnet6::SAMPLE));
    let nodes = node_vars(spec, subnet, subnet6);
    let run_dir = run_root.join(format!("{}-000000", spec.name));
    let subnet_text = subnet.to_string();
    for s in &spec.services {
        let dir = run_dir.join(&nodes[0].name);
        let data = dir.join(&s.name).join("data");
        let v = Vars {
            index: 0,
            nodes: &nodes,
            data: &data,
            dir: &dir,
            network: &spec.name,
            subnet: &subnet_text,
            host: subnet.host(),
            subnet6,
        };
        let program = s.command.render(&v);
        files::program_for_nodes(&s.name, &program)?;
        for (target, source) in &s.binds {
            let at = || format!("service {}: binds.\"{}\"", s.name, target.display());
            let source = PathBuf::from(source.render(&v));
            if !source.is_absolute() {
                return Err(Error::invalid(
                    at(),
                    format!(
                        "the source {} is relative; give an absolute path, or one in {{data}} or {{dir}}",
                        source.display()
                    ),
                ));
            }
            if !source.starts_with(&run_dir) && std::fs::metadata(&source).is_err() {
                return Err(Error::invalid(
                    at(),
                    format!(
                        "the source {} does not exist; netdriver makes sources only in the run directory ({{data}}, {{dir}})",
                        source.display()
                    ),
                ));
            }
            if std::fs::metadata(target).is_err() {
                return Err(Error::invalid(
                    at(),
                    format!(
                        "{} does not exist on the host; a node can only bind over an existing path",
                        target.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Each node's name and addresses, in index order.
fn node_vars(spec: &NetworkSpec, subnet: Subnet, subnet6: Option<Subnet6>) -> Vec<NodeVars> {
    let vars = |(i, name): (usize, &String)| NodeVars {
        name: name.clone(),
        ip: subnet.node(i),
        ip6: subnet6.map(|s| s.node(i)),
    };
    spec.nodes.iter().enumerate().map(vars).collect()
}

/// The nodes' `/etc/hosts`: every name with its IPv4 address, and its IPv6 one in a
/// dual-stack network (glibc's resolver then gives the IPv6 address first, as on any
/// dual-stack host).
fn hosts_file(host: Ipv4Addr, host6: Option<Ipv6Addr>, nodes: &[NodeVars]) -> String {
    let mut text = format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{host}\thost\n");
    let mut line = |ip: IpAddr, name: &str| {
        let _ = writeln!(text, "{ip}\t{name}");
    };
    if let Some(host6) = host6 {
        line(host6.into(), "host");
    }
    for n in nodes {
        line(n.ip.into(), &n.name);
        if let Some(ip6) = n.ip6 {
            line(ip6.into(), &n.name);
        }
    }
    text
}

/// The run root, refused under /tmp, checked (and made if missing).
fn run_root(root: &Path) -> Result<PathBuf> {
    if root.starts_with("/tmp") {
        return Err(Error::invalid(
            "run_root",
            format!(
                "{} is under /tmp, which each node replaces with its own; use e.g. /var/tmp/netdriver",
                root.display()
            ),
        ));
    }
    files::trusted_root(root, 0o755, "run_root")
}

/// A dual-stack network needs IPv6 in the host's namespace, where the uplink is made.
fn check_host_ipv6() -> Result<()> {
    let off = |conf: &str| {
        let path = format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6");
        std::fs::read_to_string(path).map_or(true, |v| v.trim() != "0")
    };
    if off("all") || off("default") {
        return Err(Error::KernelFeature {
            feature: "IPv6 in the host's network namespace (ipv6 = true)".into(),
            fix: "turn it on with `sysctl net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0` \
                  (a kernel without IPv6 needs one built with it), or set ipv6 = false"
                .into(),
        });
    }
    Ok(())
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
