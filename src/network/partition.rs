//! Partitions of a live network: groups that cannot reach each other, one-way blocks, heal.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::Network;
use crate::error::{Error, Result};
use crate::spec;

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
        let n = self.nodes.len();
        let cut =
            (0..n).flat_map(|a| (0..n).map(move |b| (a, b))).filter(|&(a, b)| group_of[a] != group_of[b]).collect();
        self.set_cut(cut)
    }

    /// Drops everything `from` sends to `to`, one way: packets from `to` still arrive at
    /// `from` (though `from`'s answers do not). Adds to the current cuts.
    pub fn block(&self, from: &str, to: &str) -> Result<()> {
        let (a, b) = (self.node(from)?.index(), self.node(to)?.index());
        if a == b {
            return Err(Error::invalid("block", format!("{from} and {to} are the same node")));
        }
        let mut cut = self.cut.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        cut.insert((a, b));
        self.set_cut(cut)
    }

    /// Removes every partition and block.
    pub fn heal(&self) -> Result<()> {
        self.set_cut(BTreeSet::new())
    }

    /// The cut (from, to) pairs by node name.
    pub fn cuts(&self) -> Vec<(String, String)> {
        let cut = self.cut.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cut.iter().map(|&(a, b)| (self.nodes[a].name().to_string(), self.nodes[b].name().to_string())).collect()
    }

    fn set_cut(&self, cut: BTreeSet<(usize, usize)>) -> Result<()> {
        let mut current = self.cut.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let pairs: Vec<(Ipv4Addr, Ipv4Addr)> =
            cut.iter().map(|&(a, b)| (self.nodes[a].ip(), self.nodes[b].ip())).collect();
        self.fabric.as_ref().expect("a live network has its fabric").set_cut(&pairs)?;
        *current = cut;
        Ok(())
    }
}
