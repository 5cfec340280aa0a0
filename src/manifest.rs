//! Manifests: a [`NetworkSpec`] written as a TOML file.
//!
//! ```toml
//! [network]
//! name = "etcd"                   # default: the file's stem
//! nodes = 3                       # node0, node1, node2; or names: ["a", "b"]
//! subnet = "10.77.0.0/24"         # default: a free one
//! ipv6 = false
//! run_root = "/var/tmp/netdriver"
//! keep_data = false
//! url = "http://{ip}:2379/"       # the node's main URL
//!
//! [[service]]                     # one table per service, started in this order
//! name = "etcd"
//! command = "etcd"
//! args = ["--name", "{name}", "--initial-cluster", "{all:%name=http://%ip:2380}"]
//! env = { ETCD_LOG_LEVEL = "warn" }
//! workdir = "{data}"
//! ready = { http = "http://{ip}:2379/health" }   # or { tcp = 2379 }
//! ready_timeout = "30s"
//! after = ["db"]                  # services started (and ready) before this one
//! stop_timeout = "5s"
//! binds = { "/var/lib/etcd" = "{data}" }          # path in the node = source
//! reset = ["etcdctl", "..."]      # resets the state instead of wiping {data}
//! restart_with = ["db"]           # restarted whenever db starts while this one runs
//! ```
//!
//! Network conditions, set up right after bring-up and before services start
//! ([`NetworkSpec::conditions`]):
//!
//! ```toml
//! [network]
//! nodes = 3
//! partition = [["node0"], ["node1", "node2"]]   # groups that cannot reach each other
//!
//! [[qos]]                         # shaping rules, applied in order
//! node = "node1"                  # what a node sends, receives or both; a name or an index
//! direction = "both"              # send | receive | both (default)
//! delay = "100ms"
//! jitter = "10ms"
//! correlation = "25%"             # of the jitter
//! distribution = "normal"         # uniform (default) | normal | pareto | paretonormal
//! loss = "1%"
//! loss_correlation = "25%"
//! duplicate = "1%"                # also duplicate_correlation
//! corrupt = "0.1%"                # also corrupt_correlation
//! reorder = "10%"                 # also reorder_correlation
//! gap = 5
//! rate = "10mbit"
//! limit = 1000                    # netem's queue, in packets; default: computed
//!
//! [[qos]]
//! from = "node0"                  # or a pair: what node0 sends to node2
//! to = "node2"
//! both_ways = true                # and what node2 sends to node0
//! delay = "50ms"
//!
//! [[clock]]
//! node = "node2"
//! offset = "+1h"                  # every clock; realtime, monotonic, boottime override it
//! boottime = "-10s"
//! tz = "Asia/Tokyo"
//! ```
//!
//! Commands, arguments, environment values, the working directory, URLs and bind sources are
//! [templates](crate::template). Every error, from a TOML syntax error to a failed
//! [`NetworkSpec::validate`], is an [`Error::Manifest`] that points at the offending field.

use std::collections::BTreeMap;
use std::num::NonZeroU16;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::clock::{ClockSkew, Offset};
use crate::error::{Context, Error, Result};
use crate::network::Direction;
use crate::shaping::Qos;
use crate::spec::{NetworkSpec, Probe, QosRule, ServiceSpec, MAX_NODES};
use crate::template::Template;
use crate::units::parse_duration;

/// Reads the manifest at `path` and parses it with [`parse`].
pub fn load(path: &Path) -> Result<NetworkSpec> {
    let text = std::fs::read_to_string(path).context(|| format!("reading manifest {}", path.display()))?;
    parse(&text, path)
}

/// Parses and validates manifest `text`; `path` is the file it came from, named in errors and
/// the network's name when the manifest gives none.
pub fn parse(text: &str, path: &Path) -> Result<NetworkSpec> {
    let doc = Doc { text, path };
    let raw: RawManifest = toml::from_str(text).map_err(|e| doc.toml_error(&e))?;
    let network = raw.network.get_ref();
    let mut spec = doc.network(network)?;
    spec.validate().map_err(|e| {
        let (field, span) = match &e {
            Error::Subnet(_) => ("subnet", network.subnet.as_ref().map(Spanned::span)),
            Error::Invalid { what, .. } if what == "network name" => ("name", network.name.as_ref().map(Spanned::span)),
            _ => ("nodes", Some(network.nodes.span())),
        };
        doc.error(span.unwrap_or(raw.network.span()), format!("network.{field}: {e}"))
    })?;
    // Validation checks each service against the ones before it, so validating as services are
    // added blames the first one that is wrong.
    for (i, service) in raw.service.iter().enumerate() {
        spec.services.push(doc.service(i, service)?);
        spec.validate().map_err(|e| {
            let names = matches!(&e, Error::DuplicateName { .. })
                || matches!(&e, Error::Invalid { what, .. } if what == "service name");
            let blames = |field: &str| e.to_string().contains(&format!("'{field}'"));
            let (field, span) = match (&service.after, &service.restart_with) {
                (_, Some(with)) if !names && blames("restart_with") => ("restart_with", with.span()),
                (Some(after), _) if !names => ("after", after.span()),
                _ => ("name", service.name.span()),
            };
            doc.error(span, format!("service[{i}].{field}: {e}"))
        })?;
    }
    spec.conditions.clocks =
        raw.clock.iter().enumerate().map(|(i, c)| doc.clock(&spec, i, c)).collect::<Result<_>>()?;
    spec.conditions.qos = raw.qos.iter().enumerate().map(|(i, q)| doc.qos_rule(&spec, i, q)).collect::<Result<_>>()?;
    spec.conditions.partition = network.partition.as_ref().map(|p| doc.partition(&spec, p)).transpose()?;
    Ok(spec)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    network: Spanned<RawNetwork>,
    #[serde(default)]
    service: Vec<RawService>,
    #[serde(default)]
    qos: Vec<Spanned<RawQos>>,
    #[serde(default)]
    clock: Vec<Spanned<RawClock>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    name: Option<Spanned<String>>,
    /// A count or a list of names.
    nodes: Spanned<toml::Value>,
    subnet: Option<Spanned<String>>,
    #[serde(default)]
    ipv6: bool,
    run_root: Option<PathBuf>,
    #[serde(default)]
    keep_data: bool,
    url: Option<Spanned<String>>,
    partition: Option<Spanned<Vec<Vec<Spanned<String>>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: Spanned<String>,
    command: Spanned<String>,
    #[serde(default)]
    args: Vec<Spanned<String>>,
    #[serde(default)]
    env: BTreeMap<String, Spanned<String>>,
    workdir: Option<Spanned<String>>,
    ready: Option<Spanned<RawProbe>>,
    ready_timeout: Option<Spanned<String>>,
    after: Option<Spanned<Vec<String>>>,
    stop_timeout: Option<Spanned<String>>,
    #[serde(default)]
    binds: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    reset: Vec<Spanned<String>>,
    restart_with: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    http: Option<Spanned<String>>,
    tcp: Option<NonZeroU16>,
}

/// A `[[qos]]` table: a node (`node`, `direction`) or a pair (`from`, `to`, `both_ways`),
/// and the shaping.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQos {
    node: Option<Spanned<String>>,
    direction: Option<Spanned<Direction>>,
    from: Option<Spanned<String>>,
    to: Option<Spanned<String>>,
    both_ways: Option<Spanned<bool>>,
    delay: Option<Spanned<String>>,
    jitter: Option<Spanned<String>>,
    correlation: Option<Spanned<String>>,
    distribution: Option<Spanned<String>>,
    loss: Option<Spanned<String>>,
    loss_correlation: Option<Spanned<String>>,
    duplicate: Option<Spanned<String>>,
    duplicate_correlation: Option<Spanned<String>>,
    corrupt: Option<Spanned<String>>,
    corrupt_correlation: Option<Spanned<String>>,
    reorder: Option<Spanned<String>>,
    reorder_correlation: Option<Spanned<String>>,
    #[serde(default)]
    gap: u32,
    limit: Option<u32>,
    rate: Option<Spanned<String>>,
}

/// A `[[clock]]` table: `offset` moves every clock, the others override it one by one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClock {
    node: Spanned<String>,
    offset: Option<Spanned<String>>,
    realtime: Option<Spanned<String>>,
    monotonic: Option<Spanned<String>>,
    boottime: Option<Spanned<String>>,
    tz: Option<Spanned<String>>,
}

/// The manifest being parsed: turns byte offsets into `path:line:column` errors.
struct Doc<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Doc<'_> {
    fn network(&self, raw: &RawNetwork) -> Result<NetworkSpec> {
        let name = match &raw.name {
            Some(name) => name.get_ref().clone(),
            None => self.path.file_stem().unwrap_or_default().to_string_lossy().into_owned(),
        };
        let nodes = &raw.nodes;
        let bad = |message: String| self.error(nodes.span(), format!("network.nodes: {message}"));
        let mut spec = match nodes.get_ref() {
            toml::Value::Integer(n) => match usize::try_from(*n) {
                Ok(count) if count <= MAX_NODES => NetworkSpec::new(name, count),
                _ => return Err(bad(format!("{n} nodes: a network has 1 to {MAX_NODES}"))),
            },
            toml::Value::Array(list) => {
                let names = list.iter().map(|v| v.as_str().map(String::from)).collect::<Option<_>>();
                let names = names.ok_or_else(|| bad("node names must be strings".into()))?;
                NetworkSpec { nodes: names, ..NetworkSpec::new(name, 0) }
            }
            _ => return Err(bad("expected a node count, like 3, or a list of names, like [\"a\", \"b\"]".into())),
        };
        spec.subnet = raw.subnet.as_ref().map(|s| self.field("network.subnet", s, str::parse)).transpose()?;
        spec.ipv6 = raw.ipv6;
        if let Some(root) = &raw.run_root {
            spec.run_root = root.clone();
        }
        spec.keep_data = raw.keep_data;
        spec.url = raw.url.as_ref().map(|u| self.field("network.url", u, Template::parse)).transpose()?;
        Ok(spec)
    }

    fn service(&self, i: usize, raw: &RawService) -> Result<ServiceSpec> {
        let at = |field: &str| format!("service[{i}].{field}");
        let name = raw.name.get_ref().as_str();
        let mut spec = self.field(&at("command"), &raw.command, |c| ServiceSpec::new(name, c))?;
        for (j, arg) in raw.args.iter().enumerate() {
            spec.args.push(self.field(&at(&format!("args[{j}]")), arg, Template::parse)?);
        }
        for (key, value) in &raw.env {
            spec.env.push((key.clone(), self.field(&at(&format!("env.{}", quote(key))), value, Template::parse)?));
        }
        spec.workdir = raw.workdir.as_ref().map(|w| self.field(&at("workdir"), w, Template::parse)).transpose()?;
        spec.ready = raw.ready.as_ref().map(|ready| self.probe(&at("ready"), ready)).transpose()?;
        if let Some(timeout) = &raw.ready_timeout {
            spec.ready_timeout = self.field(&at("ready_timeout"), timeout, parse_duration)?;
        }
        spec.after = raw.after.as_ref().map(|a| a.get_ref().clone()).unwrap_or_default();
        if let Some(timeout) = &raw.stop_timeout {
            spec.stop_timeout = self.field(&at("stop_timeout"), timeout, parse_duration)?;
        }
        for (inside, source) in &raw.binds {
            let source = self.field(&at(&format!("binds.{}", quote(inside))), source, Template::parse)?;
            spec.binds.push((PathBuf::from(inside), source));
        }
        for (j, arg) in raw.reset.iter().enumerate() {
            spec.reset.push(self.field(&at(&format!("reset[{j}]")), arg, Template::parse)?);
        }
        spec.restart_with = raw.restart_with.as_ref().map(|a| a.get_ref().clone()).unwrap_or_default();
        Ok(spec)
    }

    fn probe(&self, field: &str, ready: &Spanned<RawProbe>) -> Result<Probe> {
        match ready.get_ref() {
            RawProbe { http: Some(url), tcp: None } => {
                self.field(&format!("{field}.http"), url, Template::parse).map(Probe::Http)
            }
            RawProbe { http: None, tcp: Some(port) } => Ok(Probe::Tcp(port.get())),
            _ => Err(self.error(ready.span(), format!("{field}: give one of http = \"URL\" or tcp = PORT"))),
        }
    }

    /// A `[[qos]]` table as a rule: each node it names checked, each value parsed, then the
    /// combinations.
    fn qos_rule(&self, spec: &NetworkSpec, i: usize, table: &Spanned<RawQos>) -> Result<QosRule> {
        let at = |field: &str| format!("qos[{i}].{field}");
        let raw = table.get_ref();
        let node = |field: &str, key: &Spanned<String>| {
            self.field(&at(field), key, |k| spec.node_index(k)).map(|_| key.get_ref().clone())
        };
        let qos = self.qos(&at, raw)?;
        let rule = match (&raw.node, &raw.from, &raw.to) {
            (Some(key), None, None) => {
                if let Some(both) = &raw.both_ways {
                    return Err(
                        self.error(both.span(), format!("{}: only a pair (from, to) goes both ways", at("both_ways")))
                    );
                }
                let direction = raw.direction.as_ref().map_or(Direction::Both, |d| *d.get_ref());
                QosRule::Node { node: node("node", key)?, direction, qos }
            }
            (None, Some(from), Some(to)) => {
                if let Some(direction) = &raw.direction {
                    let message =
                        "only for a node; a pair shapes what `from` sends to `to` (both_ways = true for both)";
                    return Err(self.error(direction.span(), format!("{}: {message}", at("direction"))));
                }
                let both = raw.both_ways.as_ref().is_some_and(|b| *b.get_ref());
                QosRule::Pair { from: node("from", from)?, to: node("to", to)?, both, qos }
            }
            _ => {
                let message = "give either node = \"NAME\" or both from = \"NAME\" and to = \"NAME\", not both kinds";
                return Err(self.error(table.span(), format!("qos[{i}]: {message}")));
            }
        };
        // What is left spans fields: that a pair's ends differ, and the shaping's combinations.
        rule.validate(spec).map_err(|e| self.error(table.span(), format!("qos[{i}]: {e}")))?;
        Ok(rule)
    }

    /// The shaping of a `[[qos]]` table, each value parsed and blamed on its field.
    fn qos(&self, at: &impl Fn(&str) -> String, raw: &RawQos) -> Result<Qos> {
        let mut qos = Qos { limit: raw.limit, ..Qos::default() };
        qos.reorder.gap = raw.gap;
        let texts = [
            ("delay", &raw.delay),
            ("jitter", &raw.jitter),
            ("correlation", &raw.correlation),
            ("distribution", &raw.distribution),
            ("loss", &raw.loss),
            ("loss_correlation", &raw.loss_correlation),
            ("duplicate", &raw.duplicate),
            ("duplicate_correlation", &raw.duplicate_correlation),
            ("corrupt", &raw.corrupt),
            ("corrupt_correlation", &raw.corrupt_correlation),
            ("reorder", &raw.reorder),
            ("reorder_correlation", &raw.reorder_correlation),
            ("rate", &raw.rate),
        ];
        for (key, value) in texts {
            self.optional(&at(key), value, |text| qos.set(key, text))?;
        }
        Ok(qos)
    }

    /// A `[[clock]]` table as the node it names and its clocks.
    fn clock(&self, spec: &NetworkSpec, i: usize, table: &Spanned<RawClock>) -> Result<(String, ClockSkew)> {
        let at = |field: &str| format!("clock[{i}].{field}");
        let raw = table.get_ref();
        self.field(&at("node"), &raw.node, |k| spec.node_index(k))?;
        let offset =
            |field: &str, value: &Option<Spanned<String>>| self.optional(&at(field), value, str::parse::<Offset>);
        let all = offset("offset", &raw.offset)?.unwrap_or_default();
        if let Some(tz) = &raw.tz {
            self.field(&at("tz"), tz, |tz| ClockSkew::default().tz(tz).validate())?;
        }
        let skew = ClockSkew {
            realtime: offset("realtime", &raw.realtime)?.unwrap_or(all),
            monotonic: offset("monotonic", &raw.monotonic)?.unwrap_or(all),
            boottime: offset("boottime", &raw.boottime)?.unwrap_or(all),
            tz: raw.tz.as_ref().map(|tz| tz.get_ref().clone()),
        };
        // What is left to check is that libfaketime is there if the wall clock moves.
        skew.validate().map_err(|e| self.error(table.span(), format!("clock[{i}]: {e}")))?;
        Ok((raw.node.get_ref().clone(), skew))
    }

    /// `network.partition`: groups of known nodes, none in two groups.
    fn partition(&self, spec: &NetworkSpec, raw: &Spanned<Vec<Vec<Spanned<String>>>>) -> Result<Vec<Vec<String>>> {
        let mut groups = Vec::new();
        for (g, members) in raw.get_ref().iter().enumerate() {
            let mut group = Vec::new();
            for (m, key) in members.iter().enumerate() {
                self.field(&format!("network.partition[{g}][{m}]"), key, |k| spec.node_index(k))?;
                group.push(key.get_ref().clone());
            }
            groups.push(group);
        }
        spec.check_partition(&groups).map_err(|e| self.error(raw.span(), format!("network.partition: {e}")))?;
        Ok(groups)
    }

    /// Parses an optional string field, blaming errors on it.
    fn optional<T>(
        &self,
        field: &str,
        value: &Option<Spanned<String>>,
        parse: impl FnOnce(&str) -> Result<T>,
    ) -> Result<Option<T>> {
        value.as_ref().map(|v| self.field(field, v, parse)).transpose()
    }

    /// Parses a string field, blaming errors on it.
    fn field<T>(&self, field: &str, value: &Spanned<String>, parse: impl FnOnce(&str) -> Result<T>) -> Result<T> {
        parse(value.get_ref()).map_err(|e| self.error(value.span(), format!("{field}: {e}")))
    }

    /// A syntax error, or a field serde could not deserialize.
    fn toml_error(&self, err: &toml::de::Error) -> Error {
        let span = err.span().unwrap_or(0..0);
        // An empty span belongs to the whole document, as when [network] is missing.
        let field = match DeTable::parse(self.text) {
            Ok(doc) if !span.is_empty() => field_at(doc.get_ref(), &span, ""),
            _ => None,
        };
        match field {
            Some(field) => self.error(span, format!("{field}: {}", err.message())),
            None => self.error(span, err.message()),
        }
    }

    fn error(&self, span: Range<usize>, message: impl Into<String>) -> Error {
        let before = self.text.get(..span.start).unwrap_or(self.text);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Error::Manifest {
            path: self.path.to_path_buf(),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            message: message.into(),
        }
    }
}

/// The path, like `service[0].ready.http`, of the innermost key or value in `table` that
/// encloses `span`.
fn field_at(table: &DeTable<'_>, span: &Range<usize>, prefix: &str) -> Option<String> {
    table.iter().find_map(|(key, value)| {
        let path = format!("{prefix}{}", quote(key.get_ref()));
        value_at(value, span, path.clone()).or_else(|| encloses(key.span(), span).then_some(path))
    })
}

fn value_at(value: &Spanned<DeValue<'_>>, span: &Range<usize>, path: String) -> Option<String> {
    let inner = match value.get_ref() {
        DeValue::Table(table) => field_at(table, span, &format!("{path}.")),
        DeValue::Array(items) => {
            items.iter().enumerate().find_map(|(i, item)| value_at(item, span, format!("{path}[{i}]")))
        }
        _ => None,
    };
    inner.or_else(|| encloses(value.span(), span).then_some(path))
}

fn encloses(outer: Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// A key as TOML writes it: bare if it can be, quoted otherwise.
fn quote(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;
    use crate::shaping::{Chance, Loss, Percent, Reorder};
    use crate::template::{NodeVars, Vars};

    fn parse_str(text: &str) -> Result<NetworkSpec> {
        parse(text, Path::new("/etc/nets/test-net.toml"))
    }

    #[test]
    fn full_manifest() {
        let spec = parse_str(
            r#"
[network]
name = "etcd"
nodes = 3
subnet = "10.77.0.0/24"
ipv6 = true
run_root = "/tmp/nd"
keep_data = true
url = "http://{ip}:2379/"

[[service]]
name = "db"
command = "/usr/bin/db"
ready = { tcp = 5432 }

[[service]]
name = "etcd"
command = "etcd"
args = ["--name", "{name}", "--initial-cluster", "{all:%name=http://%ip:2380}"]
env = { ETCD_LOG_LEVEL = "warn" }
workdir = "{data}"
ready = { http = "http://{ip}:2379/health" }
ready_timeout = "1.5s"
after = ["db"]
stop_timeout = "5s"
binds = { "/var/lib/etcd" = "{data}" }
reset = ["etcdctl", "del", "--prefix", ""]
restart_with = ["db"]
"#,
        )
        .unwrap();
        assert_eq!(spec.name, "etcd");
        assert_eq!(spec.nodes, ["node0", "node1", "node2"]);
        assert_eq!(spec.subnet, Some("10.77.0.0/24".parse().unwrap()));
        assert!(spec.ipv6 && spec.keep_data);
        assert_eq!(spec.run_root, Path::new("/tmp/nd"));
        assert_eq!(spec.url.as_ref().map(Template::source), Some("http://{ip}:2379/"));

        let [db, etcd] = &spec.services[..] else { panic!("two services") };
        assert_eq!(db.name, "db");
        assert_eq!(db.command.source(), "/usr/bin/db");
        assert_eq!(db.ready, Some(Probe::Tcp(5432)));
        let defaults = ServiceSpec::new("x", "x").unwrap();
        assert_eq!((db.ready_timeout, db.stop_timeout), (defaults.ready_timeout, defaults.stop_timeout));
        assert!(db.args.is_empty() && db.env.is_empty() && db.workdir.is_none() && db.binds.is_empty());

        assert_eq!(etcd.command.source(), "etcd");
        let args: Vec<_> = etcd.args.iter().map(Template::source).collect();
        assert_eq!(args, ["--name", "{name}", "--initial-cluster", "{all:%name=http://%ip:2380}"]);
        assert_eq!(etcd.env, [("ETCD_LOG_LEVEL".to_string(), Template::parse("warn").unwrap())]);
        assert_eq!(etcd.workdir.as_ref().map(Template::source), Some("{data}"));
        assert_eq!(etcd.ready, Some(Probe::Http(Template::parse("http://{ip}:2379/health").unwrap())));
        assert_eq!(etcd.ready_timeout, Duration::from_millis(1500));
        assert_eq!(etcd.after, ["db"]);
        assert_eq!(etcd.stop_timeout, Duration::from_secs(5));
        assert_eq!(etcd.binds, [(PathBuf::from("/var/lib/etcd"), Template::parse("{data}").unwrap())]);
        assert_eq!(etcd.reset.iter().map(Template::source).collect::<Vec<_>>(), ["etcdctl", "del", "--prefix", ""]);
        assert_eq!(etcd.restart_with, ["db"]);
        assert!(db.reset.is_empty() && db.restart_with.is_empty());
    }

    #[test]
    fn defaults_and_node_names() {
        let spec = parse_str("[network]\nnodes = [\"alpha\", \"beta\"]\n").unwrap();
        assert_eq!(spec.name, "test-net");
        assert_eq!(spec.nodes, ["alpha", "beta"]);
        assert_eq!(spec.subnet, None);
        assert!(!spec.ipv6 && !spec.keep_data);
        assert_eq!(spec.run_root, NetworkSpec::new("x", 1).run_root);
        assert!(spec.url.is_none() && spec.services.is_empty());
    }

    #[test]
    fn errors_point_at_the_field() {
        // (manifest, line of the error, start of the message)
        const SVC: &str = "[network]\nnodes = 3\n\n[[service]]\nname = \"a\"\ncommand = \"true\"\n";
        let cases: &[(&str, usize, &str)] = &[
            ("[network]\nnodes = 3 x\n", 2, "string values must be quoted"),
            ("[network\nnodes = 3\n", 1, "unclosed table"),
            ("[network]\nnodes = 3\nnodes = 4\n", 3, "duplicate key"),
            ("[network]\nnodes = 3\ncolour = \"red\"\n", 3, "network.colour: unknown field `colour`"),
            ("[network]\n", 1, "network: missing field `nodes`"),
            ("[network]\nnodes = 3\nipv6 = \"yes\"\n", 3, "network.ipv6: invalid type"),
            (&format!("{SVC}colour = 1\n"), 7, "service[0].colour: unknown field `colour`"),
            (&format!("{SVC}ready = {{ htp = \"x\" }}\n"), 7, "service[0].ready.htp: unknown field `htp`"),
            (&format!("{SVC}ready = {{ tcp = 0 }}\n"), 7, "service[0].ready.tcp: invalid value: integer `0`"),
            (
                &format!("{SVC}ready_timeout = \"10 parsecs\"\n"),
                7,
                "service[0].ready_timeout: invalid duration: '10 parsecs' (use e.g. 500ms",
            ),
            (&format!("{SVC}stop_timeout = \"-5s\"\n"), 7, "service[0].stop_timeout: invalid duration: '-5s'"),
            (
                &format!("{SVC}args = [\"x\",\n  \"{{nope}}\"]\n"),
                8,
                "service[0].args[1]: invalid template '{nope}': unknown placeholder",
            ),
            (&format!("{SVC}env = {{ A = \"{{ip\" }}\n"), 7, "service[0].env.A: invalid template '{ip'"),
            (&format!("{SVC}binds = {{ \"/x\" = \"}}\" }}\n"), 7, "service[0].binds.\"/x\": invalid template"),
            (
                "[network]\nnodes = 3\n[[service]]\nname = \"a\"\ncommand = \"{x}\"\n",
                5,
                "service[0].command: invalid template '{x}'",
            ),
            (
                &format!("{SVC}\n[[service]]\nname = \"a\"\ncommand = \"true\"\n"),
                9,
                "service[1].name: duplicate service name 'a'",
            ),
            (
                &format!("{SVC}after = [\"db\"]\n"),
                7,
                "service[0].after: invalid service a: 'after' names unknown service 'db'",
            ),
            (
                &format!("{SVC}after = []\nrestart_with = [\"db\"]\n"),
                8,
                "service[0].restart_with: invalid service a: 'restart_with' names 'db'",
            ),
            (
                &format!("{SVC}ready = {{ http = \"http://{{ip}}/\", tcp = 80 }}\n"),
                7,
                "service[0].ready: give one of http",
            ),
            (&format!("{SVC}ready = {{}}\n"), 7, "service[0].ready: give one of http"),
            ("[network]\nname = \"a b\"\nnodes = 3\n", 2, "network.name: invalid network name: 'a b'"),
            ("[network]\nnodes = 0\n", 2, "network.nodes: invalid nodes: 0 nodes"),
            ("[network]\nnodes = 5000\n", 2, "network.nodes: 5000 nodes: a network has 1 to 1023"),
            ("[network]\nnodes = -1\n", 2, "network.nodes: -1 nodes"),
            ("[network]\nnodes = \"3\"\n", 2, "network.nodes: expected a node count"),
            ("[network]\nnodes = [\"a\", 1]\n", 2, "network.nodes: node names must be strings"),
            ("[network]\nnodes = [\"a\", \"a\"]\n", 2, "network.nodes: duplicate node name 'a'"),
            ("[network]\nnodes = 3\nsubnet = \"10.0.0/24\"\n", 3, "network.subnet: invalid subnet: '10.0.0/24'"),
            (
                "[network]\nnodes = 10\nsubnet = \"10.1.0.0/29\"\n",
                3,
                "network.subnet: subnet: 10.1.0.0/29 holds 5 nodes",
            ),
            ("[network]\nnodes = 3\nurl = \"http://{ipp}/\"\n", 3, "network.url: invalid template"),
            ("[[service]]\nname = \"a\"\ncommand = \"true\"\n", 1, "missing field `network`"),
        ];
        assert_errors(cases);
    }

    /// Asserts that each manifest fails on the line given, with a message that starts so.
    fn assert_errors(cases: &[(&str, usize, &str)]) {
        for (text, line, phrase) in cases {
            match parse_str(text) {
                Err(Error::Manifest { path, line: got, message, .. }) => {
                    assert_eq!(path, Path::new("/etc/nets/test-net.toml"));
                    assert!(message.starts_with(phrase), "{text:?}: {message:?} does not start with {phrase:?}");
                    assert_eq!(got, *line, "{text:?}: {message}");
                }
                other => panic!("{text:?}: expected a manifest error, got {other:?}"),
            }
        }
    }

    #[test]
    fn conditions() {
        let spec = parse_str(
            r#"
[network]
nodes = 3
partition = [["node0"], ["node1", "2"]]

[[qos]]
node = "node1"
direction = "send"
delay = "100ms"
jitter = "10ms"
correlation = "25%"
distribution = "normal"
loss = "1%"
loss_correlation = "25%"
duplicate = "1%"
duplicate_correlation = "5%"
corrupt = "0.1%"
corrupt_correlation = "6%"
reorder = "10%"
reorder_correlation = "7%"
gap = 5
rate = "10mbit"
limit = 1000

[[qos]]
from = "node0"
to = "node2"
both_ways = true
delay = "50ms"

[[qos]]
from = "0"
to = "node1"
loss = "2%"

[[qos]]
node = "node2"
rate = "1mbit"

[[clock]]
node = "node2"
offset = "+1h"
boottime = "-10s"
tz = "Asia/Tokyo"

[[clock]]
node = "1"
monotonic = "+2m"
"#,
        )
        .unwrap();
        let ms = Duration::from_millis;
        let chance = |percent, correlation| Chance { percent: Percent(percent), correlation: Percent(correlation) };
        let full = Qos {
            delay: ms(100),
            jitter: ms(10),
            delay_correlation: Percent(25.0),
            distribution: crate::shaping::Distribution::Normal,
            loss: Loss::Random { percent: Percent(1.0), correlation: Percent(25.0) },
            duplicate: chance(1.0, 5.0),
            corrupt: chance(0.1, 6.0),
            reorder: Reorder { percent: Percent(10.0), correlation: Percent(7.0), gap: 5 },
            rate: Some("10mbit".parse().unwrap()),
            limit: Some(1000),
        };
        let [node, pair, one_way, default] = &spec.conditions.qos[..] else { panic!("four rules") };
        assert!(
            matches!(node, QosRule::Node { node, direction: Direction::Send, qos } if node == "node1" && *qos == full)
        );
        let delay = Qos { delay: ms(50), ..Qos::default() };
        assert!(
            matches!(pair, QosRule::Pair { from, to, both: true, qos } if from == "node0" && to == "node2" && *qos == delay)
        );
        let loss = Qos { loss: Loss::Random { percent: Percent(2.0), correlation: Percent::ZERO }, ..Qos::default() };
        assert!(
            matches!(one_way, QosRule::Pair { from, to, both: false, qos } if from == "0" && to == "node1" && *qos == loss)
        );
        let rate = Qos { rate: Some("1mbit".parse().unwrap()), ..Qos::default() };
        assert!(matches!(default, QosRule::Node { direction: Direction::Both, qos, .. } if *qos == rate));

        let hour: Offset = "+1h".parse().unwrap();
        let node2 = ClockSkew { boottime: "-10s".parse().unwrap(), ..ClockSkew::offset(hour) }.tz("Asia/Tokyo");
        let node1 = ClockSkew { monotonic: "+2m".parse().unwrap(), ..ClockSkew::default() };
        assert_eq!(spec.conditions.clocks, [("node2".to_string(), node2), ("1".to_string(), node1)]);
        assert_eq!(spec.conditions.partition, Some(vec![vec!["node0".to_string()], vec!["node1".into(), "2".into()]]));
        spec.validate().unwrap();

        let plain = parse_str("[network]\nnodes = 2\n").unwrap();
        assert!(
            plain.conditions.qos.is_empty()
                && plain.conditions.clocks.is_empty()
                && plain.conditions.partition.is_none()
        );
    }

    #[test]
    fn condition_errors_point_at_the_field() {
        // [[qos]] and [[clock]] tables start on line 4, their first field is on line 5.
        const QOS: &str = "[network]\nnodes = 3\n\n[[qos]]\nnode = \"node1\"\n";
        const PAIR: &str = "[network]\nnodes = 3\n\n[[qos]]\nfrom = \"node0\"\nto = \"node1\"\n";
        const CLOCK: &str = "[network]\nnodes = 3\n\n[[clock]]\nnode = \"node1\"\n";
        let cases: &[(&str, usize, &str)] = &[
            (
                &format!("{PAIR}node = \"node2\"\n"),
                4,
                "qos[0]: give either node = \"NAME\" or both from = \"NAME\" and to = \"NAME\"",
            ),
            ("[network]\nnodes = 3\n\n[[qos]]\nfrom = \"node0\"\n", 4, "qos[0]: give either node"),
            ("[network]\nnodes = 3\n\n[[qos]]\ndelay = \"1ms\"\n", 4, "qos[0]: give either node"),
            (
                &format!("{QOS}loss = \"150%\"\n"),
                6,
                "qos[0].loss: invalid percentage: 150% is out of range (allowed: 0% to 100%)",
            ),
            (
                &format!("{QOS}delay = \"1ms\"\njitter = \"1ms\"\ndistribution = \"gaussian\"\n"),
                8,
                "qos[0].distribution: invalid distribution: 'gaussian' (allowed: uniform, normal",
            ),
            (&format!("{QOS}delay = \"1 ms\"\n"), 6, "qos[0].delay: invalid duration: '1 ms'"),
            (&format!("{QOS}rate = \"10mb\"\n"), 6, "qos[0].rate: invalid rate: '10mb'"),
            (&format!("{QOS}delya = \"1ms\"\n"), 6, "qos[0].delya: unknown field `delya`"),
            (&format!("{QOS}direction = \"sideways\"\n"), 6, "qos[0].direction: unknown variant `sideways`"),
            (&format!("{QOS}gap = -1\n"), 6, "qos[0].gap: invalid value"),
            (&format!("{QOS}both_ways = true\n"), 6, "qos[0].both_ways: only a pair (from, to) goes both ways"),
            (&format!("{PAIR}direction = \"send\"\n"), 7, "qos[0].direction: only for a node"),
            ("[network]\nnodes = 3\n\n[[qos]]\nnode = \"node9\"\n", 5, "qos[0].node: unknown node 'node9'"),
            (
                "[network]\nnodes = 3\n\n[[qos]]\nnode = \"3\"\n",
                5,
                "qos[0].node: unknown node '3' (the network has node0, node1, node2, or an index below 3)",
            ),
            ("[network]\nnodes = 3\n\n[[qos]]\nfrom = \"node0\"\nto = \"x\"\n", 6, "qos[0].to: unknown node 'x'"),
            (
                "[network]\nnodes = 3\n\n[[qos]]\nfrom = \"node1\"\nto = \"1\"\n",
                4,
                "qos[0]: invalid qos: node1 and 1 are the same node",
            ),
            (&format!("{QOS}jitter = \"10ms\"\n"), 4, "qos[0]: invalid jitter: 10ms needs a delay"),
            (&format!("{QOS}limit = 0\n"), 4, "qos[0]: invalid limit: must be at least 1 packet"),
            (
                &format!("{QOS}\n[[qos]]\nnode = \"node0\"\nreorder = \"5%\"\n"),
                7,
                "qos[1]: invalid reorder: reorder needs a delay",
            ),
            (
                &format!("{CLOCK}offset = \"+1 fortnight\"\n"),
                6,
                "clock[0].offset: invalid clock offset: '+1 fortnight': use a signed duration",
            ),
            (&format!("{CLOCK}boottime = \"1h+\"\n"), 6, "clock[0].boottime: invalid clock offset: '1h+'"),
            (
                &format!("{CLOCK}tz = \"Mars/Olympus_Mons\"\n"),
                6,
                "clock[0].tz: invalid time zone: 'Mars/Olympus_Mons' is not in /usr/share/zoneinfo",
            ),
            (&format!("{CLOCK}tz = \"../../etc/passwd\"\n"), 6, "clock[0].tz: invalid time zone"),
            ("[network]\nnodes = 3\n\n[[clock]]\nnode = \"nodeX\"\n", 5, "clock[0].node: unknown node 'nodeX'"),
            ("[network]\nnodes = 3\n\n[[clock]]\ntz = \"UTC\"\n", 4, "clock[0]: missing field `node`"),
            (&format!("{CLOCK}offset = 5\n"), 6, "clock[0].offset: invalid type"),
            (
                "[network]\nnodes = 3\npartition = [[\"node0\"],\n  [\"node1\", \"nodeX\"]]\n",
                4,
                "network.partition[1][1]: unknown node 'nodeX'",
            ),
            (
                "[network]\nnodes = 3\npartition = [[\"node0\"], [\"0\"]]\n",
                3,
                "network.partition: invalid partition: node 0 is in two groups",
            ),
            ("[network]\nnodes = 3\npartition = [\"node0\"]\n", 3, "network.partition[0]: invalid type"),
        ];
        assert_errors(cases);
    }

    #[test]
    fn column_and_display() {
        let err = parse_str(
            "[network]\nnodes = 3\n\n[[service]]\nname = \"a\"\ncommand = \"true\"\nstop_timeout = \"5 s\"\n",
        );
        let err = err.unwrap_err();
        assert!(matches!(err, Error::Manifest { line: 7, column: 16, .. }), "{err:?}");
        assert!(err.to_string().starts_with("/etc/nets/test-net.toml:7:16: service[0].stop_timeout: "), "{err}");
    }

    #[test]
    fn load_names_the_file() {
        let err = load(Path::new("/nonexistent/net.toml")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/net.toml"), "{err}");
    }

    #[test]
    fn lossy_example() {
        let spec = parse(include_str!("../examples/lossy.toml"), Path::new("examples/lossy.toml")).unwrap();
        assert_eq!((spec.name.as_str(), spec.nodes.len()), ("lossy", 3));
        let node2 = Qos {
            delay: Duration::from_millis(100),
            loss: Loss::Random { percent: Percent(1.0), correlation: Percent::ZERO },
            ..Qos::default()
        };
        assert!(
            matches!(&spec.conditions.qos[0], QosRule::Node { node, direction: Direction::Both, qos } if node == "node2" && *qos == node2)
        );
        assert!(matches!(&spec.conditions.qos[1], QosRule::Pair { both: true, .. }));
        assert_eq!(spec.conditions.clocks.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["node1"]);
    }

    #[test]
    fn etcd_example() {
        let spec = parse(include_str!("../examples/etcd.toml"), Path::new("examples/etcd.toml")).unwrap();
        spec.validate().unwrap();
        assert_eq!(spec.name, "etcd");
        assert_eq!(spec.nodes.len(), 3);
        let [etcd] = &spec.services[..] else { panic!("one service") };
        assert!(matches!(etcd.ready, Some(Probe::Http(_))));

        let nodes: Vec<_> =
            (0..3u8).map(|i| NodeVars { name: format!("node{i}"), ip: Ipv4Addr::new(10, 0, 0, 2 + i) }).collect();
        let vars = Vars {
            index: 1,
            nodes: &nodes,
            data: Path::new("/run/node1/etcd"),
            dir: Path::new("/run/node1"),
            network: &spec.name,
            subnet: "10.0.0.0/24",
            host: Ipv4Addr::new(10, 0, 0, 1),
        };
        let args: Vec<_> = etcd.args.iter().map(|a| a.render(&vars)).collect();
        let cluster = args.iter().position(|a| a == "--initial-cluster").expect("--initial-cluster");
        assert_eq!(
            args[cluster + 1],
            "node0=http://10.0.0.2:2380,node1=http://10.0.0.3:2380,node2=http://10.0.0.4:2380"
        );
        assert!(args.windows(2).any(|w| w == ["--advertise-client-urls", "http://10.0.0.3:2379"]));
    }
}
