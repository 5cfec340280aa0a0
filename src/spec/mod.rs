//! What a network should be: nodes, addressing, the services every node runs, and the
//! conditions set up before they start.
//!
//! A [`NetworkSpec`] is plain data, built in code or read from a manifest. It is validated
//! once, by [`NetworkSpec::validate`], before anything is created.

mod conditions;
mod nemesis;
mod service;

use std::collections::HashSet;
use std::path::PathBuf;

pub(crate) use conditions::{partition_groups, Resolved};
pub use conditions::{Conditions, Cut, QosRule, QosTarget};
pub(crate) use nemesis::duration_text;
pub use nemesis::{FaultKind, FaultServices, NemesisSpec, Range};
pub(crate) use service::{check_bind_target, check_http_probe, check_name};
pub use service::{Probe, ServiceSpec};

use crate::error::{Error, Result};
use crate::subnet::{Subnet, Subnet6};
use crate::template::Template;

/// At most this many nodes in a network (the largest size tested).
pub const MAX_NODES: usize = crate::fabric::MAX_NODES;

/// A whole network: how many nodes, their addressing, and what runs on each.
#[derive(Debug, Clone)]
pub struct NetworkSpec {
    /// A label used in names and logs; letters, digits, `-` and `_`.
    pub name: String,
    /// Node names, in index order.
    pub nodes: Vec<String>,
    /// The subnet, or `None` to pick a free one.
    pub subnet: Option<Subnet>,
    /// Whether the network is dual stack: every node gets an IPv6 address from
    /// [`subnet6`](Self::subnet6) as well as its IPv4 one, and the host gets `::1` of it. Off
    /// by default (loopback keeps `::1` either way).
    pub ipv6: bool,
    /// The IPv6 prefix (a /64 or shorter), or `None` to pick a free unique local /64; only
    /// with `ipv6`.
    pub subnet6: Option<Subnet6>,
    /// Where run directories (logs, data) go; `/var/tmp/netdriver` by default.
    pub run_root: PathBuf,
    /// Keep service data directories after teardown (logs are always kept).
    pub keep_data: bool,
    /// Whether every node has a wall clock of its own (see [`crate::wallclock`]): on by
    /// default; off, no exec is intercepted (about 0.3 ms each) and no wall clock can move.
    pub wall_clock: bool,
    /// The node's main URL, e.g. `http://{ip}:9984/`.
    pub url: Option<Template>,
    /// The services every node runs, in the order given.
    pub services: Vec<ServiceSpec>,
    /// Shaping, clocks and partition, set up right after bring-up, before services start.
    pub conditions: Conditions,
    /// The network's fault schedule (the manifest's `[nemesis]`): what `netdriver nemesis`
    /// and Python's `network.nemesis()` run when given no schedule of their own.
    pub nemesis: Option<NemesisSpec>,
    /// The services a fault schedule may kill, pause or stop when it names none itself
    /// (profiles say: BigchainDB's services may all be paused, only its db killed); every
    /// service by default.
    pub fault_services: FaultServices,
}

impl NetworkSpec {
    /// `count` nodes named `node0`, `node1`, ... and no services.
    pub fn new(name: impl Into<String>, count: usize) -> NetworkSpec {
        NetworkSpec {
            name: name.into(),
            nodes: (0..count).map(|i| format!("node{i}")).collect(),
            subnet: None,
            ipv6: false,
            subnet6: None,
            run_root: PathBuf::from("/var/tmp/netdriver"),
            keep_data: false,
            wall_clock: true,
            url: None,
            services: Vec::new(),
            conditions: Conditions::default(),
            nemesis: None,
            fault_services: FaultServices::default(),
        }
    }

    /// Adds a service to every node.
    pub fn service(mut self, service: ServiceSpec) -> Self {
        self.services.push(service);
        self
    }

    /// Checks names, counts, the subnet, the services and their dependencies, and the
    /// conditions: their values and the nodes they name.
    pub fn validate(&self) -> Result<()> {
        self.validate_network()?;
        unique("service", self.services.iter().map(|s| &s.name))?;
        self.services.iter().try_for_each(ServiceSpec::validate)?;
        self.levels()?;
        self.check_ipv6_templates()?;
        if !self.wall_clock {
            if let Some((node, _)) = self.conditions.clocks.iter().find(|(_, skew)| skew.moves_wall_clock()) {
                return Err(Error::invalid(
                    "clock",
                    format!("{node}'s wall clock cannot move with wall_clock = false; turn it on, or shift only the other clocks"),
                ));
            }
        }
        self.conditions.validate(&self.nodes)?;
        self.nemesis.as_ref().map_or(Ok(()), NemesisSpec::validate)
    }

    /// Checks what concerns the network itself: its name, its nodes and its subnet.
    pub(crate) fn validate_network(&self) -> Result<()> {
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
            return Err(Error::invalid("nodes", format!("{} nodes: a network has 1 to {MAX_NODES}", self.nodes.len())));
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
        self.validate_subnet6()?;
        if let Some(s) = &self.subnet {
            s.check_usable()?;
            if s.capacity() < self.nodes.len() {
                return Err(Error::Subnet(format!(
                    "{s} holds {} nodes, the network has {}; use a shorter prefix",
                    s.capacity(),
                    self.nodes.len()
                )));
            }
        }
        Ok(())
    }

    /// Checks the IPv6 prefix: usable, and given only with `ipv6`.
    fn validate_subnet6(&self) -> Result<()> {
        if let Some(s) = &self.subnet6 {
            if !self.ipv6 {
                return Err(Error::invalid(
                    "subnet6",
                    format!("{s} is given but the network has no IPv6; set ipv6 = true, or drop subnet6"),
                ));
            }
            s.check_usable()?;
        }
        Ok(())
    }

    /// Checks that templates name IPv6 values only in a network with IPv6.
    fn check_ipv6_templates(&self) -> Result<()> {
        if self.ipv6 {
            return Ok(());
        }
        let url = self.url.iter().map(|t| ("url".to_string(), t));
        let services = self.services.iter().flat_map(|s| s.templates().map(|t| (format!("service {}", s.name), t)));
        match url.chain(services).find(|(_, t)| t.needs_ipv6()) {
            Some((what, t)) => Err(Error::invalid(
                what,
                format!(
                    "'{}' names an IPv6 value ({{ip6}}, {{host6}}, {{subnet6}} or %ip6), but the network has no \
                     IPv6; set ipv6 = true",
                    t.source()
                ),
            )),
            None => Ok(()),
        }
    }

    /// Checks the services that service `i` names (in `after` and `restart_with`): each is
    /// another service of the spec, defined anywhere in it.
    pub(crate) fn check_references(&self, i: usize) -> Result<()> {
        let s = &self.services[i];
        let known = |name: &String| name != &s.name && self.services.iter().any(|o| &o.name == name);
        let what = || format!("service {}", s.name);
        if let Some(dep) = s.after.iter().find(|d| !known(d)) {
            let why = if dep == &s.name { "itself" } else { "no service of the spec" };
            return Err(Error::invalid(what(), format!("'after' names '{dep}', which is {why}")));
        }
        if let Some(other) = s.restart_with.iter().find(|d| !known(d)) {
            let why = if other == &s.name { "itself" } else { "no service of the spec" };
            return Err(Error::invalid(what(), format!("'restart_with' names '{other}', which is {why}")));
        }
        Ok(())
    }

    /// Service indexes grouped by how deep they wait (`after`): each level starts once the
    /// one before it is ready, and stops before it. A cycle is an error that names it.
    pub(crate) fn levels(&self) -> Result<Vec<Vec<usize>>> {
        (0..self.services.len()).try_for_each(|i| self.check_references(i))?;
        let index = |name: &String| self.services.iter().position(|o| &o.name == name).expect("checked above");
        let mut depth: Vec<Option<usize>> = vec![None; self.services.len()];
        fn visit(
            spec: &NetworkSpec,
            index: &dyn Fn(&String) -> usize,
            depth: &mut [Option<usize>],
            path: &mut Vec<usize>,
            i: usize,
        ) -> Result<usize> {
            if let Some(d) = depth[i] {
                return Ok(d);
            }
            if let Some(start) = path.iter().position(|&p| p == i) {
                let cycle: Vec<&str> =
                    path[start..].iter().chain([&i]).map(|&p| spec.services[p].name.as_str()).collect();
                return Err(Error::invalid(
                    format!("service {}", spec.services[i].name),
                    format!("'after' goes round in a circle: {}; break it", cycle.join(" waits for ")),
                ));
            }
            path.push(i);
            let mut d = 0;
            for dep in &spec.services[i].after {
                d = d.max(visit(spec, index, depth, path, index(dep))? + 1);
            }
            path.pop();
            depth[i] = Some(d);
            Ok(d)
        }
        let mut path = Vec::new();
        for i in 0..self.services.len() {
            visit(self, &index, &mut depth, &mut path, i)?;
        }
        let depth: Vec<usize> = depth.into_iter().map(|d| d.expect("every service visited")).collect();
        let mut levels = vec![Vec::new(); depth.iter().max().map_or(0, |d| d + 1)];
        for (i, d) in depth.into_iter().enumerate() {
            levels[d].push(i);
        }
        Ok(levels)
    }

    /// The index of the node `key` names: a node name, or an index below the node count.
    pub(crate) fn node_index(&self, key: &str) -> Result<usize> {
        find_node(key, self.nodes.iter().map(String::as_str))
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
    use std::time::Duration;

    use super::*;
    use crate::clock::ClockSkew;
    use crate::shaping::{Direction, Qos};

    #[test]
    fn validation() {
        assert!(NetworkSpec::new("ok", 3).validate().is_ok());
        assert!(NetworkSpec::new("bad name", 3).validate().is_err());
        assert!(NetworkSpec::new("n", 0).validate().is_err());
        assert!(NetworkSpec::new("n", 10_001).validate().is_err());
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
    fn ipv6_validation() {
        let etcd = ServiceSpec::new("etcd", "etcd").unwrap().args(["--listen-peer-urls=http://[{ip6}]:2380"]).unwrap();
        let mut spec = NetworkSpec::new("n", 2).service(etcd);
        let err = spec.validate().unwrap_err().to_string();
        let want = "invalid service etcd: '--listen-peer-urls=http://[{ip6}]:2380' names an IPv6 value";
        assert!(err.starts_with(want) && err.ends_with("set ipv6 = true"), "{err}");
        spec.ipv6 = true;
        spec.validate().unwrap();
        spec.subnet6 = Some("fe80::/64".parse().unwrap());
        assert!(spec.validate().unwrap_err().to_string().contains("link-local"));
        let mut plain = NetworkSpec::new("n", 2);
        plain.subnet6 = Some("fd00:1::/64".parse().unwrap());
        assert!(plain.validate().unwrap_err().to_string().contains("set ipv6 = true, or drop subnet6"));
        plain.url = Some("http://[{ip6}]:1/".parse().unwrap());
        plain.subnet6 = None;
        assert!(plain.validate().unwrap_err().to_string().starts_with("invalid url"));
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
        let rule = |node: &str, qos| QosRule { target: QosTarget::node(node, Direction::Both), qos };
        let pair = |from: &str, to: &str| QosRule { target: QosTarget::both_ways(from, to), qos: delay };
        let skew = |tz: &str| ClockSkew::default().tz(tz);
        let groups =
            |g: &[&[&str]]| Some(g.iter().map(|m| m.iter().map(std::string::ToString::to_string).collect()).collect());
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
