//! Link shaping of a live network: per node (what it sends, what it receives) and per ordered
//! pair of nodes, applied in place and cleared back to the plain link.

use std::collections::{BTreeMap, BTreeSet};

use super::Network;
use crate::error::Result;
use crate::events::EventKind;
use crate::fabric::Sender;
use crate::shaping::{Direction, Qos};
use crate::spec::{QosRule, QosTarget, Resolved};

/// The shaping of a network, by node index.
#[derive(Debug, Default, Clone)]
pub(super) struct Shaping {
    send: BTreeMap<usize, Qos>,
    receive: BTreeMap<usize, Qos>,
    /// (from, to): replaces `to`'s receive setting for traffic from `from`.
    pairs: BTreeMap<(usize, usize), Qos>,
}

impl Network {
    /// Shapes the traffic `target` names with `qos`, in place of what shaped it before; a
    /// clear [`Qos`] (the default) removes that shaping.
    ///
    /// A node's send and receive settings add up on a path: a packet from a to b meets a's
    /// send setting, then b's receive setting, or in its place the a-to-b pair setting.
    pub fn configure_qos(&self, target: &QosTarget, qos: Qos) -> Result<()> {
        qos.validate()?;
        let resolved = target.resolve(self.node_names())?;
        let node = match resolved {
            Resolved::Node(i, _) | Resolved::Pair(i, _, _) => self.nodes[i].name().to_string(),
        };
        self.shape(resolved, qos)?;
        let details = serde_json::json!({"target": target, "qos": qos});
        let kind = if qos == Qos::default() { EventKind::QosCleared } else { EventKind::Qos };
        self.note(kind, Some(&node), details);
        Ok(())
    }

    fn shape(&self, resolved: Resolved, qos: Qos) -> Result<()> {
        match resolved {
            Resolved::Node(i, direction) => self.reshape(|s| {
                if direction.sends() {
                    set(&mut s.send, i, qos);
                }
                if direction.receives() {
                    set(&mut s.receive, i, qos);
                }
            }),
            Resolved::Pair(a, b, both_ways) => self.reshape(|s| {
                set(&mut s.pairs, (a, b), qos);
                if both_ways {
                    set(&mut s.pairs, (b, a), qos);
                }
            }),
        }
    }

    /// Checks that the host can shape links (its kernel has sch_netem), without shaping any:
    /// what to ask before a change that needs it.
    pub fn check_qos(&self) -> Result<()> {
        self.fabric.as_ref().expect("a live network has its fabric").check_netem()
    }

    /// The current shaping, as the rules that would set it up again: each node's send and
    /// receive settings, then the pair settings, by node name.
    pub fn qos_rules(&self) -> Vec<QosRule> {
        let shaping = self.shaping.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let name = |i: usize| self.nodes[i].name().to_string();
        let node =
            |direction| move |(&i, &qos): (&usize, &Qos)| QosRule { target: QosTarget::node(name(i), direction), qos };
        let sends = shaping.send.iter().map(node(Direction::Send));
        let receives = shaping.receive.iter().map(node(Direction::Receive));
        let pairs =
            shaping.pairs.iter().map(|(&(a, b), &qos)| QosRule { target: QosTarget::pair(name(a), name(b)), qos });
        sends.chain(receives).chain(pairs).collect()
    }

    /// Removes every shaping: all links are plain again.
    pub fn clear_qos(&self) -> Result<()> {
        self.reshape(|s| *s = Shaping::default())?;
        self.note(EventKind::QosCleared, None, serde_json::Value::Null);
        Ok(())
    }

    /// Applies `change` to the shaping and rebuilds the qdiscs of the nodes it touches.
    fn reshape(&self, change: impl FnOnce(&mut Shaping)) -> Result<()> {
        let mut current = self.shaping.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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
            let from: Vec<Sender<'_>> = from.into_iter().map(|(a, qos)| Sender { index: a, qos }).collect();
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
