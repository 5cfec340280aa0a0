//! Nodes: one set of namespaces with an address, the services that run in it, and commands
//! run inside it.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::Arc;

use crate::clock::{ClockReport, ClockSkew};
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::inside::{Entry, NodeCtx};
use crate::ns;
use crate::process::{self, Tie};
use crate::service::{Op, Service, ServiceState};
use crate::wallclock::{Page, Setting};

/// One node of a network.
#[derive(Debug)]
pub struct Node {
    ctx: Arc<NodeCtx>,
    index: usize,
    ip: Ipv4Addr,
    ip6: Option<Ipv6Addr>,
    dir: PathBuf,
    url: Option<String>,
    services: Vec<Arc<Service>>,
}

impl Node {
    pub(crate) fn new(
        ctx: Arc<NodeCtx>,
        index: usize,
        ip: Ipv4Addr,
        ip6: Option<Ipv6Addr>,
        dir: PathBuf,
        url: Option<String>,
        services: Vec<Arc<Service>>,
    ) -> Node {
        Node { ctx, index, ip, ip6, dir, url, services }
    }

    /// The node's name, e.g. `node0`; also its hostname, resolvable from every node.
    pub fn name(&self) -> &str {
        &self.ctx.name
    }

    /// The node's index in the network, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The node's IPv4 address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The node's IPv6 address, in a dual-stack network.
    pub fn ip6(&self) -> Option<Ipv6Addr> {
        self.ip6
    }

    /// The URL of the node's main service, if the spec names one.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// The node's directory in the run directory (logs and data of its services).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The node's services, in start order.
    pub fn services(&self) -> &[Arc<Service>] {
        &self.services
    }

    /// The service called `name`.
    pub fn service(&self, name: &str) -> Result<&Service> {
        self.services.iter().find(|s| s.name() == name).map(|s| &**s).ok_or_else(|| Error::UnknownService {
            node: self.name().to_string(),
            service: name.to_string(),
            known: self.services.iter().map(|s| s.name()).collect::<Vec<_>>().join(", "),
        })
    }

    /// Starts every service in dependency order, each waiting for its readiness probe (and
    /// restarting the services bound to it, see [`Node::start_service`]).
    pub fn start(&self) -> Result<()> {
        self.services.iter().try_for_each(|s| self.started(s))
    }

    /// Starts the service `name` and waits until it is ready. If it was not running, the
    /// services that must restart with it ([`ServiceSpec::restart_with`]) restart if they run
    /// or exited on their own (not if they were stopped). A no-op if it runs.
    ///
    /// [`ServiceSpec::restart_with`]: crate::spec::ServiceSpec::restart_with
    pub fn start_service(&self, name: &str) -> Result<()> {
        self.started(self.service(name)?)
    }

    /// Stops the service `name` if it runs, then starts it as [`Node::start_service`] does.
    pub fn restart_service(&self, name: &str) -> Result<()> {
        let service = self.service(name)?;
        service.stop()?;
        self.started(service)
    }

    /// Applies `op` to the service `service`, or with `None` to every service of the node in
    /// dependency order (reversed for the operations that take a node down). Starting honours
    /// the restart rule of [`Node::start_service`].
    pub fn apply(&self, op: Op, service: Option<&str>) -> Result<()> {
        let Some(name) = service else {
            return match op {
                Op::Start => self.start(),
                Op::Stop => self.stop(),
                Op::Restart => self.stop().and_then(|()| self.start()),
                Op::Kill | Op::Pause => self.services.iter().rev().try_for_each(|s| self.apply(op, Some(s.name()))),
                Op::Resume | Op::Reset => self.services.iter().try_for_each(|s| self.apply(op, Some(s.name()))),
            };
        };
        let service = self.service(name)?;
        match op {
            Op::Start => self.started(service),
            Op::Stop => service.stop(),
            Op::Kill => service.kill(),
            Op::Pause => service.pause(),
            Op::Resume => service.resume(),
            Op::Restart => self.restart_service(name),
            Op::Reset => service.reset(),
        }
    }

    fn started(&self, service: &Service) -> Result<()> {
        if service.start_fresh()? {
            // Running, or exited on its own (a client that died with its server); a service
            // stopped on purpose stays stopped.
            let up_or_died = |s: &Service| s.pid().is_some() || matches!(s.state(), ServiceState::Exited(_));
            for bound in self.services.iter().filter(|s| s.restarts_with(service.name()) && up_or_died(s)) {
                bound.record(EventKind::Restarted, serde_json::json!({"with": service.name()}));
                bound.restart()?;
            }
        }
        Ok(())
    }

    /// Stops every service in reverse dependency order.
    pub fn stop(&self) -> Result<()> {
        self.services.iter().rev().try_for_each(|s| s.stop())
    }

    /// Spawns `cmd` inside the node (its network, mount, UTS and time namespaces, with its
    /// clock's environment).
    ///
    /// The child is yours to wait for; teardown kills it if it still runs.
    pub fn spawn(&self, cmd: &mut Command) -> Result<Child> {
        let _entry = self.prepare(cmd)?;
        let spawned = cmd.spawn();
        spawned.map_err(|e| self.run_error(cmd, e))
    }

    /// Runs `cmd` inside the node to completion and collects its output.
    pub fn output(&self, cmd: &mut Command) -> Result<Output> {
        let _entry = self.prepare(cmd)?;
        let ran = cmd.output();
        ran.map_err(|e| self.run_error(cmd, e))
    }

    /// Sets the node's clocks. The wall clock (its offset and drift) changes at once for every
    /// program of the node, running ones included. The monotonic and boottime clocks and the
    /// time zone reach the processes started from now on (a time namespace cannot change under
    /// a running process, and `TZ` is read at start): the report names the running services
    /// that keep the old ones, and with `restart` restarts them. A new drift with the same
    /// offset goes on from the node's time as it is, so the clock does not jump.
    pub fn configure_clock(&self, skew: ClockSkew, restart: bool) -> Result<ClockReport> {
        skew.validate()?;
        let mut clock = self.ctx.clock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if skew.moves_wall_clock() && clock.page.is_none() {
            return Err(Error::invalid(
                "clock",
                format!(
                    "{}'s wall clock cannot move: the network runs without per-node wall clocks (wall_clock = false); \
                     bring it up with them to set offsets or drifts of the wall clock",
                    self.name()
                ),
            ));
        }
        let restart_needed = clock.skew.restart_needed_for(&skew);
        if (clock.skew.monotonic, clock.skew.boottime) != (skew.monotonic, skew.boottime) {
            clock.timens = if skew.needs_namespace() {
                Some(ns::create_time(skew.monotonic.secs_nanos(), skew.boottime.secs_nanos())?)
            } else {
                None
            };
        }
        let same_offset = skew.realtime == clock.skew.realtime;
        if let Some(page) = &mut clock.page {
            let now = realtime_ns();
            let offset_ns = if same_offset { page.get().node_time(now) - now } else { skew.realtime.as_nanos() };
            page.set(Setting { offset_ns, base_ns: now, rate_ppb: skew.drift.as_ppb() });
        }
        let details = serde_json::json!({"skew": skew});
        clock.skew = skew;
        drop(clock);
        self.ctx.net.events.record(EventKind::Clock, Some(self.name()), None, details);
        let mut report = ClockReport { unreached: self.unreached(), ..ClockReport::default() };
        if restart_needed {
            report.restart_needed =
                self.services.iter().filter(|s| s.pid().is_some()).map(|s| s.name().to_string()).collect();
        }
        if restart {
            for name in std::mem::take(&mut report.restart_needed) {
                self.restart_service(&name)?;
                report.restarted.push(name);
            }
        }
        Ok(report)
    }

    /// The programs of the node the clock supervisor could not shift, and why; each once.
    pub fn unreached(&self) -> Vec<(String, String)> {
        let log = self.ctx.clock.lock().unwrap_or_else(std::sync::PoisonError::into_inner).page.as_ref().map(Page::log);
        let log = log.and_then(|log| std::fs::read_to_string(log).ok()).unwrap_or_default();
        let mut found: Vec<(String, String)> = Vec::new();
        for line in log.lines() {
            // "pid 123 (/usr/bin/strace): it could not be traced (...)"
            let Some((who, why)) = line.split_once("): ") else { continue };
            let program = who.split_once(" (").map_or(who, |(_, exe)| exe).to_string();
            if !found.iter().any(|(p, w)| *p == program && w == why) {
                found.push((program, why.to_string()));
            }
        }
        found
    }

    /// The node's current clock setting.
    pub fn clock(&self) -> ClockSkew {
        self.ctx.clock.lock().unwrap_or_else(std::sync::PoisonError::into_inner).skew.clone()
    }

    /// Whether the node has a wall clock of its own (the network was brought up with
    /// [`NetworkSpec::wall_clock`]), so that its offset and drift can change.
    ///
    /// [`NetworkSpec::wall_clock`]: crate::spec::NetworkSpec::wall_clock
    pub fn has_wall_clock(&self) -> bool {
        self.ctx.clock.lock().unwrap_or_else(std::sync::PoisonError::into_inner).page.is_some()
    }

    /// The node's clocks as they are, for [`Node::restore_clock`].
    pub(crate) fn saved_clock(&self) -> SavedClock {
        let clock = self.ctx.clock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        SavedClock { skew: clock.skew.clone(), wall: clock.page.as_ref().map(Page::get) }
    }

    /// Puts the node's clocks back as `saved` had them: the setting, and the wall clock on the
    /// line it was on then, as if the changes since had not happened (what a drift gained
    /// meanwhile is taken back too).
    pub(crate) fn restore_clock(&self, saved: &SavedClock) -> Result<()> {
        self.configure_clock(saved.skew.clone(), false)?;
        let mut clock = self.ctx.clock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let (Some(page), Some(wall)) = (&mut clock.page, saved.wall) {
            page.set(wall);
        }
        Ok(())
    }

    /// Runs `argv` inside the node to completion and collects its output.
    pub fn exec<I, S>(&self, argv: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut argv = argv.into_iter();
        let program = argv.next().ok_or_else(|| Error::invalid("command", "empty command line"))?;
        self.output(Command::new(program).args(argv))
    }

    /// The body of a GET of `url` from the host, if it answers with a 2xx status in a second.
    pub(crate) fn http_text(&self, url: &str) -> Option<String> {
        self.ctx.net.http_text(url)
    }

    /// What a process needs to enter the node.
    pub(crate) fn entry(&self) -> Result<Entry> {
        self.ctx.entry()
    }

    /// Why `cmd` could not run: a gone clock supervisor or a missing program is named as such.
    fn run_error(&self, cmd: &Command, e: std::io::Error) -> Error {
        if let Some(gone) = self.ctx.supervisor_gone() {
            return gone;
        }
        let program = cmd.get_program().to_string_lossy().into_owned();
        match e.kind() {
            std::io::ErrorKind::NotFound => {
                match crate::files::program_for_nodes(&format!("exec on {}", self.name()), &program) {
                    Err(missing) => missing,
                    Ok(_) => Error::io(format!("running {program} on {}", self.name()), e),
                }
            }
            _ => Error::io(format!("running {program} on {}", self.name()), e),
        }
    }

    /// Sets `cmd` up to run inside the node; keep the entry until it is spawned.
    fn prepare(&self, cmd: &mut Command) -> Result<Entry> {
        let entry = self.ctx.entry()?;
        cmd.envs(entry.env.iter().map(|(k, v)| (k, v)))
            .env(process::RUN_MARKER, &self.ctx.run_id)
            .env("NETDRIVER_NODE", self.name());
        process::prepare(cmd, entry.enter, Tie::Command, entry.hook.clone());
        Ok(entry)
    }
}

/// A node's clocks at one moment ([`Node::saved_clock`]).
#[derive(Debug, Clone)]
pub(crate) struct SavedClock {
    /// The setting.
    pub(crate) skew: ClockSkew,
    /// The wall clock's page, if the node has one.
    wall: Option<Setting>,
}

/// Kills every process left in the nodes' network namespaces.
pub(crate) fn kill_leftovers(nodes: &[Node]) -> usize {
    let inodes: HashSet<u64> = nodes.iter().map(|n| n.ctx.ns.net.inode).collect();
    process::kill_until_gone(|| process::Table::scan().in_namespaces(&inodes, &[]))
}

/// The host's CLOCK_REALTIME in nanoseconds.
fn realtime_ns() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_nanos()).unwrap_or(i64::MAX)
}
