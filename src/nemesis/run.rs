//! Running a plan on a live network: each fault applied at its time, held, and undone before
//! the next; at the end, or on a stop, an error or a cancel, the fault under way undone and the
//! cuts, shaping and clocks the schedule found put back.
//!
//! Everything runs as the [`Actor::Nemesis`], so the timeline shows which changes were the
//! schedule's; it adds `nemesis_start`, a `fault_start` and `fault_end` a fault, and
//! `nemesis_end`.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::plan::{self, seconds, ClockChange, Fault, Plan, PlannedFault};
use crate::cancel::Cancel;
use crate::clock::{ClockSkew, Offset};
use crate::error::{Error, Result};
use crate::events::{self, Actor, EventKind};
use crate::network::Network;
use crate::node::{Node, SavedClock};
use crate::service::{Op, ServiceState};
use crate::shaping::{Direction, Qos};
use crate::spec::{duration_text, FaultKind, NemesisSpec};
use crate::spec::{Cut, QosRule, QosTarget};
use crate::units::format_duration;

/// How often a wait looks whether the schedule was stopped.
const LOOK_EVERY: Duration = Duration::from_millis(10);

/// What a schedule did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The faults begun so far, in order.
    pub faults: Vec<AppliedFault>,
    /// Whether the schedule was stopped (or cancelled) before its end.
    pub stopped: bool,
    /// What could not be undone or put back, if anything: the network is not as the schedule
    /// found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One fault of a [`History`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedFault {
    /// The fault as planned.
    pub planned: PlannedFault,
    /// When it began, from the schedule's start.
    #[serde(with = "duration_text")]
    pub started_at: Duration,
    /// When it was undone, from the schedule's start; `None` while it holds.
    #[serde(default, with = "optional_duration_text", skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Duration>,
    /// Why it could not be applied (the schedule went on), or undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl fmt::Display for History {
    /// One line a fault, as a [`Plan`] prints, with the times it really began and lasted and
    /// what failed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for applied in &self.faults {
            let lasted = applied
                .ended_at
                .map_or("holding".to_string(), |end| format!("+{}", seconds(end.saturating_sub(applied.started_at))));
            write!(f, "{:>9}  {lasted}  {}", seconds(applied.started_at), applied.planned.fault)?;
            match &applied.error {
                Some(error) => writeln!(f, "  (failed: {error})")?,
                None => writeln!(f)?,
            }
        }
        if self.stopped {
            writeln!(f, "stopped before the end")?;
        }
        match &self.error {
            Some(error) => writeln!(f, "not left as found: {error}"),
            None => Ok(()),
        }
    }
}

/// The plan `spec` makes on `network`, after checking up front everything that can be: the
/// spec, the services it names, and that the network can apply every kind asked (qos needs
/// sch_netem, clock the nodes' own wall clocks). Nothing is applied.
pub fn check(network: &Network, spec: &NemesisSpec) -> Result<Plan> {
    // A schedule that names no services picks among those the network's profile allows.
    let spec = &spec.defaulted(network.fault_services());
    let nodes: Vec<String> = network.nodes().iter().map(|n| n.name().to_string()).collect();
    let services: Vec<String> = network
        .nodes()
        .first()
        .map(|n| n.services().iter().map(|s| s.name().to_string()).collect())
        .unwrap_or_default();
    let plan = plan::plan(spec, &nodes, &services)?;
    if spec.faults.contains(&FaultKind::Qos) {
        network.check_qos().map_err(|e| match e {
            Error::KernelFeature { feature, fix } => {
                Error::KernelFeature { feature, fix: format!("{fix}; or leave qos out of the nemesis's faults") }
            }
            other => other,
        })?;
    }
    if spec.faults.contains(&FaultKind::Clock) && !network.nodes().iter().all(Node::has_wall_clock) {
        return Err(Error::invalid(
            "nemesis",
            "clock faults move the nodes' wall clocks, and this network runs without them (wall_clock = false): \
             bring it up with them, or leave clock out of the faults",
        ));
    }
    Ok(plan)
}

/// Runs `spec` on `network` to its end, or until `cancel` (or the network's own
/// [`Network::cancel`]) is raised; then undoes the fault under way and puts back the cuts,
/// shaping and clocks it found. Refused up front, with nothing applied, as [`check`] says.
///
/// A fault that cannot be applied (its service was stopped meanwhile) is recorded in the
/// history and the schedule goes on; what cannot be undone is an error, after everything
/// else was put back (the history is in the timeline).
pub fn run(network: &Network, spec: &NemesisSpec, cancel: &Cancel) -> Result<History> {
    let plan = check(network, spec)?;
    let history = Mutex::new(History::default());
    execute(network, spec, &plan, cancel, &history);
    outcome(history.into_inner().unwrap_or_else(PoisonError::into_inner))
}

/// Starts `spec` on `network` in a thread of its own, checked up front as [`run`] is.
pub fn start(network: Arc<Network>, spec: NemesisSpec) -> Result<Running> {
    let plan = check(&network, &spec)?;
    let (stop, history) = (Cancel::new(), Arc::new(Mutex::new(History::default())));
    let thread = std::thread::Builder::new()
        .name("netdriver-nemesis".into())
        .spawn({
            let (plan, stop, history) = (plan.clone(), stop.clone(), history.clone());
            move || execute(&network, &spec, &plan, &stop, &history)
        })
        .map_err(|e| Error::io("starting the nemesis's thread", e))?;
    Ok(Running { plan, stop, history, thread: Some(thread) })
}

/// A schedule running in the background ([`start`]). Dropping it stops it as
/// [`Running::stop`] does.
#[derive(Debug)]
pub struct Running {
    plan: Plan,
    stop: Cancel,
    history: Arc<Mutex<History>>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// The plan being run.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// What the schedule did so far.
    pub fn history(&self) -> History {
        self.history.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Whether the schedule is over, every fault undone.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the schedule now (a fault holding is undone at once), puts the network back as
    /// it was found, and returns what it did; an error as [`run`]'s.
    pub fn stop(mut self) -> Result<History> {
        self.stop.cancel();
        self.join()
    }

    /// Waits until the schedule ends; an error as [`run`]'s.
    pub fn wait(mut self) -> Result<History> {
        self.join()
    }

    fn join(&mut self) -> Result<History> {
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                return Err(Error::State(
                    "the nemesis's thread panicked (a bug of netdriver); it undid what it could: \
                     look at the network's cuts, shaping and services"
                        .into(),
                ));
            }
        }
        outcome(self.history())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop.cancel();
            let _ = self.join();
        }
    }
}

/// `history`, or the error of what it could not undo.
fn outcome(history: History) -> Result<History> {
    match &history.error {
        Some(error) => Err(Error::State(format!(
            "the nemesis could not leave the network as it found it: {error}; \
             put it right by hand (start the services, heal) or tear it down"
        ))),
        None => Ok(history),
    }
}

/// Runs `plan` as the nemesis, recording into `history`, until its end or `cancel`.
fn execute(network: &Network, spec: &NemesisSpec, plan: &Plan, cancel: &Cancel, history: &Mutex<History>) {
    events::acting_as(Actor::Nemesis, || {
        let mut guard = Guard::new(network, spec);
        let kinds: Vec<&str> = spec.faults.iter().map(|k| k.name()).collect();
        let details = json!({
            "seed": spec.seed, "faults": kinds, "length": format_duration(spec.length), "planned": plan.faults.len()
        });
        network.note(EventKind::NemesisStart, None, details);
        let schedule = Schedule { network, cancel, history, since: Instant::now() };
        let (mut problems, mut stopped) = (Vec::new(), false);
        for planned in &plan.faults {
            if !schedule.sleep_until(schedule.since + planned.at) {
                stopped = true;
                break;
            }
            let (held, undo_error) = schedule.fault(&mut guard, planned);
            problems.extend(undo_error);
            if !held {
                stopped = true;
                break;
            }
        }
        problems.extend(guard.put_back());
        let error = (!problems.is_empty()).then(|| problems.join("; "));
        let count = schedule.record(|h| {
            (h.stopped, h.error) = (stopped, error.clone());
            h.faults.len()
        });
        let details = json!({"faults": count, "stopped": stopped, "error": error});
        network.note(EventKind::NemesisEnd, None, without_nulls(details));
    });
}

/// A plan being run.
struct Schedule<'a> {
    network: &'a Network,
    cancel: &'a Cancel,
    history: &'a Mutex<History>,
    /// When it started.
    since: Instant,
}

impl Schedule<'_> {
    fn record<T>(&self, change: impl FnOnce(&mut History) -> T) -> T {
        change(&mut self.history.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Applies `planned`, holds it and undoes it; whether it held to its end (not stopped),
    /// and what could not be undone.
    fn fault(&self, guard: &mut Guard<'_>, planned: &PlannedFault) -> (bool, Option<String>) {
        let (network, fault) = (self.network, &planned.fault);
        let started_at = self.since.elapsed();
        let details = json!({"id": planned.id, "fault": fault, "hold": format_duration(planned.hold)});
        network.note(EventKind::FaultStart, fault.node(), details);
        self.record(|h| {
            h.faults.push(AppliedFault { planned: planned.clone(), started_at, ended_at: None, error: None });
        });
        let (undo, applied) = apply(network, fault);
        guard.current = Some(undo);
        let (mut errors, mut held) = (Vec::new(), true);
        match applied {
            Ok(()) => held = self.sleep_until(Instant::now() + planned.hold),
            Err(e) => errors.push(e.to_string()),
        }
        let undo_error = guard.undo_current().err().map(|e| {
            errors.push(format!("undoing it: {e}"));
            format!("fault {} ({fault}): {e}", planned.id)
        });
        let (ended_at, error) = (self.since.elapsed(), (!errors.is_empty()).then(|| errors.join("; ")));
        let details = json!({"id": planned.id, "fault": fault, "error": error});
        self.record(|h| {
            let last = h.faults.last_mut().expect("pushed above");
            (last.ended_at, last.error) = (Some(ended_at), error);
        });
        network.note(EventKind::FaultEnd, fault.node(), without_nulls(details));
        (held, undo_error)
    }

    /// Whether the schedule was stopped: by its cancel, or the network's.
    fn stopped(&self) -> bool {
        self.cancel.is_cancelled() || self.network.cancel().is_cancelled()
    }

    /// Waits until `deadline`, looking every [`LOOK_EVERY`] whether the schedule was stopped;
    /// whether the deadline came first.
    fn sleep_until(&self, deadline: Instant) -> bool {
        loop {
            if self.stopped() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            std::thread::sleep((deadline - now).min(LOOK_EVERY));
        }
    }
}

/// `value` without its null fields.
fn without_nulls(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(map) = value.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    value
}

/// How to undo a fault: what it changed, as it was before.
#[derive(Debug)]
enum Undo {
    /// The fault changed nothing.
    Nothing,
    /// Start these services of the node again (those that ran before), in start order.
    Start { node: String, services: Vec<String> },
    /// Let the service run again.
    Resume { node: String, service: String },
    /// Put these cuts back (none: heal).
    Cuts(Vec<Cut>),
    /// Clear the node's own shaping, then apply these rules (its shaping before).
    Qos { node: String, rules: Vec<QosRule> },
    /// Put the node's clocks back.
    Clock { node: String, saved: SavedClock },
}

impl Undo {
    fn run(self, network: &Network) -> Result<()> {
        match self {
            Undo::Nothing => Ok(()),
            Undo::Start { node, services } => {
                let node = network.node(&node)?;
                // Every service is tried, and the first failure told.
                services.iter().map(|s| node.start_service(s)).fold(Ok(()), Result::and)
            }
            Undo::Resume { node, service } => network.node(&node)?.service(&service)?.resume(),
            Undo::Cuts(cuts) => network.set_cuts(&cuts),
            Undo::Qos { node, rules } => {
                network.configure_qos(&QosTarget::node(&node, Direction::Both), Qos::default())?;
                rules.iter().try_for_each(|rule| network.configure_qos(&rule.target, rule.qos))
            }
            Undo::Clock { node, saved } => network.node(&node)?.restore_clock(&saved),
        }
    }
}

/// Applies `fault`; returns how to undo it (found before applying, so that a fault that failed
/// half-way is undone too) and whether it was applied.
fn apply(network: &Network, fault: &Fault) -> (Undo, Result<()>) {
    match fault {
        Fault::Kill { node, service } => take_down(network, node, service.as_deref(), Op::Kill),
        Fault::Stop { node, service } => take_down(network, node, service.as_deref(), Op::Stop),
        Fault::Pause { node, service } => {
            let found = network.node(node).and_then(|n| n.service(service));
            match found.map(|s| (s, s.state())) {
                Ok((s, ServiceState::Running(_))) => {
                    (Undo::Resume { node: node.clone(), service: service.clone() }, s.pause())
                }
                Ok((_, state)) => {
                    (Undo::Nothing, Err(nothing_to(&format!("{node}/{service} is {state}, not running"), Op::Pause)))
                }
                Err(e) => (Undo::Nothing, Err(e)),
            }
        }
        Fault::Partition { cuts, .. } => {
            let before = network.cuts();
            let all: Vec<Cut> = before.iter().chain(cuts).cloned().collect();
            (Undo::Cuts(before), network.set_cuts(&all))
        }
        Fault::Block { from, to } => (Undo::Cuts(network.cuts()), network.block(from, to)),
        Fault::Qos { node, qos } => {
            let own = |rule: &QosRule| matches!(&rule.target, QosTarget::Node { node: n, .. } if n == node);
            let rules = network.qos_rules().into_iter().filter(own).collect();
            let applied = network.configure_qos(&QosTarget::node(node, Direction::Both), *qos);
            (Undo::Qos { node: node.clone(), rules }, applied)
        }
        Fault::Clock { node, change } => match network.node(node) {
            Ok(n) => {
                let saved = n.saved_clock();
                let skew = match change {
                    ClockChange::Bump(by) => {
                        ClockSkew { realtime: shifted(saved.skew.realtime, *by), ..saved.skew.clone() }
                    }
                    ClockChange::Drift(drift) => saved.skew.clone().drift(*drift),
                };
                let applied = n.configure_clock(skew, false).map(drop);
                (Undo::Clock { node: node.clone(), saved }, applied)
            }
            Err(e) => (Undo::Nothing, Err(e)),
        },
    }
}

/// Kills or stops `service` on `node`, or every service of the node; undone by starting again
/// what ran. A fault on what does not run fails: there is nothing to take down.
fn take_down(network: &Network, node: &str, service: Option<&str>, op: Op) -> (Undo, Result<()>) {
    let n = match network.node(node) {
        Ok(n) => n,
        Err(e) => return (Undo::Nothing, Err(e)),
    };
    let targets = match service {
        Some(name) => match n.service(name) {
            Ok(s) => vec![s],
            Err(e) => return (Undo::Nothing, Err(e)),
        },
        None => n.services().iter().map(|s| &**s).collect(),
    };
    let up = |state: ServiceState| matches!(state, ServiceState::Running(_) | ServiceState::Paused(_));
    let ran: Vec<String> = targets.iter().filter(|s| up(s.state())).map(|s| s.name().to_string()).collect();
    let undo = Undo::Start { node: node.to_string(), services: ran.clone() };
    if ran.is_empty() {
        let why = match (service, targets.first()) {
            (Some(name), Some(s)) => format!("{node}/{name} is {}, not running", s.state()),
            _ => format!("no service of {node} runs"),
        };
        return (undo, Err(nothing_to(&why, op)));
    }
    (undo, n.apply(op, service))
}

/// Why a fault could not be applied: `why` there was nothing to `op`.
fn nothing_to(why: &str, op: Op) -> Error {
    Error::State(format!("{why}, so the fault had nothing to {op}"))
}

/// `offset` moved by `by`.
fn shifted(offset: Offset, by: Offset) -> Offset {
    let nanos = offset.as_nanos().saturating_add(by.as_nanos());
    let magnitude = Duration::from_nanos(nanos.unsigned_abs());
    if nanos < 0 {
        Offset::behind(magnitude)
    } else {
        Offset::ahead(magnitude)
    }
}

/// What the schedule found, put back when it ends, however it ends (a panic too): the fault
/// under way undone, then the cuts, the shaping and the clocks as they were.
struct Guard<'a> {
    network: &'a Network,
    cuts: Vec<Cut>,
    qos: Vec<QosRule>,
    /// Every node's clocks, when clock faults were asked for.
    clocks: Vec<SavedClock>,
    /// The undo of the fault under way.
    current: Option<Undo>,
    done: bool,
}

impl<'a> Guard<'a> {
    fn new(network: &'a Network, spec: &NemesisSpec) -> Guard<'a> {
        let clocks = if spec.faults.contains(&FaultKind::Clock) {
            network.nodes().iter().map(Node::saved_clock).collect()
        } else {
            Vec::new()
        };
        Guard { network, cuts: network.cuts(), qos: network.qos_rules(), clocks, current: None, done: false }
    }

    fn undo_current(&mut self) -> Result<()> {
        self.current.take().map_or(Ok(()), |undo| undo.run(self.network))
    }

    /// Undoes the fault under way and puts back what changed; what failed, each as a line.
    fn put_back(&mut self) -> Vec<String> {
        self.done = true;
        let mut problems = Vec::new();
        if let Err(e) = self.undo_current() {
            problems.push(format!("undoing the last fault: {e}"));
        }
        let network = self.network;
        if network.cuts() != self.cuts {
            if let Err(e) = network.set_cuts(&self.cuts) {
                problems.push(format!("putting back the cuts: {e}"));
            }
        }
        if network.qos_rules() != self.qos {
            let reshaped = network
                .clear_qos()
                .and_then(|()| self.qos.iter().try_for_each(|rule| network.configure_qos(&rule.target, rule.qos)));
            if let Err(e) = reshaped {
                problems.push(format!("putting back the shaping: {e}"));
            }
        }
        for (node, saved) in network.nodes().iter().zip(&self.clocks) {
            if node.clock() != saved.skew {
                if let Err(e) = node.restore_clock(saved) {
                    problems.push(format!("putting back {}'s clock: {e}", node.name()));
                }
            }
        }
        problems
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if !self.done {
            for problem in self.put_back() {
                tracing::warn!("nemesis: {problem}");
            }
        }
    }
}

/// Serde of an optional [`Duration`] as its text.
mod optional_duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::units::{format_duration, parse_duration};

    // Serde hands `with` functions a reference to the field.
    #[allow(clippy::ref_option)]
    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => serializer.serialize_some(&format_duration(*d)),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| parse_duration(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bumps_add_to_the_offset() {
        let s = Duration::from_secs;
        assert_eq!(shifted(Offset::ahead(s(10)), Offset::behind(s(30))), Offset::behind(s(20)));
        assert_eq!(shifted(Offset::ZERO, Offset::ahead(s(5))), Offset::ahead(s(5)));
    }

    #[test]
    fn a_history_prints_and_serializes() {
        let planned = PlannedFault {
            id: 1,
            at: Duration::from_millis(2000),
            hold: Duration::from_millis(500),
            fault: Fault::Pause { node: "node1".into(), service: "web".into() },
        };
        let applied = |ended_at, error: Option<&str>| AppliedFault {
            planned: planned.clone(),
            started_at: Duration::from_millis(2003),
            ended_at,
            error: error.map(String::from),
        };
        let history = History {
            faults: vec![applied(Some(Duration::from_millis(2510)), None), applied(None, Some("it was stopped"))],
            stopped: true,
            error: None,
        };
        let text = history.to_string();
        assert_eq!(
            text,
            "   2.003s  +0.507s  pause node1/web\n   2.003s  holding  pause node1/web  (failed: it was stopped)\n\
             stopped before the end\n"
        );
        let json = serde_json::to_value(&history).unwrap();
        assert_eq!(json["faults"][0]["ended_at"], "2.51s");
        assert!(json["faults"][1].get("ended_at").is_none());
        assert_eq!(serde_json::from_value::<History>(json).unwrap(), history);
        assert!(outcome(History { error: Some("x".into()), ..History::default() })
            .unwrap_err()
            .to_string()
            .contains("could not leave the network as it found it: x"));
    }
}
