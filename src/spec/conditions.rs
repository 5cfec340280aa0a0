//! Network conditions: link shaping rules, per-node clocks and partitions, named by node.
//!
//! The same types serve a spec (set up before services start), the live network's calls, the
//! control protocol and the Python binding; each resolves node names the same way, here.

use crate::clock::ClockSkew;
use crate::error::{Error, Result};
use crate::shaping::{Direction, Qos};

use super::find_node;

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
    pub(super) fn validate(&self, names: &[String]) -> Result<()> {
        let names = || names.iter().map(String::as_str);
        for (node, skew) in &self.clocks {
            find_node(node, names())?;
            skew.validate()?;
        }
        for rule in &self.qos {
            rule.target.resolve(names())?;
            rule.qos.validate()?;
        }
        match &self.partition {
            Some(groups) => partition_groups(groups, names()).map(drop),
            None => Ok(()),
        }
    }
}

/// What a shaping applies to: a node's traffic, or what one node sends another.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum QosTarget {
    /// What a node sends, receives, or both.
    Node {
        /// The node's name or index.
        node: String,
        /// Which of its traffic.
        direction: Direction,
    },
    /// What `from` sends to `to`, and with `both_ways` what `to` sends to `from` too.
    Pair {
        /// The sending node's name or index.
        from: String,
        /// The receiving node's name or index.
        to: String,
        /// Whether the way back is shaped the same.
        both_ways: bool,
    },
}

/// A [`QosTarget`] with its nodes resolved to indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// A node and a direction.
    Node(usize, Direction),
    /// (from, to, both ways).
    Pair(usize, usize, bool),
}

impl QosTarget {
    /// The traffic of `node` in `direction`.
    pub fn node(node: impl Into<String>, direction: Direction) -> QosTarget {
        QosTarget::Node { node: node.into(), direction }
    }

    /// What `from` sends to `to`.
    pub fn pair(from: impl Into<String>, to: impl Into<String>) -> QosTarget {
        QosTarget::Pair { from: from.into(), to: to.into(), both_ways: false }
    }

    /// The traffic between `a` and `b`, both ways.
    pub fn both_ways(a: impl Into<String>, b: impl Into<String>) -> QosTarget {
        QosTarget::Pair { from: a.into(), to: b.into(), both_ways: true }
    }

    /// The node indexes among `names`; a pair's ends must differ.
    pub(crate) fn resolve<'a>(&self, names: impl Iterator<Item = &'a str> + Clone) -> Result<Resolved> {
        match self {
            QosTarget::Node { node, direction } => Ok(Resolved::Node(find_node(node, names)?, *direction)),
            QosTarget::Pair { from, to, both_ways } => {
                let (a, b) = (find_node(from, names.clone())?, find_node(to, names)?);
                if a == b {
                    return Err(Error::invalid("qos", format!("{from} and {to} are the same node")));
                }
                Ok(Resolved::Pair(a, b, *both_ways))
            }
        }
    }
}

/// One link-shaping rule: what it shapes, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct QosRule {
    /// The traffic it shapes.
    pub target: QosTarget,
    /// The shaping.
    pub qos: Qos,
}

/// What a partition or block cuts in a live network: nothing the `from` nodes send reaches
/// the `to` nodes. A partition into k groups is k cuts (each group from all the others); a
/// one-way block is one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cut {
    /// The senders.
    pub from: Vec<String>,
    /// The receivers they cannot reach.
    pub to: Vec<String>,
}

/// The group of each node (by index, among `names`) for partition `groups`: nodes in no
/// group form one more group, numbered `groups.len()`. A node may be in one group only.
pub(crate) fn partition_groups<'a, G, N>(
    groups: impl IntoIterator<Item = G>,
    names: impl Iterator<Item = &'a str>,
) -> Result<Vec<usize>>
where
    G: IntoIterator<Item = N>,
    N: AsRef<str>,
{
    let names: Vec<&str> = names.collect();
    let groups: Vec<Vec<N>> = groups.into_iter().map(|g| g.into_iter().collect()).collect();
    let mut group_of = vec![groups.len(); names.len()];
    for (g, members) in groups.iter().enumerate() {
        for key in members {
            let i = find_node(key.as_ref(), names.iter().copied())?;
            if group_of[i] != groups.len() {
                return Err(Error::invalid("partition", format!("node {} is in two groups", key.as_ref())));
            }
            group_of[i] = g;
        }
    }
    Ok(group_of)
}
