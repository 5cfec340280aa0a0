//! Services: one program per node and name, with its lifecycle, readiness probe, logs and
//! configuration file, and the vocabulary of operations on them ([`Op`]).
//!
//! Every operation is safe to call in any state: starting a running service, stopping a
//! stopped one or resuming one that is not paused does nothing; pausing a stopped service is
//! an error.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;
use serde_json::json;

use crate::config::ConfigFile;
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::files;
use crate::inside::{Entry, NodeCtx};
use crate::process::{self, Table, Tie};
use crate::runtime;

/// The environment variable that names the service a process belongs to.
const SERVICE_MARKER: &str = "NETDRIVER_SERVICE";

/// How a service is launched on one node: its spec with every template rendered.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) workdir: PathBuf,
    pub(crate) probe: Option<ReadyCheck>,
    pub(crate) ready_timeout: Duration,
    pub(crate) stop_timeout: Duration,
    /// The service's directory: logs, and the data directory below it.
    pub(crate) dir: PathBuf,
    pub(crate) data: PathBuf,
    /// The command that resets the state; empty to wipe `data`.
    pub(crate) reset: Vec<String>,
    /// Services whose start restarts this one.
    pub(crate) restart_with: Vec<String>,
    /// The configuration file, if the spec names one.
    pub(crate) config: Option<ConfigFile>,
}

/// A rendered readiness probe.
#[derive(Debug, Clone)]
pub(crate) enum ReadyCheck {
    /// Ready once any of the node's addresses accepts on the port.
    Tcp(Vec<SocketAddr>),
    Http(String),
}

/// What a service is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    /// Never started, or stopped.
    Stopped,
    /// Running with this pid.
    Running(u32),
    /// Stopped with SIGSTOP by `pause`.
    Paused(u32),
    /// It exited on its own (or was killed by something else).
    Exited(ExitStatus),
}

impl std::fmt::Display for ServiceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceState::Stopped => f.write_str("stopped"),
            ServiceState::Running(_) => f.write_str("running"),
            ServiceState::Paused(_) => f.write_str("paused"),
            ServiceState::Exited(status) => {
                match (status.code(), std::os::unix::process::ExitStatusExt::signal(status)) {
                    (Some(code), _) => write!(f, "exited({code})"),
                    (None, Some(sig)) => {
                        write!(f, "killed({})", Signal::try_from(sig).map_or("?", nix::sys::signal::Signal::as_str))
                    }
                    _ => f.write_str("exited"),
                }
            }
        }
    }
}

/// What an operation on a service (or on all of a node's services) does; the one vocabulary of
/// the CLI, the control socket and Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Start, and wait until ready ([`Service::start`]).
    Start,
    /// SIGTERM, grace period, SIGKILL of the tree ([`Service::stop`]).
    Stop,
    /// SIGKILL of the tree ([`Service::kill`]).
    Kill,
    /// SIGSTOP ([`Service::pause`]).
    Pause,
    /// SIGCONT ([`Service::resume`]).
    Resume,
    /// Stop, then start ([`Service::restart`]).
    Restart,
    /// Reset the state ([`Service::reset`]).
    Reset,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 7] = [Op::Start, Op::Stop, Op::Kill, Op::Pause, Op::Resume, Op::Restart, Op::Reset];

    /// The operation's name, as the CLI and the control socket spell it.
    pub fn name(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Kill => "kill",
            Op::Pause => "pause",
            Op::Resume => "resume",
            Op::Restart => "restart",
            Op::Reset => "reset",
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Op {
    type Err = Error;
    fn from_str(s: &str) -> Result<Op> {
        Op::ALL.into_iter().find(|op| op.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Op::ALL.iter().map(|op| op.name()).collect();
            Error::invalid("operation", format!("'{s}' (allowed: {})", names.join(", ")))
        })
    }
}

#[derive(Debug, Default)]
struct Run {
    child: Option<Child>,
    /// When the running process was spawned: its readiness timeout counts from there.
    spawned: Option<Instant>,
    paused: bool,
    exited: Option<ExitStatus>,
    /// Set while an operation stops the process: its exit is then that operation's event,
    /// not one the network notices.
    stopping: bool,
}

/// One service on one node.
///
/// Operations on one service run one at a time (a second `restart` waits for the first), so
/// that a stop never reaps what another operation started; `state` and `pid` never wait.
#[derive(Debug)]
pub struct Service {
    name: String,
    node: Arc<NodeCtx>,
    launch: Launch,
    /// Held for the whole of an operation.
    op: Mutex<()>,
    /// The process, held only to look at or change it.
    run: Mutex<Run>,
}

impl Service {
    pub(crate) fn new(name: String, node: Arc<NodeCtx>, launch: Launch) -> Service {
        Service { name, node, launch, op: Mutex::default(), run: Mutex::default() }
    }

    /// Waits until no other operation runs on the service, and keeps others out until dropped.
    pub(crate) fn operation(&self) -> MutexGuard<'_, ()> {
        self.op.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the service is doing now.
    pub fn state(&self) -> ServiceState {
        let mut run = self.lock();
        let paused = run.paused;
        match run.child.as_mut().map(|c| (c.id(), c.try_wait())) {
            Some((pid, Ok(None))) if paused => ServiceState::Paused(pid),
            Some((pid, Ok(None) | Err(_))) => ServiceState::Running(pid),
            // An operation is stopping it: that operation reaps it and records how it ended.
            Some((_, Ok(Some(status)))) if run.stopping => ServiceState::Exited(status),
            Some((pid, Ok(Some(status)))) => {
                run.child = None;
                run.paused = false;
                run.exited = Some(status);
                let details = json!({"pid": pid, "status": ServiceState::Exited(status).to_string()});
                self.node.net.events.noticed(EventKind::Exited, &self.node.name, &self.name, details);
                ServiceState::Exited(status)
            }
            None => run.exited.map_or(ServiceState::Stopped, ServiceState::Exited),
        }
    }

    /// The pid of the service's main process while it runs.
    pub fn pid(&self) -> Option<u32> {
        match self.state() {
            ServiceState::Running(pid) | ServiceState::Paused(pid) => Some(pid),
            _ => None,
        }
    }

    /// The file that receives the service's standard output.
    pub fn stdout_log(&self) -> PathBuf {
        self.launch.dir.join("stdout.log")
    }

    /// The file that receives the service's standard error.
    pub fn stderr_log(&self) -> PathBuf {
        self.launch.dir.join("stderr.log")
    }

    /// The service's data directory (`{data}` in templates), wiped by [`Service::reset`].
    pub fn data_dir(&self) -> &Path {
        &self.launch.data
    }

    /// The service's configuration file; an error if its spec names none.
    pub fn config_file(&self) -> Result<&ConfigFile> {
        self.launch.config.as_ref().ok_or_else(|| {
            Error::invalid(
                format!("configuration of {}/{}", self.node.name, self.name),
                "the service has no configuration file; its spec names one with `config`",
            )
        })
    }

    /// Merges `settings` into the service's configuration file (see [`ConfigFile::update`]).
    /// It takes effect when the service next starts: restart it to apply it now.
    pub fn configure(&self, settings: &serde_json::Value) -> Result<()> {
        self.config_file()?.update(settings)
    }

    /// Whether starting `other` restarts this service.
    pub(crate) fn restarts_with(&self, other: &str) -> bool {
        self.launch.restart_with.iter().any(|s| s == other)
    }

    /// How long stop waits after SIGTERM.
    pub(crate) fn stop_timeout(&self) -> Duration {
        self.launch.stop_timeout
    }

    /// Starts the service and waits until its readiness probe passes. A no-op if it runs.
    pub fn start(&self) -> Result<()> {
        self.start_fresh().map(drop)
    }

    /// Like [`Service::start`], returning whether it started a process.
    pub(crate) fn start_fresh(&self) -> Result<bool> {
        let _op = self.operation();
        self.start_now()
    }

    fn start_now(&self) -> Result<bool> {
        let spawned = self.spawn()?;
        if spawned {
            self.wait_ready()?;
        }
        Ok(spawned)
    }

    /// Stops the service: SIGTERM to its process group, then, after the grace period,
    /// SIGKILL to every process of its tree. A no-op if it is not running.
    pub fn stop(&self) -> Result<()> {
        let _op = self.operation();
        self.stop_now()
    }

    fn stop_now(&self) -> Result<()> {
        self.terminate();
        self.finish(Instant::now() + self.launch.stop_timeout, EventKind::Stopped)
    }

    /// Kills the service's whole process tree with SIGKILL at once.
    pub fn kill(&self) -> Result<()> {
        let _op = self.operation();
        self.finish(Instant::now(), EventKind::Killed)
    }

    /// Freezes the service's processes with SIGSTOP.
    pub fn pause(&self) -> Result<()> {
        let _op = self.operation();
        let Some(pid) = self.pid() else {
            return Err(Error::State(format!(
                "{}/{} is not running, so it cannot be paused; start it first",
                self.node.name, self.name
            )));
        };
        process::signal(&Table::scan().tree(pid as i32), Signal::SIGSTOP);
        self.lock().paused = true;
        self.record(EventKind::Paused, json!({"pid": pid}));
        Ok(())
    }

    /// Lets paused processes run again with SIGCONT. A no-op if it is not paused.
    pub fn resume(&self) -> Result<()> {
        let _op = self.operation();
        let mut run = self.lock();
        if let (Some(child), true) = (&run.child, run.paused) {
            process::signal(&Table::scan().tree(child.id() as i32), Signal::SIGCONT);
            self.record(EventKind::Resumed, json!({"pid": child.id()}));
        }
        run.paused = false;
        Ok(())
    }

    /// Stops the service if it runs, then starts it.
    pub fn restart(&self) -> Result<()> {
        let _op = self.operation();
        self.stop_now()?;
        self.start_now().map(drop)
    }

    /// Resets the service's state: runs its reset command inside the node, or wipes its data
    /// directory if it has none. A running service is stopped first and started again after.
    pub fn reset(&self) -> Result<()> {
        let _op = self.operation();
        let was_running = self.pid().is_some();
        self.stop_now()?;
        if let Some((program, args)) = self.launch.reset.split_first() {
            self.run_reset(program, args)?;
        } else {
            let data = &self.launch.data;
            files::remove_tree(data)?;
            files::make_dir(data, 0o700)?;
        }
        self.lock().exited = None;
        self.record(EventKind::Reset, serde_json::Value::Null);
        if was_running {
            self.start_now()?;
        }
        Ok(())
    }

    /// Runs the reset command inside the node, with the service's environment, its output
    /// appended to the service's logs.
    fn run_reset(&self, program: &str, args: &[String]) -> Result<()> {
        let (mut cmd, entry) = self.command(program, args)?;
        process::prepare(&mut cmd, entry.enter, Tie::Command, entry.hook.clone());
        let status = cmd.status().map_err(|e| {
            self.node.supervisor_gone().unwrap_or_else(|| {
                Error::io(format!("running the reset command of {}/{} ({program})", self.node.name, self.name), e)
            })
        })?;
        if !status.success() {
            return Err(self.failure(format!("reset command `{program} {}` failed ({status})", args.join(" "))));
        }
        Ok(())
    }

    /// A command for `program` inside the node with the service's environment, working
    /// directory and logs; the entry must live until it is spawned.
    fn command(&self, program: &str, args: &[String]) -> Result<(Command, Entry)> {
        let l = &self.launch;
        let (stdout, stderr) =
            (self.open_log(&self.stdout_log(), program)?, self.open_log(&self.stderr_log(), program)?);
        let entry = self.node.entry()?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(entry.env.iter().map(|(k, v)| (k, v)))
            .envs(l.env.iter().map(|(k, v)| (k, v)))
            .env(process::RUN_MARKER, &self.node.run_id)
            .env("NETDRIVER_NODE", &self.node.name)
            .env(SERVICE_MARKER, &self.name)
            .current_dir(&l.workdir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        Ok((cmd, entry))
    }

    /// Spawns the process unless it runs. Returns whether it spawned one.
    pub(crate) fn spawn(&self) -> Result<bool> {
        let mut run = self.lock();
        if let Some(child) = &mut run.child {
            if child.try_wait().ok().flatten().is_none() {
                return Ok(false);
            }
        }
        let l = &self.launch;
        let (mut cmd, entry) = self.command(&l.program, &l.args)?;
        process::prepare(&mut cmd, entry.enter, Tie::Service, entry.hook.clone());
        let child = runtime::on_spawner(move || {
            let spawned = cmd.spawn();
            drop(entry);
            spawned
        })
        .map_err(|e| {
            if let Some(gone) = self.node.supervisor_gone() {
                gone
            } else if let Err(missing) = files::program_for_nodes(&self.name, &l.program) {
                missing
            } else if !l.workdir.is_dir() {
                Error::invalid(
                    format!("workdir of {}/{}", self.node.name, self.name),
                    format!("{} is not a directory; create it or change `workdir`", l.workdir.display()),
                )
            } else {
                Error::io(format!("starting {}/{} ({})", self.node.name, self.name, l.program), e)
            }
        })?;
        let pid = child.id();
        *run = Run { child: Some(child), spawned: Some(Instant::now()), ..Run::default() };
        self.record(EventKind::Started, json!({"pid": pid}));
        Ok(true)
    }

    /// Waits for the readiness probe, failing if the process exits or the timeout passes
    /// (counted from the process's own spawn, however many others were spawned meanwhile).
    pub(crate) fn wait_ready(&self) -> Result<()> {
        let Some(probe) = &self.launch.probe else { return Ok(()) };
        let deadline = self.lock().spawned.unwrap_or_else(Instant::now) + self.launch.ready_timeout;
        loop {
            self.node.net.cancel.check(|| format!("waiting for {}/{} to be ready", self.node.name, self.name))?;
            if let ServiceState::Exited(status) = self.state() {
                return Err(self.failure(format!("exited while starting ({})", ServiceState::Exited(status))));
            }
            let ready = match probe {
                ReadyCheck::Tcp(addrs) => {
                    addrs.iter().any(|a| TcpStream::connect_timeout(a, Duration::from_millis(500)).is_ok())
                }
                ReadyCheck::Http(url) => self.node.net.http_ok(url),
            };
            if ready {
                let after = self.lock().spawned.map(|t| t.elapsed().as_secs_f64());
                self.record(EventKind::Ready, json!({"after": after}));
                return Ok(());
            }
            if Instant::now() >= deadline {
                let what = match probe {
                    ReadyCheck::Tcp(a) => format!("port {}", a.first().map_or(0, SocketAddr::port)),
                    ReadyCheck::Http(u) => format!("GET {u}"),
                };
                return Err(self.failure(format!(
                    "was not ready ({what}) {:?} after its start{}",
                    self.launch.ready_timeout,
                    host_strain().map(|s| format!("; {s}")).unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM to the process group (and SIGCONT if paused) without waiting.
    pub(crate) fn terminate(&self) {
        let mut run = self.lock();
        run.stopping = true;
        if let Some(child) = &run.child {
            let pid = child.id() as i32;
            process::signal(&[-pid], Signal::SIGTERM);
            if run.paused {
                process::signal(&Table::scan().tree(pid), Signal::SIGCONT);
            }
        }
    }

    /// Waits for the process to exit until `deadline`, then kills its whole tree and reaps it,
    /// recording it as `event` (stopped or killed).
    pub(crate) fn finish(&self, deadline: Instant, event: EventKind) -> Result<()> {
        self.lock().stopping = true;
        self.wait_exit(deadline);
        process::kill_until_gone(|| self.processes(&Table::scan()));
        self.reap(event)
    }

    /// Waits until the main process has exited or `deadline` has passed.
    pub(crate) fn wait_exit(&self, deadline: Instant) {
        loop {
            if let Some(child) = &mut self.lock().child {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
            } else {
                return;
            }
            if Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The service's processes in `table`: its main process's tree (a leader that has exited
    /// still names its group), and whatever escaped the tree (daemons that left their session
    /// and parent) but carries the service's marks.
    pub(crate) fn processes(&self, table: &Table) -> Vec<i32> {
        let main = self.lock().child.as_ref().map(|c| c.id() as i32);
        let mut all = main.map(|pid| table.tree(pid)).unwrap_or_default();
        let inodes = std::collections::HashSet::from([self.node.ns.net.inode]);
        let marks =
            [format!("{}={}", process::RUN_MARKER, self.node.run_id), format!("{SERVICE_MARKER}={}", self.name)];
        all.extend(table.in_namespaces(&inodes, &marks));
        all
    }

    /// Reaps the main process (once its tree is gone) and marks the service stopped; a process
    /// there was is recorded as `event` (stopped or killed).
    pub(crate) fn reap(&self, event: EventKind) -> Result<()> {
        let mut run = self.lock();
        let waited = run.child.take().map(|mut child| (child.id(), child.wait()));
        *run = Run::default();
        drop(run);
        if let Some((pid, Ok(status))) = &waited {
            self.record(event, json!({"pid": pid, "status": ServiceState::Exited(*status).to_string()}));
        }
        match waited.map(|(_, w)| w) {
            Some(Err(e)) => Err(Error::io(format!("waiting for {}/{}", self.node.name, self.name), e)),
            _ => Ok(()),
        }
    }

    fn open_log(&self, path: &Path, program: &str) -> Result<File> {
        let mut file = files::create_file(path, 0o644, true)?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let _ = writeln!(file, "--- netdriver: {}: running {program} at unix time {now} ---", self.name);
        Ok(file)
    }

    fn failure(&self, reason: String) -> Error {
        Error::ServiceFailed {
            node: self.node.name.clone(),
            service: self.name.clone(),
            reason,
            log: self.stderr_log(),
            tail: [self.stderr_log(), self.stdout_log()].iter().map(|p| tail(p, 15)).collect::<Vec<_>>().join(""),
        }
    }

    /// Records an event of this service, made by the calling thread's actor.
    pub(crate) fn record(&self, kind: EventKind, details: serde_json::Value) {
        self.node.net.events.record(kind, Some(&self.node.name), Some(&self.name), details);
    }

    fn lock(&self) -> MutexGuard<'_, Run> {
        self.run.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The last `n` lines of a file, each indented, or nothing.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().fold(String::new(), |mut out, l| {
        let _ = writeln!(out, "  | {l}");
        out
    })
}

/// What the host shows of being overloaded, for a readiness timeout's message: memory nearly
/// gone, or more runnable tasks than CPUs. `None` when it looks fine.
fn host_strain() -> Option<String> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = |key: &str| -> Option<u64> {
        meminfo.lines().find_map(|l| l.strip_prefix(key))?.trim().trim_end_matches("kB").trim().parse().ok()
    };
    let (total, available) = (kib("MemTotal:")?, kib("MemAvailable:")?);
    let load: f64 = std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()?;
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut strain = Vec::new();
    if available * 10 < total {
        strain.push(format!("the host is short of memory ({} of {} MiB available)", available >> 10, total >> 10));
    }
    if load > 2.0 * cpus as f64 {
        strain.push(format!("the host is short of CPU (load {load:.1} on {cpus} CPUs)"));
    }
    (!strain.is_empty())
        .then(|| format!("{}: give services longer (ready_timeout) or run fewer nodes", strain.join(", ")))
}
