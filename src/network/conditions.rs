//! The conditions a spec sets up right after bring-up, before any service starts: clocks,
//! link shaping, partition.

use super::Network;
use crate::error::Result;
use crate::spec::Conditions;

impl Network {
    /// Applies `conditions`: clocks first, then the shaping rules in order, then the partition.
    /// No service runs yet, so no clock needs a restart.
    pub(crate) fn apply_conditions(&self, conditions: &Conditions) -> Result<()> {
        for (key, skew) in &conditions.clocks {
            self.node(key)?.configure_clock(skew.clone(), false)?;
        }
        for rule in &conditions.qos {
            self.configure_qos(&rule.target, rule.qos)?;
        }
        match &conditions.partition {
            Some(groups) => self.partition(groups),
            None => Ok(()),
        }
    }
}
