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

use crate::error::{Context, Error, Result};
use crate::spec::{NetworkSpec, Probe, ServiceSpec, MAX_NODES};
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
            let (field, span) = match &service.after {
                Some(after) if !names => ("after", after.span()),
                _ => ("name", service.name.span()),
            };
            doc.error(span, format!("service[{i}].{field}: {e}"))
        })?;
    }
    Ok(spec)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    network: Spanned<RawNetwork>,
    #[serde(default)]
    service: Vec<RawService>,
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    http: Option<Spanned<String>>,
    tcp: Option<NonZeroU16>,
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
