//! What a network should be: nodes, addressing and the services every node runs.
//!
//! A [`NetworkSpec`] is plain data, built in code or read from a manifest
//! ([`crate::manifest`]). It is validated once, by [`NetworkSpec::validate`], before anything
//! is created.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use crate::clock::ClockSkew;
use crate::error::{Error, Result};
use crate::network::Direction;
use crate::shaping::Qos;
use crate::template::Template;

/// At most this many nodes: a Linux bridge holds 1024 ports, one is the host's uplink.
pub const MAX_NODES: usize = 1023;

/// An IPv4 subnet in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    /// The network address (host bits zero).
    pub addr: Ipv4Addr,
    /// The prefix length, 8 to 30.
    pub prefix: u8,
}

impl Subnet {
    /// The subnet of `addr/prefix`, host bits cleared.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet> {
        if !(8..=30).contains(&prefix) {
            return Err(Error::invalid("subnet", format!("prefix /{prefix} must be from /8 to /30")));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Subnet { addr: Ipv4Addr::from(u32::from(addr) & mask), prefix })
    }

    /// How many addresses the subnet spans.
    pub fn size(&self) -> u32 {
        1 << (32 - self.prefix)
    }

    /// The `n`-th address of the subnet (0 is the network address).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + n)
    }

    /// The host's address: the first usable one.
    pub fn host(&self) -> Ipv4Addr {
        self.nth(1)
    }

    /// The address of node `index`: the ones after the host's.
    pub fn node(&self, index: usize) -> Ipv4Addr {
        self.nth(2 + index as u32)
    }

    /// How many nodes fit (the network, host and broadcast addresses are taken).
    pub fn capacity(&self) -> usize {
        self.size() as usize - 3
    }

    /// Whether the two subnets share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let p = self.prefix.min(other.prefix);
        let mask = u32::MAX << (32 - p);
        u32::from(self.addr) & mask == u32::from(other.addr) & mask
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Subnet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Subnet> {
        let bad = || Error::invalid("subnet", format!("'{s}' is not an IPv4 subnet like 10.200.0.0/24"));
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        Subnet::new(addr.parse().map_err(|_| bad())?, prefix.parse().map_err(|_| bad())?)
    }
}

/// How to tell that a service is ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connection to the node's address on this port succeeds.
    Tcp(u16),
    /// An HTTP GET of this URL (a template) answers with a 2xx status.
    Http(Template),
}

/// One program every node runs, with how to start, probe and stop it.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Unique name within the node, e.g. `etcd`.
    pub name: String,
    /// The program: a name looked up on PATH, or a path.
    pub command: Template,
    /// Its arguments.
    pub args: Vec<Template>,
    /// Extra environment variables.
    pub env: Vec<(String, Template)>,
    /// Working directory; the service's data directory if unset.
    pub workdir: Option<Template>,
    /// Readiness probe; none means ready once spawned.
    pub ready: Option<Probe>,
    /// How long start waits for the probe.
    pub ready_timeout: Duration,
    /// Services of the same node that must be ready before this one starts.
    pub after: Vec<String>,
    /// How long stop waits after SIGTERM before it kills the process tree.
    pub stop_timeout: Duration,
    /// Directories bound into the node's mount namespace: (path inside the node, source).
    pub binds: Vec<(PathBuf, Template)>,
    /// The command (program and arguments) that resets the service's state, run inside the
    /// node while the service is stopped; empty to wipe the data directory instead.
    pub reset: Vec<Template>,
    /// Services of the same node whose start means this one must restart: when one of them
    /// starts, this one is restarted after it if it runs or exited on its own (a client that
    /// does not reconnect, like Tendermint to its ABCI application). A service stopped on
    /// purpose stays stopped.
    pub restart_with: Vec<String>,
}

impl ServiceSpec {
    /// A service running `command` (a template), with defaults for the rest.
    pub fn new(name: impl Into<String>, command: &str) -> Result<ServiceSpec> {
        Ok(ServiceSpec {
            name: name.into(),
            command: Template::parse(command)?,
            args: Vec::new(),
            env: Vec::new(),
            workdir: None,
            ready: None,
            ready_timeout: Duration::from_secs(30),
            after: Vec::new(),
            stop_timeout: Duration::from_secs(10),
            binds: Vec::new(),
            reset: Vec::new(),
            restart_with: Vec::new(),
        })
    }

    /// Appends arguments (templates).
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, args: I) -> Result<Self> {
        for a in args {
            self.args.push(Template::parse(a.as_ref())?);
        }
        Ok(self)
    }

    /// Sets an environment variable (value is a template).
    pub fn env(mut self, key: impl Into<String>, value: &str) -> Result<Self> {
        self.env.push((key.into(), Template::parse(value)?));
        Ok(self)
    }

    /// Sets the readiness probe and how long to wait for it.
    pub fn ready(mut self, probe: Probe, timeout: Duration) -> Self {
        self.ready = Some(probe);
        self.ready_timeout = timeout;
        self
    }

    /// Makes this service start after `other` is ready (and stop before it).
    pub fn after(mut self, other: impl Into<String>) -> Self {
        self.after.push(other.into());
        self
    }

    /// Sets the command that resets the service's state instead of wiping its data directory.
    pub fn reset_with<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, argv: I) -> Result<Self> {
        self.reset = argv.into_iter().map(|a| Template::parse(a.as_ref())).collect::<Result<_>>()?;
        Ok(self)
    }

    /// Makes this service restart whenever `other` starts while this one runs.
    pub fn restart_with(mut self, other: impl Into<String>) -> Self {
        self.restart_with.push(other.into());
        self
    }
}

/// A whole network: how many nodes, their addressing, and what runs on each.
#[derive(Debug, Clone)]
pub struct NetworkSpec {
    /// A label used in names and logs; letters, digits, `-` and `_`.
    pub name: String,
    /// Node names, in index order.
    pub nodes: Vec<String>,
    /// The subnet, or `None` to pick a free one.
    pub subnet: Option<Subnet>,
    /// Whether the nodes' links get IPv6 (link-local addresses). Off by default: duplicate
    /// address detection and multicast reports flood the bridge at scale. Loopback keeps `::1`.
    pub ipv6: bool,
    /// Where run directories (logs, data) go; `/var/tmp/netdriver` by default.
    pub run_root: PathBuf,
    /// Keep service data directories after teardown (logs are always kept).
    pub keep_data: bool,
    /// The node's main URL, e.g. `http://{ip}:9984/`.
    pub url: Option<Template>,
    /// The services every node runs, in the order given.
    pub services: Vec<ServiceSpec>,
    /// Shaping, clocks and partition, set up right after bring-up, before services start.
    pub conditions: Conditions,
}

impl NetworkSpec {
    /// `count` nodes named `node0`, `node1`, ... and no services.
    pub fn new(name: impl Into<String>, count: usize) -> NetworkSpec {
        NetworkSpec {
            name: name.into(),
            nodes: (0..count).map(|i| format!("node{i}")).collect(),
            subnet: None,
            ipv6: false,
            run_root: PathBuf::from("/var/tmp/netdriver"),
            keep_data: false,
            url: None,
            services: Vec::new(),
            conditions: Conditions::default(),
        }
    }

    /// Adds a service to every node.
    pub fn service(mut self, service: ServiceSpec) -> Self {
        self.services.push(service);
        self
    }

    /// Checks names, counts, the subnet's size, service dependencies, and the conditions:
    /// their values and the nodes they name.
    pub fn validate(&self) -> Result<()> {
        if self.name.is_empty()
            || self.name.len() > 32
            || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::invalid(
                "network name",
                format!("'{}': use 1 to 32 letters, digits, '-' or '_'", self.name),
            ));
        }
        if self.nodes.is_empty() || self.nodes.len() > MAX_NODES {
            return Err(Error::invalid(
                "nodes",
                format!("{} nodes: a network has 1 to {MAX_NODES} (a Linux bridge holds 1024 ports)", self.nodes.len()),
            ));
        }
        unique("node", self.nodes.iter())?;
        for n in &self.nodes {
            if !valid_hostname(n) {
                return Err(Error::invalid(
                    "node name",
                    format!("'{n}': use letters, digits and '-', at most 63, not only digits"),
                ));
            }
        }
        if let Some(s) = &self.subnet {
            if s.capacity() < self.nodes.len() {
                return Err(Error::Subnet(format!(
                    "{s} holds {} nodes, the network has {}; use a shorter prefix",
                    s.capacity(),
                    self.nodes.len()
                )));
            }
        }
        unique("service", self.services.iter().map(|s| &s.name))?;
        for (i, s) in self.services.iter().enumerate() {
            if s.name.is_empty() || s.name.contains(['/', ' ']) {
                return Err(Error::invalid("service name", format!("'{}': no spaces or '/'", s.name)));
            }
            for dep in &s.after {
                let pos = self.services.iter().position(|o| &o.name == dep);
                match pos {
                    None => {
                        return Err(Error::invalid(
                            format!("service {}", s.name),
                            format!("'after' names unknown service '{dep}'"),
                        ))
                    }
                    Some(p) if p >= i => {
                        return Err(Error::invalid(
                            format!("service {}", s.name),
                            format!("'after' names '{dep}', which must be defined before it"),
                        ))
                    }
                    Some(_) => {}
                }
            }
            for other in &s.restart_with {
                if !self.services[..i].iter().any(|o| &o.name == other) {
                    return Err(Error::invalid(
                        format!("service {}", s.name),
                        format!("'restart_with' names '{other}', which must be a service defined before it"),
                    ));
                }
            }
        }
        self.conditions.validate(self)
    }

    /// The index of the node `key` names: a node name, or an index below the node count.
    pub(crate) fn node_index(&self, key: &str) -> Result<usize> {
        find_node(key, self.nodes.iter().map(String::as_str))
    }

    /// The indexes of two different nodes.
    fn node_pair(&self, a: &str, b: &str) -> Result<(usize, usize)> {
        let pair = (self.node_index(a)?, self.node_index(b)?);
        if pair.0 == pair.1 {
            return Err(Error::invalid("qos", format!("{a} and {b} are the same node")));
        }
        Ok(pair)
    }

    /// Checks that partition `groups` name known nodes, each in one group at most.
    pub(crate) fn check_partition(&self, groups: &[Vec<String>]) -> Result<()> {
        let mut seen = HashSet::new();
        for key in groups.iter().flatten() {
            if !seen.insert(self.node_index(key)?) {
                return Err(Error::invalid("partition", format!("node {key} is in two groups")));
            }
        }
        Ok(())
    }
}

/// Network conditions a spec sets up before services start.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// Link shaping rules, applied in order.
    pub qos: Vec<QosRule>,
    /// Per-node clocks: (node name or index, skew). Applied in order: a later one for the
    /// same node replaces an earlier one.
    pub clocks: Vec<(String, ClockSkew)>,
    /// Groups that cannot reach each other (nodes in no group form one more group).
    pub partition: Option<Vec<Vec<String>>>,
}

impl Conditions {
    /// Checks what can be checked before the network exists: values, time zones, node names.
    fn validate(&self, spec: &NetworkSpec) -> Result<()> {
        for (node, skew) in &self.clocks {
            spec.node_index(node)?;
            skew.validate()?;
        }
        for rule in &self.qos {
            rule.validate(spec)?;
        }
        match &self.partition {
            Some(groups) => spec.check_partition(groups),
            None => Ok(()),
        }
    }
}

/// One link-shaping rule.
#[derive(Debug, Clone)]
pub enum QosRule {
    /// What a node sends, receives, or both.
    Node {
        /// The node's name or index.
        node: String,
        /// Which of its traffic is shaped.
        direction: Direction,
        /// The shaping.
        qos: Qos,
    },
    /// What `from` sends to `to` (both ways with `both`).
    Pair {
        /// The sending node's name or index.
        from: String,
        /// The receiving node's name or index.
        to: String,
        /// Whether what `to` sends to `from` is shaped the same way.
        both: bool,
        /// The shaping.
        qos: Qos,
    },
}

impl QosRule {
    /// Checks the nodes the rule names and its shaping values.
    pub(crate) fn validate(&self, spec: &NetworkSpec) -> Result<()> {
        match self {
            QosRule::Node { node, qos, .. } => {
                spec.node_index(node)?;
                qos.validate()
            }
            QosRule::Pair { from, to, qos, .. } => {
                spec.node_pair(from, to)?;
                qos.validate()
            }
        }
    }
}

/// The index of node `key` (an index, or a name) among `names`.
pub(crate) fn find_node<'a>(key: &str, names: impl Iterator<Item = &'a str> + Clone) -> Result<usize> {
    let count = names.clone().count();
    let by_index = key.parse::<usize>().ok().filter(|&i| i < count);
    by_index.or_else(|| names.clone().position(|n| n == key)).ok_or_else(|| {
        let all: Vec<&str> = names.collect();
        let known = match all.as_slice() {
            [first, .., last] if count > 8 => format!("{first} ... {last}"),
            _ => all.join(", "),
        };
        Error::UnknownNode { node: key.to_string(), known: format!("{known}, or an index below {count}") }
    })
}

fn unique<'a>(kind: &'static str, names: impl Iterator<Item = &'a String>) -> Result<()> {
    let mut seen = HashSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(Error::DuplicateName { kind, name: n.clone() });
        }
    }
    Ok(())
}

/// A hostname label that is not all digits (a number selects a node by index).
fn valid_hostname(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 63
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !n.starts_with('-')
        && !n.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_math() {
        let s: Subnet = "10.200.1.7/24".parse().unwrap();
        assert_eq!(s.to_string(), "10.200.1.0/24");
        assert_eq!(s.host(), Ipv4Addr::new(10, 200, 1, 1));
        assert_eq!(s.node(0), Ipv4Addr::new(10, 200, 1, 2));
        assert_eq!(s.capacity(), 253);
        assert!(s.overlaps(&"10.200.0.0/16".parse().unwrap()));
        assert!(!s.overlaps(&"10.200.2.0/24".parse().unwrap()));
        assert!("10.0.0.0".parse::<Subnet>().is_err());
        assert!("10.0.0.0/31".parse::<Subnet>().is_err());
    }

    #[test]
    fn validation() {
        assert!(NetworkSpec::new("ok", 3).validate().is_ok());
        assert!(NetworkSpec::new("bad name", 3).validate().is_err());
        assert!(NetworkSpec::new("n", 0).validate().is_err());
        assert!(NetworkSpec::new("n", 1024).validate().is_err());
        let mut dup = NetworkSpec::new("n", 2);
        dup.nodes[1] = "node0".into();
        assert!(matches!(dup.validate(), Err(Error::DuplicateName { kind: "node", .. })));
        let svc = ServiceSpec::new("a", "true").unwrap();
        let two = NetworkSpec::new("n", 1).service(svc.clone()).service(svc.clone());
        assert!(matches!(two.validate(), Err(Error::DuplicateName { kind: "service", .. })));
        let dep = NetworkSpec::new("n", 1).service(svc.after("zzz"));
        assert!(dep.validate().unwrap_err().to_string().contains("zzz"));
        let mut small = NetworkSpec::new("n", 10);
        small.subnet = Some("10.1.0.0/29".parse().unwrap());
        assert!(matches!(small.validate(), Err(Error::Subnet(_))));
    }

    #[test]
    fn conditions_validation() {
        let spec = NetworkSpec::new("n", 3);
        assert_eq!((spec.node_index("node2").unwrap(), spec.node_index("1").unwrap()), (2, 1));
        assert!(matches!(spec.node_index("3"), Err(Error::UnknownNode { .. })));
        let err = NetworkSpec::new("n", 20).node_index("x").unwrap_err().to_string();
        assert!(err.contains("node0 ... node19, or an index below 20"), "{err}");

        let delay = Qos { delay: Duration::from_millis(10), ..Qos::default() };
        let with = |conditions: Conditions| NetworkSpec { conditions, ..spec.clone() }.validate();
        let rule = |node: &str, qos| QosRule::Node { node: node.into(), direction: Direction::Both, qos };
        let pair = |from: &str, to: &str| QosRule::Pair { from: from.into(), to: to.into(), both: true, qos: delay };
        let skew = |tz: &str| ClockSkew::default().tz(tz);
        let groups = |g: &[&[&str]]| Some(g.iter().map(|m| m.iter().map(|k| k.to_string()).collect()).collect());
        let good = Conditions {
            qos: vec![rule("node0", delay), pair("node1", "2")],
            clocks: vec![("2".into(), skew("UTC"))],
            partition: groups(&[&["node0"], &["1", "node2"]]),
        };
        with(good).unwrap();
        let jitter = Qos { jitter: Duration::from_millis(1), ..Qos::default() };
        let bad = [
            (Conditions { qos: vec![rule("node0", jitter)], ..Conditions::default() }, "jitter"),
            (Conditions { qos: vec![rule("node3", delay)], ..Conditions::default() }, "unknown node 'node3'"),
            (Conditions { qos: vec![pair("node1", "1")], ..Conditions::default() }, "same node"),
            (
                Conditions { clocks: vec![("node0".into(), skew("Nowhere/Atlantis"))], ..Conditions::default() },
                "time zone",
            ),
            (Conditions { clocks: vec![("x".into(), skew("UTC"))], ..Conditions::default() }, "unknown node 'x'"),
            (
                Conditions { partition: groups(&[&["node0"], &["0"]]), ..Conditions::default() },
                "node 0 is in two groups",
            ),
            (Conditions { partition: groups(&[&["node9"]]), ..Conditions::default() }, "unknown node 'node9'"),
        ];
        for (conditions, phrase) in bad {
            let err = with(conditions).unwrap_err().to_string();
            assert!(err.contains(phrase), "{err} lacks {phrase}");
        }
    }
}
