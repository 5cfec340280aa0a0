//! Link shaping of a live network: per node (what it sends, what it receives) and per ordered
//! pair of nodes, applied in place and cleared back to the plain link.

use std::collections::{BTreeMap, BTreeSet};

use super::Network;
use crate::error::{Error, Result};
use crate::fabric::Sender;
use crate::shaping::Qos;

/// Which of a node's traffic a [`Qos`] shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Everything the node sends.
    Send,
    /// Everything the node receives.
    Receive,
    /// Both.
    Both,
}

impl std::str::FromStr for Direction {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Direction> {
        match s {
            "send" => Ok(Direction::Send),
            "receive" => Ok(Direction::Receive),
            "both" => Ok(Direction::Both),
            other => Err(crate::Error::invalid("qos direction", format!("'{other}' (allowed: send, receive, both)"))),
        }
    }
}

/// The shaping of a network, by node index.
#[derive(Debug, Default, Clone)]
pub(super) struct Shaping {
    send: BTreeMap<usize, Qos>,
    receive: BTreeMap<usize, Qos>,
    /// (from, to): replaces `to`'s receive setting for traffic from `from`.
    pairs: BTreeMap<(usize, usize), Qos>,
}

impl Network {
    /// Shapes what `node` sends, receives, or both. A clear [`Qos`] (the default) removes
    /// that shaping. A node's send and receive settings add up on a path: a packet from a
    /// to b meets a's send setting, then b's receive setting (or the a-to-b pair setting).
    pub fn configure_qos(&self, node: &str, direction: Direction, qos: Qos) -> Result<()> {
        qos.validate()?;
        let i = self.node(node)?.index();
        self.reshape(|s| {
            if matches!(direction, Direction::Send | Direction::Both) {
                set(&mut s.send, i, qos);
            }
            if matches!(direction, Direction::Receive | Direction::Both) {
                set(&mut s.receive, i, qos);
            }
        })
    }

    /// Shapes what `from` sends to `to`, one way, in place of `to`'s receive setting for
    /// that traffic. A clear [`Qos`] removes it.
    pub fn configure_pair_qos(&self, from: &str, to: &str, qos: Qos) -> Result<()> {
        qos.validate()?;
        let (a, b) = self.pair(from, to)?;
        self.reshape(|s| set(&mut s.pairs, (a, b), qos))
    }

    /// Shapes the traffic between `a` and `b` both ways.
    pub fn configure_pair_qos_both(&self, a: &str, b: &str, qos: Qos) -> Result<()> {
        qos.validate()?;
        let (x, y) = self.pair(a, b)?;
        self.reshape(|s| {
            set(&mut s.pairs, (x, y), qos);
            set(&mut s.pairs, (y, x), qos);
        })
    }

    /// Removes every shaping: all links are plain again.
    pub fn clear_qos(&self) -> Result<()> {
        self.reshape(|s| *s = Shaping::default())
    }

    fn pair(&self, from: &str, to: &str) -> Result<(usize, usize)> {
        let (a, b) = (self.node(from)?.index(), self.node(to)?.index());
        if a == b {
            return Err(Error::invalid("qos", format!("{from} and {to} are the same node")));
        }
        Ok((a, b))
    }

    /// Applies `change` to the shaping and rebuilds the qdiscs of the nodes it touches.
    fn reshape(&self, change: impl FnOnce(&mut Shaping)) -> Result<()> {
        let mut current = self.shaping.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = current.clone();
        change(&mut next);
        let fabric = self.fabric.as_ref().expect("a live network has its fabric");
        if !(next.send.is_empty() && next.receive.is_empty() && next.pairs.is_empty()) {
            fabric.check_netem()?;
        }
        let receivers: BTreeSet<usize> = [&*current, &next]
            .iter()
            .flat_map(|s| s.receive.keys().copied().chain(s.pairs.keys().map(|&(_, b)| b)))
            .filter(|&b| receive_of(&current, b) != receive_of(&next, b))
            .collect();
        let senders: BTreeSet<usize> = current
            .send
            .keys()
            .chain(next.send.keys())
            .copied()
            .filter(|a| current.send.get(a) != next.send.get(a))
            .collect();
        for b in receivers {
            let (all, from) = receive_of(&next, b);
            let from: Vec<Sender<'_>> =
                from.into_iter().map(|(a, qos)| Sender { index: a, ip: self.nodes[a].ip(), qos }).collect();
            fabric.shape_receive(b, all, &from)?;
        }
        for a in senders {
            fabric.shape_send(a, next.send.get(&a))?;
        }
        *current = next;
        Ok(())
    }
}

/// What shapes traffic to node `b`: its own setting, and per-sender ones.
fn receive_of(s: &Shaping, b: usize) -> (Option<&Qos>, Vec<(usize, &Qos)>) {
    let from = s.pairs.iter().filter(|((_, to), _)| *to == b).map(|(&(a, _), q)| (a, q)).collect();
    (s.receive.get(&b), from)
}

fn set<K: Ord>(map: &mut BTreeMap<K, Qos>, key: K, qos: Qos) {
    if qos.is_clear() {
        map.remove(&key);
    } else {
        map.insert(key, qos);
    }
}
