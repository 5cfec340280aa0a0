//! Placeholders in service commands, arguments, environment and probes.
//!
//! A template is plain text with placeholders in braces, rendered once per node:
//!
//! | placeholder | value |
//! |---|---|
//! | `{name}` or `{node}` | the node's name, e.g. `node0` |
//! | `{index}` | the node's index, from 0 |
//! | `{ip}` | the node's IPv4 address |
//! | `{ip6}` | the node's IPv6 address (networks with `ipv6` only) |
//! | `{data}` | the service's data directory (wiped by reset) |
//! | `{dir}` | the node's directory in the run directory |
//! | `{network}` | the network's name |
//! | `{subnet}` | the network's subnet, e.g. `10.200.0.0/24` |
//! | `{host}` | the host's address on the network (the nodes reach the host there) |
//! | `{subnet6}`, `{host6}` | the same for IPv6 (networks with `ipv6` only) |
//! | `{count}` | the number of nodes |
//! | `{all:PATTERN}` | PATTERN for every node, joined by `,` |
//! | `{others:PATTERN}` | PATTERN for every other node, joined by `,` |
//!
//! Inside PATTERN, `%name`, `%ip`, `%ip6` and `%index` stand for that node's values, so an etcd
//! cluster list is `{all:%name=http://%ip:2380}` (or `{all:%name=http://[%ip6]:2380}`); `%%` is
//! a literal `%`, and any other word after a `%` is an error. `{{` and `}}` are literal braces.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::error::{Error, Result};
use crate::subnet::{Subnet, Subnet6};

/// A parsed template; parsing checks every placeholder, so rendering cannot fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Var),
    Join { others_only: bool, pattern: Vec<PatternPiece> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Name,
    Index,
    Ip,
    Ip6,
    Data,
    Dir,
    Network,
    Subnet,
    Host,
    Subnet6,
    Host6,
    Count,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PatternPiece {
    Text(String),
    Name,
    Ip,
    Ip6,
    Index,
}

/// One node as templates see it.
#[derive(Debug, Clone)]
pub struct NodeVars {
    /// The node's name.
    pub name: String,
    /// The node's address.
    pub ip: Ipv4Addr,
    /// The node's IPv6 address, in networks with IPv6.
    pub ip6: Option<Ipv6Addr>,
}

/// Everything a template can refer to, for one node and one service.
#[derive(Debug, Clone, Copy)]
pub struct Vars<'a> {
    /// Index of the node being rendered for, into `nodes`.
    pub index: usize,
    /// Every node of the network, in index order.
    pub nodes: &'a [NodeVars],
    /// The service's data directory.
    pub data: &'a Path,
    /// The node's directory.
    pub dir: &'a Path,
    /// The network's name.
    pub network: &'a str,
    /// The subnet in CIDR notation.
    pub subnet: &'a str,
    /// The host's address on the network.
    pub host: Ipv4Addr,
    /// The network's IPv6 prefix, in networks with IPv6.
    pub subnet6: Option<Subnet6>,
}

impl Template {
    /// Parses `source`, rejecting unknown placeholders and unbalanced braces.
    pub fn parse(source: &str) -> Result<Template> {
        let bad = |msg: String| Error::invalid(format!("template '{source}'"), msg);
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some(i) = rest.find(['{', '}']) {
            text.push_str(&rest[..i]);
            let tail = &rest[i..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                text.push_str(&tail[..1]);
                rest = &tail[2..];
                continue;
            }
            if tail.starts_with('}') {
                return Err(bad("a '}' without its '{' (write '}}' for a literal brace)".into()));
            }
            let end = tail.find('}').ok_or_else(|| bad("a '{' is not closed".into()))?;
            let inner = &tail[1..end];
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(parse_placeholder(inner).map_err(bad)?);
            rest = &tail[end + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template { source: source.to_string(), pieces })
    }

    /// Whether the template names an IPv6 value (`{ip6}`, `{host6}`, `{subnet6}`, `%ip6`),
    /// which only a network with IPv6 has.
    pub fn needs_ipv6(&self) -> bool {
        self.pieces.iter().any(|p| match p {
            Piece::Var(v) => matches!(v, Var::Ip6 | Var::Host6 | Var::Subnet6),
            Piece::Join { pattern, .. } => pattern.contains(&PatternPiece::Ip6),
            Piece::Text(_) => false,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the template for one node.
    pub fn render(&self, vars: &Vars<'_>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => render_var(&mut out, *v, vars),
                Piece::Join { others_only, pattern } => {
                    let mut first = true;
                    for (i, node) in vars.nodes.iter().enumerate() {
                        if *others_only && i == vars.index {
                            continue;
                        }
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        for p in pattern {
                            match p {
                                PatternPiece::Text(t) => out.push_str(t),
                                PatternPiece::Name => out.push_str(&node.name),
                                PatternPiece::Ip => write!(out, "{}", node.ip).unwrap(),
                                PatternPiece::Ip6 => write_some(&mut out, node.ip6),
                                PatternPiece::Index => write!(out, "{i}").unwrap(),
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

/// `template` rendered for node 0 of a sample network of one node: what a check of its
/// rendered form (a URL, a path) needs.
pub(crate) fn render_sample(template: &Template) -> String {
    let (subnet, subnet6) = (Subnet::SAMPLE, Subnet6::SAMPLE);
    let subnet_text = subnet.to_string();
    let nodes = [NodeVars { name: "node0".into(), ip: subnet.node(0), ip6: Some(subnet6.node(0)) }];
    let vars = Vars {
        index: 0,
        nodes: &nodes,
        data: Path::new("/var/tmp/netdriver/net-000000/node0/service/data"),
        dir: Path::new("/var/tmp/netdriver/net-000000/node0"),
        network: "net",
        subnet: &subnet_text,
        host: subnet.host(),
        subnet6: Some(subnet6),
    };
    template.render(&vars)
}

impl std::str::FromStr for Template {
    type Err = Error;
    fn from_str(s: &str) -> Result<Template> {
        Template::parse(s)
    }
}

fn render_var(out: &mut String, var: Var, v: &Vars<'_>) {
    let node = &v.nodes[v.index];
    match var {
        Var::Name => out.push_str(&node.name),
        Var::Index => write!(out, "{}", v.index).unwrap(),
        Var::Ip => write!(out, "{}", node.ip).unwrap(),
        Var::Ip6 => write_some(out, node.ip6),
        Var::Data => out.push_str(&v.data.to_string_lossy()),
        Var::Dir => out.push_str(&v.dir.to_string_lossy()),
        Var::Network => out.push_str(v.network),
        Var::Subnet => out.push_str(v.subnet),
        Var::Host => write!(out, "{}", v.host).unwrap(),
        Var::Subnet6 => write_some(out, v.subnet6),
        Var::Host6 => write_some(out, v.subnet6.map(|s| s.host())),
        Var::Count => write!(out, "{}", v.nodes.len()).unwrap(),
    }
}

/// An IPv6 value, or nothing in a network without IPv6 (which validation refuses first).
fn write_some(out: &mut String, value: Option<impl std::fmt::Display>) {
    if let Some(value) = value {
        write!(out, "{value}").unwrap();
    }
}

fn parse_placeholder(inner: &str) -> std::result::Result<Piece, String> {
    if let Some((kind, pattern)) = inner.split_once(':') {
        let others_only = match kind {
            "all" => false,
            "others" => true,
            _ => return Err(format!("unknown placeholder '{{{inner}}}' (joins are {{all:..}} and {{others:..}})")),
        };
        return Ok(Piece::Join { others_only, pattern: parse_pattern(pattern)? });
    }
    let var = match inner {
        "name" | "node" => Var::Name,
        "index" => Var::Index,
        "ip" => Var::Ip,
        "ip6" => Var::Ip6,
        "data" => Var::Data,
        "dir" => Var::Dir,
        "network" => Var::Network,
        "subnet" => Var::Subnet,
        "host" => Var::Host,
        "subnet6" => Var::Subnet6,
        "host6" => Var::Host6,
        "count" => Var::Count,
        _ => {
            return Err(format!(
                "unknown placeholder '{{{inner}}}' (known: name, node, index, ip, ip6, data, \
                 dir, network, subnet, host, subnet6, host6, count, all:PATTERN, others:PATTERN)"
            ))
        }
    };
    Ok(Piece::Var(var))
}

/// A join's pattern: `%name`, `%ip`, `%ip6` and `%index` (a `%` and a word: letters and digits),
/// `%%` for a literal `%`; a `%` before anything else stays as it is.
fn parse_pattern(pattern: &str) -> std::result::Result<Vec<PatternPiece>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = pattern;
    while let Some(i) = rest.find('%') {
        text.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        if let Some(after) = tail.strip_prefix('%') {
            text.push('%');
            rest = after;
            continue;
        }
        let len = tail.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(tail.len());
        let piece = match &tail[..len] {
            "" => {
                text.push('%');
                rest = tail;
                continue;
            }
            "name" => PatternPiece::Name,
            "index" => PatternPiece::Index,
            "ip" => PatternPiece::Ip,
            "ip6" => PatternPiece::Ip6,
            other => {
                return Err(format!(
                    "unknown '%{other}' in a pattern (known: %name, %ip, %ip6, %index; %% is a literal %)"
                ))
            }
        };
        if !text.is_empty() {
            out.push(PatternPiece::Text(std::mem::take(&mut text)));
        }
        out.push(piece);
        rest = &tail[len..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(PatternPiece::Text(text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<NodeVars> {
        (0..3)
            .map(|i| NodeVars {
                name: format!("node{i}"),
                ip: Ipv4Addr::new(10, 0, 0, 2 + i as u8),
                ip6: Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2 + i as u16)),
            })
            .collect()
    }

    fn render(src: &str, index: usize) -> String {
        let nodes = nodes();
        let vars = Vars {
            index,
            nodes: &nodes,
            data: Path::new("/d"),
            dir: Path::new("/n"),
            network: "net",
            subnet: "10.0.0.0/24",
            host: Ipv4Addr::new(10, 0, 0, 1),
            subnet6: Some("fd00::/64".parse().unwrap()),
        };
        Template::parse(src).unwrap().render(&vars)
    }

    #[test]
    fn simple_placeholders() {
        assert_eq!(render("{name}@{ip}:{index} {data} {dir}", 1), "node1@10.0.0.3:1 /d /n");
        assert_eq!(render("{network} {subnet} {host} {count}", 0), "net 10.0.0.0/24 10.0.0.1 3");
        assert_eq!(render("plain", 0), "plain");
        assert_eq!(render("[{ip6}] {subnet6} {host6}", 1), "[fd00::3] fd00::/64 fd00::1");
        assert!(Template::parse("http://[{ip6}]:1").unwrap().needs_ipv6());
        assert!(Template::parse("{all:[%ip6]}").unwrap().needs_ipv6());
        assert!(!Template::parse("{ip} {all:%ip}").unwrap().needs_ipv6());
    }

    #[test]
    fn joins() {
        assert_eq!(
            render("--initial-cluster={all:%name=http://%ip:2380}", 0),
            "--initial-cluster=node0=http://10.0.0.2:2380,node1=http://10.0.0.3:2380,node2=http://10.0.0.4:2380"
        );
        assert_eq!(render("{others:%ip:26656}", 1), "10.0.0.2:26656,10.0.0.4:26656");
        assert_eq!(render("{all:%index-50%}", 2), "0-50%,1-50%,2-50%");
        assert_eq!(render("{others:%%%name}", 0), "%node1,%node2");
        assert_eq!(render("{others:[%ip6]:2380}", 0), "[fd00::3]:2380,[fd00::4]:2380");
    }

    #[test]
    fn escapes() {
        assert_eq!(render("{{\"a\": \"{name}\"}}", 2), "{\"a\": \"node2\"}");
    }

    #[test]
    fn errors() {
        for bad in ["{nope}", "{ip", "x}", "{each:%ip}", "{all:%foo}", "{all:%ipaddr}"] {
            let err = Template::parse(bad).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
