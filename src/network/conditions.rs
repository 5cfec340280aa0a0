//! The conditions a spec sets up right after bring-up, before any service starts: clocks,
//! link shaping, partition.

use super::Network;
use crate::clock::ClockSkew;
use crate::error::Result;
use crate::spec::{Conditions, QosRule};

impl Network {
    /// Applies `conditions`: clocks first, then the shaping rules in order, then the partition.
    pub(crate) fn apply_conditions(&self, conditions: &Conditions) -> Result<()> {
        for (node, skew) in &conditions.clocks {
            self.apply_clock(node, skew)?;
        }
        for rule in &conditions.qos {
            self.apply_qos_rule(rule)?;
        }
        match &conditions.partition {
            Some(groups) => self.apply_partition(groups),
            None => Ok(()),
        }
    }

    /// Sets a node's clocks. No service runs yet, so none needs a restart; the ones whose
    /// wall clock libfaketime cannot move are logged.
    fn apply_clock(&self, node: &str, skew: &ClockSkew) -> Result<()> {
        let node = self.node(node)?;
        let report = node.configure_clock(skew.clone())?;
        for (service, reason) in report.wall_clock_unchanged {
            tracing::warn!("{}/{service} keeps the host's wall clock: {reason}", node.name());
        }
        Ok(())
    }

    /// Applies one shaping rule on top of the ones before it.
    fn apply_qos_rule(&self, rule: &QosRule) -> Result<()> {
        match rule {
            QosRule::Node { node, direction, qos } => self.configure_qos(node, *direction, *qos),
            QosRule::Pair { from, to, both: false, qos } => self.configure_pair_qos(from, to, *qos),
            QosRule::Pair { from, to, both: true, qos } => self.configure_pair_qos_both(from, to, *qos),
        }
    }

    /// Cuts the network into `groups`, as [`Network::partition`] does.
    fn apply_partition(&self, groups: &[Vec<String>]) -> Result<()> {
        let groups: Vec<Vec<&str>> = groups.iter().map(|g| g.iter().map(String::as_str).collect()).collect();
        let groups: Vec<&[&str]> = groups.iter().map(Vec::as_slice).collect();
        self.partition(&groups)
    }
}
