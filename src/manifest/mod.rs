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

use std::path::Path;

use toml::Spanned;

use crate::error::{Context, Error, Result};
use crate::spec::NetworkSpec;
use convert::Doc;
use raw::RawManifest;

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
