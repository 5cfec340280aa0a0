//! From the raw manifest to a [`NetworkSpec`]: each value parsed and checked, each error
//! blamed on its field with `path:line:column`.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::raw::{RawClock, RawNetwork, RawProbe, RawQos, RawService};
use crate::clock::{ClockSkew, Drift, Offset};
use crate::error::{Error, Result};
use crate::shaping::{Direction, Qos};
use crate::spec::{
    check_bind_target, check_http_probe, check_name, partition_groups, NetworkSpec, Probe, QosRule, QosTarget,
    ServiceSpec, MAX_NODES,
};
use crate::template::Template;
use crate::units::parse_duration;

/// The manifest being parsed: turns byte offsets into `path:line:column` errors.
pub(super) struct Doc<'a> {
    pub(super) text: &'a str,
    pub(super) path: &'a Path,
}

impl Doc<'_> {
    pub(super) fn network(&self, raw: &RawNetwork) -> Result<NetworkSpec> {
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
        spec.subnet6 = raw.subnet6.as_ref().map(|s| self.field("network.subnet6", s, str::parse)).transpose()?;
        if let Some(root) = &raw.run_root {
            spec.run_root = self.field("network.run_root", root, check_run_root)?;
        }
        spec.keep_data = raw.keep_data;
        spec.wall_clock = raw.wall_clock.unwrap_or(true);
        spec.url = raw.url.as_ref().map(|u| self.field("network.url", u, Template::parse)).transpose()?;
        Ok(spec)
    }

    pub(super) fn service(&self, i: usize, raw: &RawService) -> Result<ServiceSpec> {
        let at = |field: &str| format!("service[{i}].{field}");
        let name = self.field(&at("name"), &raw.name, |n| check_name(n).map(|()| n.to_string()))?;
        let mut spec = self.field(&at("command"), &raw.command, |c| ServiceSpec::new(name.as_str(), c))?;
        for (j, arg) in raw.args.iter().enumerate() {
            spec.args.push(self.field(&at(&format!("args[{j}]")), arg, Template::parse)?);
        }
        for (key, value) in &raw.env {
            spec.env.push((key.clone(), self.field(&at(&format!("env.{}", quote(key))), value, Template::parse)?));
        }
        spec.workdir = raw.workdir.as_ref().map(|w| self.field(&at("workdir"), w, Template::parse)).transpose()?;
        spec.ready = raw.ready.as_ref().map(|ready| self.probe(&name, &at("ready"), ready)).transpose()?;
        if let Some(timeout) = &raw.ready_timeout {
            spec.ready_timeout = self.field(&at("ready_timeout"), timeout, parse_duration)?;
        }
        spec.after = raw.after.as_ref().map(|a| a.get_ref().clone()).unwrap_or_default();
        if let Some(timeout) = &raw.stop_timeout {
            spec.stop_timeout = self.field(&at("stop_timeout"), timeout, parse_duration)?;
        }
        for (inside, source) in &raw.binds {
            let field = at(&format!("binds.{}", quote(inside)));
            let source = self.field(&field, source, |s| {
                check_bind_target(&name, Path::new(inside))?;
                Template::parse(s)
            })?;
            spec.binds.push((PathBuf::from(inside), source));
        }
        for (j, arg) in raw.reset.iter().enumerate() {
            spec.reset.push(self.field(&at(&format!("reset[{j}]")), arg, Template::parse)?);
        }
        spec.restart_with = raw.restart_with.as_ref().map(|a| a.get_ref().clone()).unwrap_or_default();
        if let Some(config) = &raw.config {
            let config = config.get_ref();
            let path = self.field(&at("config.path"), &config.path, Template::parse)?;
            spec.config = Some((path, config.format));
        }
        Ok(spec)
    }

    fn probe(&self, service: &str, field: &str, ready: &Spanned<RawProbe>) -> Result<Probe> {
        match ready.get_ref() {
            RawProbe { http: Some(url), tcp: None } => self
                .field(&format!("{field}.http"), url, |u| {
                    let url = Template::parse(u)?;
                    check_http_probe(service, &url)?;
                    Ok(url)
                })
                .map(Probe::Http),
            RawProbe { http: None, tcp: Some(port) } => Ok(Probe::Tcp(port.get())),
            _ => Err(self.error(ready.span(), format!("{field}: give one of http = \"URL\" or tcp = PORT"))),
        }
    }

    /// A `[[qos]]` table as a rule: each node it names checked, each value parsed, then the
    /// combinations.
    pub(super) fn qos_rule(&self, spec: &NetworkSpec, i: usize, table: &Spanned<RawQos>) -> Result<QosRule> {
        let at = |field: &str| format!("qos[{i}].{field}");
        let raw = table.get_ref();
        let node = |field: &str, key: &Spanned<String>| {
            self.field(&at(field), key, |k| spec.node_index(k)).map(|_| key.get_ref().clone())
        };
        let qos = self.qos(&at, raw)?;
        let target = match (&raw.node, &raw.from, &raw.to) {
            (Some(key), None, None) => {
                if let Some(both) = &raw.both_ways {
                    return Err(
                        self.error(both.span(), format!("{}: only a pair (from, to) goes both ways", at("both_ways")))
                    );
                }
                let direction = raw.direction.as_ref().map_or(Direction::Both, |d| *d.get_ref());
                QosTarget::Node { node: node("node", key)?, direction }
            }
            (None, Some(from), Some(to)) => {
                if let Some(direction) = &raw.direction {
                    let message =
                        "only for a node; a pair shapes what `from` sends to `to` (both_ways = true for both)";
                    return Err(self.error(direction.span(), format!("{}: {message}", at("direction"))));
                }
                let both_ways = raw.both_ways.as_ref().is_some_and(|b| *b.get_ref());
                QosTarget::Pair { from: node("from", from)?, to: node("to", to)?, both_ways }
            }
            _ => {
                let message = "give either node = \"NAME\" or both from = \"NAME\" and to = \"NAME\", not both kinds";
                return Err(self.error(table.span(), format!("qos[{i}]: {message}")));
            }
        };
        // What is left spans fields: that a pair's ends differ, and the shaping's combinations.
        let whole = |e: Error| self.error(table.span(), format!("qos[{i}]: {e}"));
        target.resolve(spec.nodes.iter().map(String::as_str)).map_err(whole)?;
        qos.validate().map_err(whole)?;
        let rule = QosRule { target, qos };
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
            self.optional(&at(key), value.as_ref(), |text| qos.set(key, text))?;
        }
        Ok(qos)
    }

    /// A `[[clock]]` table as the node it names and its clocks.
    pub(super) fn clock(&self, spec: &NetworkSpec, i: usize, table: &Spanned<RawClock>) -> Result<(String, ClockSkew)> {
        let at = |field: &str| format!("clock[{i}].{field}");
        let raw = table.get_ref();
        self.field(&at("node"), &raw.node, |k| spec.node_index(k))?;
        let offset = |field: &str, value: &Option<Spanned<String>>| {
            self.optional(&at(field), value.as_ref(), str::parse::<Offset>)
        };
        let all = offset("offset", &raw.offset)?.unwrap_or_default();
        if let Some(tz) = &raw.tz {
            self.field(&at("tz"), tz, |tz| ClockSkew::default().tz(tz).validate())?;
        }
        let skew = ClockSkew {
            realtime: offset("realtime", &raw.realtime)?.unwrap_or(all),
            drift: self.optional(&at("drift"), raw.drift.as_ref(), str::parse::<Drift>)?.unwrap_or_default(),
            monotonic: offset("monotonic", &raw.monotonic)?.unwrap_or(all),
            boottime: offset("boottime", &raw.boottime)?.unwrap_or(all),
            tz: raw.tz.as_ref().map(|tz| tz.get_ref().clone()),
        };
        // What is left to check spans fields: the range each clock keeps to.
        skew.validate().map_err(|e| self.error(table.span(), format!("clock[{i}]: {e}")))?;
        Ok((raw.node.get_ref().clone(), skew))
    }

    /// `network.partition`: groups of known nodes, none in two groups.
    pub(super) fn partition(
        &self,
        spec: &NetworkSpec,
        raw: &Spanned<Vec<Vec<Spanned<String>>>>,
    ) -> Result<Vec<Vec<String>>> {
        let mut groups = Vec::new();
        for (g, members) in raw.get_ref().iter().enumerate() {
            let mut group = Vec::new();
            for (m, key) in members.iter().enumerate() {
                self.field(&format!("network.partition[{g}][{m}]"), key, |k| spec.node_index(k))?;
                group.push(key.get_ref().clone());
            }
            groups.push(group);
        }
        partition_groups(&groups, spec.nodes.iter().map(String::as_str))
            .map_err(|e| self.error(raw.span(), format!("network.partition: {e}")))?;
        Ok(groups)
    }

    /// Parses an optional string field, blaming errors on it.
    fn optional<T>(
        &self,
        field: &str,
        value: Option<&Spanned<String>>,
        parse: impl FnOnce(&str) -> Result<T>,
    ) -> Result<Option<T>> {
        value.map(|v| self.field(field, v, parse)).transpose()
    }

    /// Parses a string field, blaming errors on it.
    fn field<T>(&self, field: &str, value: &Spanned<String>, parse: impl FnOnce(&str) -> Result<T>) -> Result<T> {
        parse(value.get_ref()).map_err(|e| self.error(value.span(), format!("{field}: {e}")))
    }

    /// A syntax error, or a field serde could not deserialize.
    pub(super) fn toml_error(&self, err: &toml::de::Error) -> Error {
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

    pub(super) fn error(&self, span: Range<usize>, message: impl Into<String>) -> Error {
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

/// A run root as written: absolute, and if it exists, a directory (the rest is checked at
/// bring-up, where it is made).
fn check_run_root(root: &str) -> Result<PathBuf> {
    let path = PathBuf::from(root);
    let bad = |message: String| Err(Error::invalid("run_root", message));
    if root.is_empty() {
        return bad("it is empty; give an absolute directory such as /var/tmp/netdriver".into());
    }
    if !path.is_absolute() {
        return bad(format!("{root} is relative; give an absolute directory"));
    }
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_symlink() => bad(format!("{root} is a symlink; give the real path")),
        Ok(meta) if !meta.is_dir() => bad(format!("{root} is not a directory")),
        _ => Ok(path),
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
pub(super) fn quote(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}
