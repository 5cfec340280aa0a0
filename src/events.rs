//! The timeline of a run: every change made on a network, whoever made it, and every service
//! state change the network notices, appended as it happens to `<run_dir>/events.jsonl` (one
//! JSON object a line, kept after teardown like the logs).
//!
//! Who made a change is the [`Actor`] of the calling thread ([`acting_as`]), or else the
//! network's own (the face that brought it up: the CLI's controller, Python, or the library).

use std::cell::Cell;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use crate::files;

/// The file's name in the run directory.
pub const FILE: &str = "events.jsonl";

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Seconds since the network's bring-up began.
    pub t: f64,
    /// The host's wall clock, UTC, RFC 3339 with milliseconds.
    pub wall: String,
    /// What happened.
    pub kind: EventKind,
    /// The node it happened on, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The service it happened to, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Who did it.
    pub by: Actor,
    /// The details, by kind (a pid, an exit status, the groups of a partition, ...).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

/// What an [`Event`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The network is up (`nodes`, `subnet`).
    Up,
    /// The network is being torn down.
    Down,
    /// A service's process was spawned (`pid`).
    Started,
    /// Its readiness probe passed (`after`: seconds since the spawn).
    Ready,
    /// It exited on its own, or something else killed it (`status`).
    Exited,
    /// A rule restarted it: it restarts with the service in `with`.
    Restarted,
    /// `stop`: SIGTERM, the grace period, SIGKILL of what was left.
    Stopped,
    /// `kill`: SIGKILL of its tree.
    Killed,
    /// `pause`: SIGSTOP.
    Paused,
    /// `resume`: SIGCONT.
    Resumed,
    /// `reset`: its state wiped or its reset command run.
    Reset,
    /// The network was split (`cuts`: senders and receivers, `groups` when given as groups).
    Partition,
    /// One-way block (`from`, `to`).
    Block,
    /// Every partition and block removed.
    Heal,
    /// Link shaping set (`target`, `qos`).
    Qos,
    /// Link shaping removed (`target`, or every node's).
    QosCleared,
    /// A node's clocks set (`skew`).
    Clock,
    /// A fault schedule began (`seed`, `faults`, `length`).
    NemesisStart,
    /// It ended, every fault undone (`faults`: how many were applied; `error` if one failed).
    NemesisEnd,
    /// A fault began (`id`, `fault`, `hold`).
    FaultStart,
    /// That fault was undone (`id`, `fault`).
    FaultEnd,
}

impl EventKind {
    /// The kind as the file spells it (`qos_cleared`).
    pub fn name(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }
}

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    /// A program using the Rust library.
    Library,
    /// The command line (its controller, or another invocation through the control socket).
    Cli,
    /// The Python package.
    Python,
    /// A fault schedule.
    Nemesis,
    /// The network itself: what it noticed (a service that exited).
    Network,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Actor::Library => "library",
            Actor::Cli => "cli",
            Actor::Python => "python",
            Actor::Nemesis => "nemesis",
            Actor::Network => "network",
        })
    }
}

thread_local! {
    static ACTOR: Cell<Option<Actor>> = const { Cell::new(None) };
}

/// Runs `f` with changes it makes on any network recorded as made by `actor`.
pub fn acting_as<T>(actor: Actor, f: impl FnOnce() -> T) -> T {
    let before = ACTOR.with(|a| a.replace(Some(actor)));
    let result = f();
    ACTOR.with(|a| a.set(before));
    result
}

/// The open timeline of a live network.
#[derive(Debug)]
pub(crate) struct EventLog {
    path: PathBuf,
    file: Mutex<File>,
    since: Instant,
    /// Who made changes when the calling thread names no one.
    default_actor: Mutex<Actor>,
}

impl EventLog {
    /// Creates `<run_dir>/events.jsonl`; `t` counts from now.
    pub(crate) fn create(run_dir: &Path) -> Result<EventLog> {
        let path = run_dir.join(FILE);
        let file = files::create_file(&path, 0o644, true)?;
        Ok(EventLog { path, file: Mutex::new(file), since: Instant::now(), default_actor: Mutex::new(Actor::Library) })
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Records changes the calling thread makes without naming an actor as `actor`'s.
    pub(crate) fn set_default_actor(&self, actor: Actor) {
        *self.default_actor.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = actor;
    }

    /// Who the calling thread acts as.
    fn actor(&self) -> Actor {
        ACTOR
            .with(Cell::get)
            .unwrap_or_else(|| *self.default_actor.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Appends an event made by the calling thread's actor.
    pub(crate) fn record(
        &self,
        kind: EventKind,
        node: Option<&str>,
        service: Option<&str>,
        details: serde_json::Value,
    ) {
        self.append(kind, node, service, self.actor(), details);
    }

    /// Appends an event the network noticed itself.
    pub(crate) fn noticed(&self, kind: EventKind, node: &str, service: &str, details: serde_json::Value) {
        self.append(kind, Some(node), Some(service), Actor::Network, details);
    }

    fn append(
        &self,
        kind: EventKind,
        node: Option<&str>,
        service: Option<&str>,
        by: Actor,
        details: serde_json::Value,
    ) {
        let event = Event {
            t: self.since.elapsed().as_secs_f64(),
            wall: rfc3339(SystemTime::now()),
            kind,
            node: node.map(str::to_string),
            service: service.map(str::to_string),
            by,
            details,
        };
        let mut line = serde_json::to_vec(&event).expect("an event serializes");
        line.push(b'\n');
        // One write of a whole line to a file opened for appending: lines never interleave.
        let mut file = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = file.write_all(&line) {
            tracing::warn!("appending to {}: {e}", self.path.display());
        }
    }
}

/// How often [`watch`] looks for new lines.
const POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Calls `each` with every event of the timeline at `path` and its line, in order; with
/// `follow`, goes on with the lines appended later, until the network's `down` event.
pub fn watch(path: &Path, follow: bool, mut each: impl FnMut(&Event, &str)) -> Result<()> {
    let mut file = File::open(path).map_err(|e| {
        Error::invalid(
            "events",
            format!(
                "cannot read {} ({e}): give the run directory of a network (where its logs are; see `netdriver status`)",
                path.display()
            ),
        )
    })?;
    let mut pending = String::new();
    loop {
        file.read_to_string(&mut pending).context(|| format!("reading {}", path.display()))?;
        let complete = pending.rfind('\n').map_or(0, |end| end + 1);
        let lines: String = pending.drain(..complete).collect();
        let events = parse(&lines).map_err(|(line, e)| Error::invalid(format!("{}:{line}", path.display()), e))?;
        for (event, line) in events.iter().zip(lines.lines().filter(|l| !l.trim().is_empty())) {
            each(event, line);
        }
        if !follow || events.iter().any(|e| e.kind == EventKind::Down) {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
}

/// The events of the timeline at `path`, in order. A last line being written is left out.
pub fn read(path: &Path) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    watch(path, false, |event, _| events.push(event.clone()))?;
    Ok(events)
}

/// The events of a timeline's text; on a malformed line, its number and the error.
pub fn parse(text: &str) -> std::result::Result<Vec<Event>, (usize, String)> {
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| (i + 1, format!("not an event: {e}"))))
        .collect()
}

/// `time` as `2026-12-01T16:08:29.123Z`.
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (days, secs) = (since.as_secs() / 86_400, since.as_secs() % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn wall_clock_is_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_796_140_044_123);
        assert_eq!(rfc3339(t), "2026-12-01T15:47:24.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn lines_parse_and_a_partial_last_line_is_left_out() {
        let line = r#"{"t":1.5,"wall":"x","kind":"qos_cleared","node":"node0","by":"cli"}"#;
        let events = parse(&format!("{line}\n{line}\n{{\"t\":")).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(
            (events[0].kind, events[0].by, events[0].service.as_deref()),
            (EventKind::QosCleared, Actor::Cli, None)
        );
        assert_eq!(EventKind::QosCleared.name(), "qos_cleared");
        assert_eq!(parse("{}\n").unwrap_err().0, 1);
    }

    #[test]
    fn the_thread_actor_wins_and_is_restored() {
        assert_eq!(ACTOR.with(Cell::get), None);
        acting_as(Actor::Nemesis, || {
            assert_eq!(ACTOR.with(Cell::get), Some(Actor::Nemesis));
            acting_as(Actor::Cli, || assert_eq!(ACTOR.with(Cell::get), Some(Actor::Cli)));
            assert_eq!(ACTOR.with(Cell::get), Some(Actor::Nemesis));
        });
        assert_eq!(ACTOR.with(Cell::get), None);
    }
}
