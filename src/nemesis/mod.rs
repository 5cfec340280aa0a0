//! Seeded fault schedules (a nemesis): kills, pauses, stops, partitions, one-way blocks, link
//! spikes and clock changes, drawn from a seed and applied to a live network one after another,
//! each undone when it ends.
//!
//! A schedule is made in two steps:
//!
//! 1. a [`NemesisSpec`] (a seed, the [`FaultKind`]s, the [`Range`] between fault starts, the
//!    range each fault holds, the schedule's length, the services a fault may pick) and the
//!    network's node and service names make a [`Plan`] ([`plan()`]): every draw comes from
//!    the seed, so the same seed, names and options give the same plan, byte for byte when
//!    printed; nothing about the network's state goes in;
//! 2. [`run`] (blocking) or [`start`] (in a thread, [`Running::stop`] to end it early) applies
//!    the plan to a [`Network`]: each fault at its time (or when the one before was undone,
//!    if that is later), held for its hold, then undone. The result is a [`History`].
//!
//! What a schedule promises:
//!
//! - **Refused up front, nothing applied**: a bad spec (no kinds, a kind twice, a range written
//!   backwards or starting at 0, no length), a service the nodes do not run, kinds none of
//!   which can apply (partition and block on one node; kill, pause and stop where nothing
//!   runs), qos where the kernel lacks sch_netem, clock where the nodes have no wall clocks of
//!   their own. [`check`] does the same checks and returns the plan.
//! - **Faults never overlap**: each is undone before the next begins. Undoing puts back what
//!   the fault changed: the services it killed or stopped (those that ran) started again, a
//!   paused one resumed, the cuts as they were, the node's shaping as it was, the node's
//!   clocks as they were (a drift's gain taken back too).
//! - **The network is left as found**: at the end, on [`Running::stop`], on a raised
//!   [`Cancel`](crate::cancel::Cancel) (Ctrl-C in the faces), on the network's own cancel and
//!   on a panic, the fault under way is undone, then the cuts, the shaping and the clocks are
//!   put back as the schedule found them. While a schedule runs it owns them: changes others
//!   make meanwhile are undone too.
//! - **Failures are told, not fatal**: a fault that cannot be applied (its service was
//!   stopped by someone else) is recorded in the history and the schedule goes on; what
//!   cannot be undone is in the history and makes [`run`] (and [`Running::stop`],
//!   [`Running::wait`]) fail, after everything else was put back.
//! - **On the timeline**: everything it does is recorded as the
//!   [`Actor::Nemesis`](crate::events::Actor::Nemesis)'s, between `nemesis_start` and
//!   `nemesis_end`, each fault between its `fault_start` and `fault_end`.
//!
//! The library's [`Network`] is always up while it exists; refusing a schedule for a network
//! that is not up (or gone) is for the faces that name networks (the CLI, Python).
//!
//! ```no_run
//! use netdriver::nemesis::{self, FaultKind, NemesisSpec};
//! use netdriver::{Cancel, Network, NetworkSpec};
//! use std::time::Duration;
//!
//! # fn f(network: &Network) -> netdriver::Result<()> {
//! let spec = NemesisSpec::new(7)
//!     .faults([FaultKind::Kill, FaultKind::Pause, FaultKind::Partition])
//!     .interval(Duration::from_secs(2), Duration::from_secs(5))
//!     .hold(Duration::from_secs(1), Duration::from_secs(3))
//!     .length(Duration::from_secs(60));
//! print!("{}", nemesis::check(network, &spec)?);
//! let history = nemesis::run(network, &spec, &Cancel::new())?;
//! print!("{history}");
//! # Ok(()) }
//! ```
//!
//! [`Network`]: crate::network::Network

mod plan;
mod rng;
mod run;

pub use crate::spec::{FaultKind, FaultServices, NemesisSpec, Range};
pub use plan::{plan, ClockChange, Fault, Plan, PlannedFault, Shape};
pub use run::{check, run, start, AppliedFault, History, Running};
