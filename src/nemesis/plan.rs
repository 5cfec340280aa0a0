//! Plans: the faults of a schedule, drawn from a [`NemesisSpec`] and the network's node and
//! service names, before anything is applied.
//!
//! Every draw comes from the module's own generator (splitmix64, in `rng.rs`), never from a
//! crate's, so a seed gives the same plan in every version that keeps these rules; a test
//! pins one.
//!
//! The rules: fault k starts an interval after fault k−1 started, or when it ended if that is
//! later (faults never overlap: each is undone before the next begins); the first starts an
//! interval after 0. Its hold is drawn from the hold range and cut short to end by the
//! schedule's length; no fault starts at or after the length. Its kind is drawn evenly from
//! the spec's kinds that can apply here, then its target:
//!
//! - kill, stop: a node, and one of the services they may pick (`kill_services`, else
//!   `services`), or 1 time in 4 the whole node (only when they may pick every service);
//! - pause: a node and one of the services it may pick (`services`);
//! - partition: a [`Shape`], evenly from those the node count allows;
//! - block: an ordered pair of nodes;
//! - qos: a node, and a delay spike (50 to 500 ms) or a loss spike (5 to 50%), on both of its
//!   directions;
//! - clock: a node, and a bump of its wall clock (1 to 120 s, forward or back) or a drift (100
//!   to 5000 ppm, faster or slower).
//!
//! Partition and block need two nodes, kill, pause and stop a service: a kind that cannot
//! apply is left out, and a spec whose every kind cannot apply is refused.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::rng::Rng;
use crate::clock::{Drift, Offset};
use crate::error::{Error, Result};
use crate::shaping::{Loss, Percent, Qos};
use crate::spec::Cut;
use crate::spec::{duration_text, FaultKind, NemesisSpec};
use crate::units::format_duration;

/// The faults of a schedule, in order of their start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The faults, each undone before the next starts.
    pub faults: Vec<PlannedFault>,
}

/// One fault of a [`Plan`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedFault {
    /// Its number in the plan, from 1.
    pub id: usize,
    /// When it starts, from the schedule's start.
    #[serde(with = "duration_text")]
    pub at: Duration,
    /// How long it lasts.
    #[serde(with = "duration_text")]
    pub hold: Duration,
    /// What it does.
    pub fault: Fault,
}

/// What a fault does, and to what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Fault {
    /// SIGKILL of `service` on `node`, or of every service of the node.
    Kill {
        /// The node.
        node: String,
        /// The service; `None` for the whole node.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<String>,
    },
    /// SIGSTOP of `service` on `node`.
    Pause {
        /// The node.
        node: String,
        /// The service.
        service: String,
    },
    /// A graceful stop of `service` on `node`, or of every service of the node.
    Stop {
        /// The node.
        node: String,
        /// The service; `None` for the whole node.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<String>,
    },
    /// Two sides that cannot reach each other.
    Partition {
        /// How the sides were drawn.
        shape: Shape,
        /// What is cut: one side to the other, and back.
        cuts: Vec<Cut>,
        /// For [`Shape::Bridge`], the node in neither side, which reaches both.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bridge: Option<String>,
    },
    /// What `from` sends `to` is dropped, one way.
    Block {
        /// The sender.
        from: String,
        /// The receiver.
        to: String,
    },
    /// A delay or loss spike on `node`'s links, both ways.
    Qos {
        /// The node.
        node: String,
        /// The shaping.
        qos: Qos,
    },
    /// A change of `node`'s wall clock.
    Clock {
        /// The node.
        node: String,
        /// The change.
        change: ClockChange,
    },
}

impl Fault {
    /// The fault's kind.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Kill { .. } => FaultKind::Kill,
            Fault::Pause { .. } => FaultKind::Pause,
            Fault::Stop { .. } => FaultKind::Stop,
            Fault::Partition { .. } => FaultKind::Partition,
            Fault::Block { .. } => FaultKind::Block,
            Fault::Qos { .. } => FaultKind::Qos,
            Fault::Clock { .. } => FaultKind::Clock,
        }
    }

    /// The node the fault is on, if one (a block's sender).
    pub fn node(&self) -> Option<&str> {
        match self {
            Fault::Kill { node, .. }
            | Fault::Pause { node, .. }
            | Fault::Stop { node, .. }
            | Fault::Qos { node, .. }
            | Fault::Clock { node, .. } => Some(node),
            Fault::Block { from, .. } => Some(from),
            Fault::Partition { .. } => None,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |node: &str, service: Option<&str>| match service {
            Some(service) => format!("{node}/{service}"),
            None => node.to_string(),
        };
        match self {
            Fault::Kill { node, service } | Fault::Stop { node, service } => {
                write!(f, "{} {}", self.kind(), on(node, service.as_deref()))
            }
            Fault::Pause { node, service } => write!(f, "pause {}", on(node, Some(service))),
            Fault::Partition { shape, cuts, bridge } => {
                write!(f, "partition {shape}")?;
                if let Some(cut) = cuts.first() {
                    write!(f, " {} | {}", cut.from.join(","), cut.to.join(","))?;
                }
                match bridge {
                    Some(bridge) => write!(f, " via {bridge}"),
                    None => Ok(()),
                }
            }
            Fault::Block { from, to } => write!(f, "block {from} -> {to}"),
            Fault::Qos { node, qos } => {
                let mut spike = Vec::new();
                if !qos.delay.is_zero() {
                    spike.push(format!("delay {}", format_duration(qos.delay)));
                }
                if let Loss::Random { percent, .. } = qos.loss {
                    spike.push(format!("loss {percent}"));
                }
                write!(f, "qos {node} {}", spike.join(" "))
            }
            Fault::Clock { node, change } => write!(f, "clock {node} {change}"),
        }
    }
}

/// How a partition's two sides are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// The nodes shuffled and split in two halves.
    Halves,
    /// One node from all the others.
    Isolate,
    /// A minority (at least one node, fewer than half) from the majority.
    Minority,
    /// Two sides, and one more node, the bridge, that reaches both.
    Bridge,
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shape::Halves => "halves",
            Shape::Isolate => "isolate",
            Shape::Minority => "minority",
            Shape::Bridge => "bridge",
        })
    }
}

/// A change of a node's wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockChange {
    /// The wall clock jumps by the offset (forward, or back if negative).
    Bump(Offset),
    /// The wall clock runs at this pace.
    Drift(Drift),
}

impl fmt::Display for ClockChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockChange::Bump(offset) => write!(f, "bump {offset}"),
            ClockChange::Drift(drift) => write!(f, "drift {drift}"),
        }
    }
}

impl fmt::Display for Plan {
    /// One line a fault: its start, its hold and what it does, e.g.
    /// `   2.345s  +1.200s  kill node2/tendermint`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for planned in &self.faults {
            writeln!(f, "{:>9}  +{}  {}", seconds(planned.at), seconds(planned.hold), planned.fault)?;
        }
        Ok(())
    }
}

/// `d` in seconds with three decimals (`2.345s`), truncated to the millisecond.
pub(super) fn seconds(d: Duration) -> String {
    format!("{}.{:03}s", d.as_secs(), d.subsec_millis())
}

/// The plan of `spec` on a network of `nodes` whose every node runs `services` (names, in
/// start order). The same arguments always give the same plan.
pub fn plan(spec: &NemesisSpec, nodes: &[String], services: &[String]) -> Result<Plan> {
    spec.validate()?;
    if nodes.is_empty() {
        return Err(Error::invalid("nemesis", "the network has no nodes to put faults on"));
    }
    let paused = allowed(spec.services.as_deref(), services)?;
    let killed = allowed(spec.kill_services.as_deref().or(spec.services.as_deref()), services)?;
    let draw = Draw { whole_node: !services.is_empty() && killed.len() == services.len(), nodes, paused, killed };
    let kinds = draw.kinds(&spec.faults)?;
    let mut rng = Rng(spec.seed);
    let (mut faults, mut last_start, mut last_end) = (Vec::new(), Duration::ZERO, Duration::ZERO);
    loop {
        let at = (last_start + rng.duration(spec.interval)).max(last_end);
        if at >= spec.length {
            return Ok(Plan { faults });
        }
        let hold = rng.duration(spec.hold).min(spec.length - at);
        let fault = draw.fault(*rng.pick(&kinds), &mut rng);
        faults.push(PlannedFault { id: faults.len() + 1, at, hold, fault });
        (last_start, last_end) = (at, at + hold);
    }
}

/// Of the nodes' `services`, those `names` lets a fault pick (every one for `None`), in
/// start order; an error naming a service the nodes do not run.
fn allowed(names: Option<&[String]>, services: &[String]) -> Result<Vec<String>> {
    let Some(names) = names else { return Ok(services.to_vec()) };
    if let Some(unknown) = names.iter().find(|n| !services.contains(n)) {
        let known = if services.is_empty() { "none".to_string() } else { services.join(", ") };
        return Err(Error::invalid(
            "nemesis",
            format!("a fault may pick the service '{unknown}', which the nodes do not run (they run: {known})"),
        ));
    }
    Ok(services.iter().filter(|s| names.contains(s)).cloned().collect())
}

/// What targets are drawn from.
struct Draw<'a> {
    nodes: &'a [String],
    /// The services pause may pick.
    paused: Vec<String>,
    /// The services kill and stop may pick.
    killed: Vec<String>,
    /// Whether kill and stop may take a whole node.
    whole_node: bool,
}

impl Draw<'_> {
    /// The kinds of `asked` that can apply here, in [`FaultKind::ALL`]'s order (so that the
    /// order they were asked in does not matter); an error if none can.
    fn kinds(&self, asked: &[FaultKind]) -> Result<Vec<FaultKind>> {
        let mut reasons = Vec::new();
        let mut kinds = Vec::new();
        for kind in FaultKind::ALL.into_iter().filter(|k| asked.contains(k)) {
            match kind {
                FaultKind::Partition | FaultKind::Block if self.nodes.len() < 2 => {
                    reasons.push(format!("{kind} needs two nodes or more, and the network has one"));
                }
                FaultKind::Kill | FaultKind::Pause | FaultKind::Stop if self.paused.is_empty() => {
                    reasons.push(format!("{kind} needs a service to pick, and the nodes run none"));
                }
                _ => kinds.push(kind),
            }
        }
        if kinds.is_empty() {
            return Err(Error::invalid(
                "nemesis",
                format!(
                    "no fault asked for can apply: {}; add nodes or services, or ask for other kinds",
                    reasons.join("; ")
                ),
            ));
        }
        Ok(kinds)
    }

    fn fault(&self, kind: FaultKind, rng: &mut Rng) -> Fault {
        let node = |rng: &mut Rng| rng.pick(self.nodes).clone();
        match kind {
            FaultKind::Kill => {
                let (node, service) = self.service_or_node(rng);
                Fault::Kill { node, service }
            }
            FaultKind::Stop => {
                let (node, service) = self.service_or_node(rng);
                Fault::Stop { node, service }
            }
            FaultKind::Pause => Fault::Pause { node: node(rng), service: rng.pick(&self.paused).clone() },
            FaultKind::Partition => self.partition(rng),
            FaultKind::Block => {
                let n = self.nodes.len();
                let from = rng.below(n);
                let to = (from + 1 + rng.below(n - 1)) % n;
                Fault::Block { from: self.nodes[from].clone(), to: self.nodes[to].clone() }
            }
            FaultKind::Qos => {
                let node = node(rng);
                let qos = if rng.coin() {
                    Qos { delay: Duration::from_millis(rng.between(50, 500)), ..Qos::default() }
                } else {
                    let percent = Percent(rng.between(5, 50) as f64);
                    Qos { loss: Loss::Random { percent, correlation: Percent::ZERO }, ..Qos::default() }
                };
                Fault::Qos { node, qos }
            }
            FaultKind::Clock => {
                let node = node(rng);
                let change = if rng.coin() {
                    let by = Duration::from_secs(rng.between(1, 120));
                    ClockChange::Bump(if rng.coin() { Offset::ahead(by) } else { Offset::behind(by) })
                } else {
                    let ppb = rng.between(100, 5000) as i64 * 1000;
                    let ppb = if rng.coin() { ppb } else { -ppb };
                    ClockChange::Drift(Drift::from_ppb(ppb).expect("5000ppm is within a drift's range"))
                };
                Fault::Clock { node, change }
            }
        }
    }

    /// A node, and one of the services kill and stop may pick or (1 time in 4, when allowed)
    /// `None`.
    fn service_or_node(&self, rng: &mut Rng) -> (String, Option<String>) {
        let node = rng.pick(self.nodes).clone();
        if self.whole_node && rng.below(4) == 0 {
            return (node, None);
        }
        (node, Some(rng.pick(&self.killed).clone()))
    }

    fn partition(&self, rng: &mut Rng) -> Fault {
        let n = self.nodes.len();
        let shapes: &[Shape] = if n >= 3 {
            &[Shape::Halves, Shape::Isolate, Shape::Minority, Shape::Bridge]
        } else {
            &[Shape::Halves, Shape::Isolate]
        };
        let shape = *rng.pick(shapes);
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        let (sides, bridge) = match shape {
            Shape::Bridge => (&order[1..], Some(self.nodes[order[0]].clone())),
            Shape::Halves | Shape::Isolate | Shape::Minority => (&order[..], None),
        };
        let split = match shape {
            Shape::Halves => n / 2,
            Shape::Isolate => 1,
            Shape::Minority => rng.between(1, (n as u64 - 1) / 2) as usize,
            Shape::Bridge => (n - 1) / 2,
        };
        let side = |part: &[usize]| {
            let mut part = part.to_vec();
            part.sort_unstable();
            part.into_iter().map(|i| self.nodes[i].clone()).collect::<Vec<_>>()
        };
        let (a, b) = (side(&sides[..split]), side(&sides[split..]));
        let cuts = vec![Cut { from: a.clone(), to: b.clone() }, Cut { from: b, to: a }];
        Fault::Partition { shape, cuts, bridge }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;
    const S: fn(u64) -> Duration = Duration::from_secs;

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    fn bigchaindb() -> Vec<String> {
        ["db", "bigchaindb", "tendermint"].map(String::from).to_vec()
    }

    fn every_kind(seed: u64) -> NemesisSpec {
        NemesisSpec::new(seed).faults(FaultKind::ALL).interval(S(2), S(5)).hold(S(1), S(3)).length(S(60))
    }

    #[test]
    fn a_seed_gives_this_plan() {
        // Pinned: a change here changes every schedule people have written down by its seed.
        let text = plan(&every_kind(7), &names("node", 4), &bigchaindb()).unwrap().to_string();
        let want = [
            "   4.115s  +2.650s  kill node3/db\n",
            "   6.765s  +2.011s  clock node1 drift +2110ppm\n",
            "   9.852s  +2.767s  qos node3 loss 36%\n",
            "  13.428s  +2.192s  stop node1/tendermint\n",
            "  16.475s  +1.882s  partition bridge node0 | node1,node3 via node2\n",
            "  19.042s  +1.282s  kill node3\n",
            "  22.955s  +2.999s  stop node1/bigchaindb\n",
            "  25.954s  +2.341s  pause node3/db\n",
            "  30.751s  +1.923s  partition minority node0 | node1,node2,node3\n",
            "  33.661s  +2.744s  clock node2 bump +67s\n",
            "  36.767s  +2.446s  kill node1/bigchaindb\n",
            "  41.108s  +2.960s  qos node0 loss 47%\n",
            "  45.166s  +2.680s  clock node0 drift +239ppm\n",
            "  48.087s  +2.598s  block node3 -> node0\n",
            "  52.565s  +1.663s  clock node0 drift +1414ppm\n",
            "  55.999s  +1.852s  clock node2 bump -74s\n",
            "  58.394s  +1.606s  partition minority node3 | node0,node1,node2\n",
        ];
        assert_eq!(text, want.concat());
    }

    #[test]
    fn the_same_seed_gives_the_same_plan_and_another_seed_another() {
        let nodes = names("node", 5);
        let text = |spec: &NemesisSpec| plan(spec, &nodes, &bigchaindb()).unwrap().to_string();
        assert_eq!(text(&every_kind(7)), text(&every_kind(7)));
        assert_ne!(text(&every_kind(7)), text(&every_kind(8)));
        let mut reversed = every_kind(7);
        reversed.faults.reverse();
        assert_eq!(text(&reversed), text(&every_kind(7)), "the kinds are a set");
        assert_ne!(text(&every_kind(7)), plan(&every_kind(7), &names("n", 5), &bigchaindb()).unwrap().to_string());
    }

    #[test]
    fn faults_start_in_order_never_overlap_and_end_by_the_length() {
        for seed in 0..200 {
            let spec = NemesisSpec::new(seed)
                .faults([FaultKind::Kill, FaultKind::Partition])
                .interval(MS(500), S(2))
                .hold(MS(100), S(3))
                .length(MS(20_500));
            let plan = plan(&spec, &names("node", 3), &bigchaindb()).unwrap();
            assert!(!plan.faults.is_empty());
            let mut end = Duration::ZERO;
            for (i, fault) in plan.faults.iter().enumerate() {
                assert_eq!(fault.id, i + 1);
                assert!(fault.at >= end, "seed {seed}: fault {} starts before the one before ends", fault.id);
                assert!(i == 0 || fault.at >= plan.faults[i - 1].at + spec.interval.min);
                assert!(fault.hold > Duration::ZERO && fault.hold <= spec.hold.max);
                end = fault.at + fault.hold;
                assert!(end <= spec.length, "seed {seed}: fault {} ends at {end:?}", fault.id);
            }
        }
    }

    #[test]
    fn every_kind_and_shape_appears_over_a_long_schedule() {
        let spec = every_kind(3).interval(MS(100), MS(200)).hold(MS(10), MS(50)).length(S(3600));
        let nodes = names("node", 5);
        let plan = plan(&spec, &nodes, &bigchaindb()).unwrap();
        let text = plan.to_string();
        let kinds: BTreeSet<FaultKind> = plan.faults.iter().map(|f| f.fault.kind()).collect();
        assert_eq!(kinds.len(), FaultKind::ALL.len());
        for phrase in [
            "partition halves",
            "partition isolate",
            "partition minority",
            "partition bridge",
            " via ",
            "qos node1 delay",
            "loss",
            "bump +",
            "bump -",
            "drift +",
            "drift -",
            "kill node3\n",
            "stop node0\n",
            "kill node2/db",
            "pause node4/tendermint",
            "block node4 -> node0",
        ] {
            assert!(text.contains(phrase), "no '{phrase}' in a long plan");
        }
        for fault in &plan.faults {
            match &fault.fault {
                Fault::Partition { shape, cuts, bridge } => {
                    let (a, b) = (&cuts[0].from, &cuts[0].to);
                    assert_eq!((&cuts[1].from, &cuts[1].to), (b, a));
                    let sides = a.len() + b.len();
                    assert_eq!(sides + usize::from(bridge.is_some()), nodes.len());
                    assert!(!a.is_empty() && !b.is_empty());
                    match shape {
                        Shape::Isolate => assert_eq!(a.len(), 1),
                        Shape::Minority => assert!(a.len() * 2 < nodes.len()),
                        Shape::Halves => assert_eq!(a.len(), nodes.len() / 2),
                        Shape::Bridge => assert!(bridge.as_ref().is_some_and(|n| !a.contains(n) && !b.contains(n))),
                    }
                }
                Fault::Block { from, to } => assert_ne!(from, to),
                Fault::Qos { qos, .. } => qos.validate().unwrap(),
                _ => {}
            }
        }
    }

    #[test]
    fn what_cannot_apply_is_left_out_or_refused() {
        let one = names("node", 1);
        let spec = NemesisSpec::new(1).faults([FaultKind::Partition, FaultKind::Block]);
        let err = plan(&spec, &one, &bigchaindb()).unwrap_err().to_string();
        assert!(err.contains("partition needs two nodes or more, and the network has one"), "{err}");
        assert!(err.contains("block needs two nodes"), "{err}");
        let mixed = spec.clone().faults([FaultKind::Partition, FaultKind::Kill]).length(S(600));
        let kinds: BTreeSet<FaultKind> =
            plan(&mixed, &one, &bigchaindb()).unwrap().faults.iter().map(|f| f.fault.kind()).collect();
        assert_eq!(kinds, BTreeSet::from([FaultKind::Kill]));
        let err = plan(&NemesisSpec::new(1).faults([FaultKind::Pause]), &one, &[]).unwrap_err().to_string();
        assert!(err.contains("pause needs a service to pick, and the nodes run none"), "{err}");
        let err = plan(&every_kind(1).services(["mongod"]), &one, &bigchaindb()).unwrap_err().to_string();
        assert!(err.contains("'mongod', which the nodes do not run (they run: db, bigchaindb, tendermint)"), "{err}");
        assert!(plan(&every_kind(1), &[], &[]).is_err());
        assert!(plan(&NemesisSpec::new(1), &one, &[]).unwrap_err().to_string().contains("no fault kinds"));
    }

    #[test]
    fn only_the_allowed_services_are_picked() {
        let spec = NemesisSpec::new(5)
            .faults([FaultKind::Kill, FaultKind::Stop, FaultKind::Pause])
            .interval(MS(100), MS(100))
            .hold(MS(10), MS(10))
            .length(S(60));
        // (services, kill_services) -> what kill and stop picked, what pause picked.
        type Case<'a> = (&'a [&'a str], Option<&'a [&'a str]>, &'a [&'a str], &'a [&'a str]);
        let cases: [Case; 2] = [
            (&["tendermint", "db"], None, &["db", "tendermint"], &["db", "tendermint"]),
            (&["db", "bigchaindb", "tendermint"], Some(&["db"]), &["db"], &["bigchaindb", "db", "tendermint"]),
        ];
        for (services, kill_services, want_killed, want_paused) in cases {
            let mut spec = spec.clone().services(services.iter().copied());
            spec.kill_services = kill_services.map(|k| k.iter().map(ToString::to_string).collect());
            let (mut killed, mut paused) = (BTreeSet::new(), BTreeSet::new());
            for fault in plan(&spec, &names("node", 4), &bigchaindb()).unwrap().faults {
                match fault.fault {
                    Fault::Kill { service, .. } | Fault::Stop { service, .. } => {
                        killed.insert(service.expect("no whole node when only some services may be killed"));
                    }
                    Fault::Pause { service, .. } => _ = paused.insert(service),
                    other => panic!("{other} was not asked for"),
                }
            }
            assert_eq!(killed, want_killed.iter().map(ToString::to_string).collect(), "{spec:?}");
            assert_eq!(paused, want_paused.iter().map(ToString::to_string).collect(), "{spec:?}");
        }
        let err = plan(&spec.kill_services(["mongod"]), &names("node", 4), &bigchaindb()).unwrap_err().to_string();
        assert!(err.contains("'mongod', which the nodes do not run"), "{err}");
    }

    #[test]
    fn a_plan_serializes_with_durations_as_text() {
        let planned = PlannedFault {
            id: 1,
            at: MS(2345),
            hold: MS(1200),
            fault: Fault::Clock { node: "node1".into(), change: ClockChange::Bump(Offset::behind(S(37))) },
        };
        let json = serde_json::to_value(&planned).unwrap();
        let want = serde_json::json!({
            "id": 1, "at": "2.345s", "hold": "1.2s",
            "fault": {"kind": "clock", "node": "node1", "change": {"bump": "-37s"}}
        });
        assert_eq!(json, want);
        assert_eq!(serde_json::from_value::<PlannedFault>(json).unwrap(), planned);
        let plan = Plan { faults: vec![planned] };
        assert_eq!(plan.to_string(), "   2.345s  +1.200s  clock node1 bump -37s\n");
        let kill = Fault::Kill { node: "node2".into(), service: None };
        assert_eq!(serde_json::to_value(&kill).unwrap(), serde_json::json!({"kind": "kill", "node": "node2"}));
    }
}
