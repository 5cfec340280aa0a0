//! Manifests: a [`NetworkSpec`] written as a TOML file.
//!
//! ```toml
//! [network]
//! name = "etcd"                   # default: the file's stem
//! nodes = 3                       # node0, node1, node2; or names: ["a", "b"]
//! subnet = "10.77.0.0/24"         # default: a free one
//! ipv6 = false                   # true: dual stack, {ip6} and %ip6 in templates
//! subnet6 = "fd00:6e64:1::/64"    # with ipv6; default: a free unique local /64
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
//! config = { path = "{data}/etcd.toml", format = "toml" }   # or "json": what `configure` edits
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

mod convert;
mod raw;
#[cfg(test)]
mod tests;

use std::io::Read as _;
use std::path::Path;

use toml::Spanned;

use crate::error::{Error, Result};
use crate::spec::NetworkSpec;
use convert::Doc;
use raw::RawManifest;

/// The largest manifest read: far more than any network needs, far less than a mistake such as
/// `-f /dev/zero` would read.
pub const MAX_SIZE: u64 = 1 << 20;

/// Reads the manifest at `path` (a regular file of at most [`MAX_SIZE`] bytes) and parses it
/// with [`parse`].
pub fn load(path: &Path) -> Result<NetworkSpec> {
    let read = |e| Error::io(format!("reading manifest {}", path.display()), e);
    let file = std::fs::File::open(path).map_err(read)?;
    if !file.metadata().map_err(read)?.is_file() {
        return Err(Error::invalid("manifest", format!("{} is not a regular file", path.display())));
    }
    let mut text = String::new();
    file.take(MAX_SIZE + 1).read_to_string(&mut text).map_err(read)?;
    if text.len() as u64 > MAX_SIZE {
        return Err(Error::invalid(
            "manifest",
            format!("{} is larger than 1 MiB; a manifest is a few lines", path.display()),
        ));
    }
    parse(&text, path)
}

/// Parses and validates manifest `text`; `path` is the file it came from, named in errors and
/// the network's name when the manifest gives none.
pub fn parse(text: &str, path: &Path) -> Result<NetworkSpec> {
    let doc = Doc { text, path };
    let raw: RawManifest = toml::from_str(text).map_err(|e| doc.toml_error(&e))?;
    let network = raw.network.get_ref();
    let mut spec = doc.network(network)?;
    spec.validate_network().map_err(|e| {
        let (field, span) = match &e {
            Error::Subnet(_) => ("subnet", network.subnet.as_ref().map(Spanned::span)),
            Error::Invalid { what, .. } if what == "subnet" => ("subnet", network.subnet.as_ref().map(Spanned::span)),
            Error::Invalid { what, .. } if what == "subnet6" => {
                ("subnet6", network.subnet6.as_ref().map(Spanned::span))
            }
            Error::Invalid { what, .. } if what == "network name" => ("name", network.name.as_ref().map(Spanned::span)),
            _ => ("nodes", Some(network.nodes.span())),
        };
        doc.error(span.unwrap_or(raw.network.span()), format!("network.{field}: {e}"))
    })?;
    for (i, service) in raw.service.iter().enumerate() {
        let service = doc.service(i, service)?;
        if spec.services.iter().any(|s| s.name == service.name) {
            let name = raw.service[i].name.span();
            return Err(doc.error(
                name,
                format!("service[{i}].name: duplicate service name '{}': names must be unique", service.name),
            ));
        }
        spec.services.push(service);
    }
    // What services name of each other, once all are known: any may name any other. An error
    // names its service ("service NAME: ..."): blame that service's field.
    let blame = |e: Error| {
        let text = e.to_string();
        let Some(i) = spec.services.iter().position(|s| text.starts_with(&format!("invalid service {}:", s.name)))
        else {
            return doc.error(raw.network.span(), text);
        };
        let service = &raw.service[i];
        let (field, span) = match (&service.after, &service.restart_with) {
            (_, Some(with)) if text.contains("'restart_with'") => ("restart_with", with.span()),
            (Some(after), _) => ("after", after.span()),
            _ => ("name", service.name.span()),
        };
        doc.error(span, format!("service[{i}].{field}: {text}"))
    };
    (0..spec.services.len()).try_for_each(|i| spec.check_references(i)).map_err(blame)?;
    spec.levels().map_err(blame)?;
    spec.validate().map_err(|e| doc.error(raw.network.span(), e.to_string()))?;
    spec.conditions.clocks =
        raw.clock.iter().enumerate().map(|(i, c)| doc.clock(&spec, i, c)).collect::<Result<_>>()?;
    spec.conditions.qos = raw.qos.iter().enumerate().map(|(i, q)| doc.qos_rule(&spec, i, q)).collect::<Result<_>>()?;
    spec.conditions.partition = network.partition.as_ref().map(|p| doc.partition(&spec, p)).transpose()?;
    if let Some(nemesis) = &raw.nemesis {
        nemesis.get_ref().validate().map_err(|e| doc.error(nemesis.span(), format!("nemesis: {e}")))?;
        spec.nemesis = Some(nemesis.get_ref().clone());
    }
    Ok(spec)
}
