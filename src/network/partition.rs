//! Partitions of a live network: groups that cannot reach each other, one-way blocks, heal.
//!
//! The state is a list of [`Cut`]s by node index (a partition into k groups is k cuts, each
//! from a group to everyone else; a block is one), so a partition of 10,000 nodes takes
//! about k·N entries, not the N² of the pairs it cuts.

use serde_json::json;

use super::Network;
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::spec::{self, Cut};

/// A [`Cut`] by node index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IndexCut {
    from: Vec<usize>,
    to: Vec<usize>,
}

impl Network {
    /// Splits the network into `groups` of nodes (names or indexes) that cannot reach each
    /// other, both ways; nodes in no group form one more group. Replaces earlier cuts.
    ///
    /// ```no_run
    /// # fn f(network: &netdriver::Network) -> netdriver::Result<()> {
    /// network.partition([["node0", "node1"], ["node2", "node3"]])?;
    /// network.heal()?;
    /// # Ok(()) }
    /// ```
    pub fn partition<G, N>(&self, groups: impl IntoIterator<Item = G>) -> Result<()>
    where
        G: IntoIterator<Item = N>,
        N: AsRef<str>,
    {
        let group_of = spec::partition_groups(groups, self.node_names())?;
        let count = group_of.iter().copied().max().map_or(0, |g| g + 1);
        let names = |g: usize| -> Vec<&str> {
            (0..group_of.len()).filter(|&i| group_of[i] == g).map(|i| self.nodes[i].name()).collect()
        };
        let details = json!({"groups": (0..count).map(names).filter(|g| !g.is_empty()).collect::<Vec<_>>()});
        let nodes = || 0..group_of.len();
        let cuts = (0..count)
            .map(|g| IndexCut {
                from: nodes().filter(|&i| group_of[i] == g).collect(),
                to: nodes().filter(|&i| group_of[i] != g).collect(),
            })
            .filter(|c| !c.from.is_empty() && !c.to.is_empty())
            .collect();
        self.apply_cuts(cuts)?;
        self.note(EventKind::Partition, None, details);
        Ok(())
    }

    /// Drops everything `from` sends to `to`, one way: packets from `to` still arrive at
    /// `from` (though `from`'s answers do not). Adds to the current cuts.
    pub fn block(&self, from: &str, to: &str) -> Result<()> {
        let (a, b) = (self.node(from)?.index(), self.node(to)?.index());
        if a == b {
            return Err(Error::invalid("block", format!("{from} and {to} are the same node")));
        }
        let mut cuts = self.cuts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if !cuts.iter().any(|c| c.from.contains(&a) && c.to.contains(&b)) {
            cuts.push(IndexCut { from: vec![a], to: vec![b] });
        }
        self.apply_cuts(cuts)?;
        let (from, to) = (self.nodes[a].name(), self.nodes[b].name());
        self.note(EventKind::Block, Some(from), json!({"from": from, "to": to}));
        Ok(())
    }

    /// Removes every partition and block.
    pub fn heal(&self) -> Result<()> {
        self.apply_cuts(Vec::new())?;
        self.note(EventKind::Heal, None, serde_json::Value::Null);
        Ok(())
    }

    /// The current cuts, by node name, in the order they were made.
    pub fn cuts(&self) -> Vec<Cut> {
        let names = |nodes: &[usize]| nodes.iter().map(|&i| self.nodes[i].name().to_string()).collect();
        let cuts = self.cuts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cuts.iter().map(|c| Cut { from: names(&c.from), to: names(&c.to) }).collect()
    }

    /// Replaces the current cuts with `cuts` (by node name or index), as [`Network::cuts`]
    /// reports them: what puts back cuts read earlier. No cuts heal the network.
    pub fn set_cuts(&self, cuts: &[Cut]) -> Result<()> {
        let indexes = |names: &[String]| -> Result<Vec<usize>> {
            let mut found = names.iter().map(|n| Ok(self.node(n)?.index())).collect::<Result<Vec<usize>>>()?;
            found.sort_unstable();
            found.dedup();
            Ok(found)
        };
        let mut by_index = Vec::with_capacity(cuts.len());
        for cut in cuts {
            let (from, to) = (indexes(&cut.from)?, indexes(&cut.to)?);
            if from.is_empty() || to.is_empty() {
                return Err(Error::invalid("cut", "a cut needs at least one sender (from) and one receiver (to)"));
            }
            if let Some(&both) = from.iter().find(|i| to.contains(i)) {
                let name = self.nodes[both].name();
                return Err(Error::invalid("cut", format!("{name} is both a sender and a receiver of one cut")));
            }
            by_index.push(IndexCut { from, to });
        }
        if by_index.is_empty() {
            return self.heal();
        }
        self.apply_cuts(by_index)?;
        self.note(EventKind::Partition, None, json!({"cuts": self.cuts()}));
        Ok(())
    }

    /// Whether what `from` sends to `to` is dropped.
    pub fn is_cut(&self, from: &str, to: &str) -> Result<bool> {
        let (a, b) = (self.node(from)?.index(), self.node(to)?.index());
        let cuts = self.cuts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(cuts.iter().any(|c| c.from.contains(&a) && c.to.contains(&b)))
    }

    fn apply_cuts(&self, cuts: Vec<IndexCut>) -> Result<()> {
        let mut current = self.cuts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let by_index: Vec<(&[usize], &[usize])> = cuts.iter().map(|c| (&c.from[..], &c.to[..])).collect();
        self.fabric.as_ref().expect("a live network has its fabric").set_cuts(&by_index)?;
        *current = cuts;
        Ok(())
    }
}
