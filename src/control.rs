//! The control socket: how other processes (the CLI, scripts) drive a live network.
//!
//! A controller serves its [`Network`] on `/run/netdriver/<id>.sock`. Each connection carries
//! one JSON request and one JSON answer. To run a command inside a node, the client asks for
//! the node's namespace descriptors, which come back over the socket (SCM_RIGHTS), and spawns
//! the command itself: its terminal, standard streams and exit status stay the client's.

use std::io::{BufRead, BufReader, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};

use crate::clock::{ClockReport, ClockSkew};
use crate::error::{Context, Error, Result};
use crate::fabric::Enter;
use crate::network::Direction;
use crate::network::Network;
use crate::node::Node;
use crate::process::{self, Tie};
use crate::registry::{self, Record};
use crate::service::Service;
use crate::shaping::Qos;

/// What an operation on a node or service does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Start (and wait until ready).
    Start,
    /// SIGTERM, grace period, SIGKILL of the tree.
    Stop,
    /// SIGKILL of the tree.
    Kill,
    /// SIGSTOP.
    Pause,
    /// SIGCONT.
    Resume,
    /// Stop, then start.
    Restart,
    /// Wipe the data directory.
    Reset,
}

impl std::str::FromStr for Op {
    type Err = Error;
    fn from_str(s: &str) -> Result<Op> {
        let all = [Op::Start, Op::Stop, Op::Kill, Op::Pause, Op::Resume, Op::Restart, Op::Reset];
        all.into_iter().find(|op| op.name() == s).ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|op| op.name()).collect();
            Error::invalid("operation", format!("'{s}' (allowed: {})", names.join(", ")))
        })
    }
}

impl Op {
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

    /// Applies the operation to one service of `node`.
    pub fn apply(self, node: &Node, service: &Service) -> Result<()> {
        match self {
            Op::Start => node.start_service(service.name()),
            Op::Stop => service.stop(),
            Op::Kill => service.kill(),
            Op::Pause => service.pause(),
            Op::Resume => service.resume(),
            Op::Restart => node.restart_service(service.name()),
            Op::Reset => service.reset(),
        }
    }

    /// Applies the operation to every service of a node, in dependency order (reverse
    /// order for the ones that take a node down).
    pub fn apply_node(self, node: &Node) -> Result<()> {
        match self {
            Op::Start => node.start(),
            Op::Stop => node.stop(),
            Op::Restart => node.stop().and_then(|()| node.start()),
            Op::Kill | Op::Pause => node.services().iter().rev().try_for_each(|s| self.apply(node, s)),
            Op::Resume | Op::Reset => node.services().iter().try_for_each(|s| self.apply(node, s)),
        }
    }
}

/// A snapshot of a network for `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// Run id.
    pub id: String,
    /// Network name.
    pub name: String,
    /// Subnet in CIDR form.
    pub subnet: String,
    /// Run directory (logs).
    pub run_dir: PathBuf,
    /// One entry per node.
    pub nodes: Vec<NodeStatus>,
    /// (from, to) node pairs whose traffic is dropped.
    pub cuts: Vec<(String, String)>,
}

/// One node in a [`Status`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Node name.
    pub name: String,
    /// Node address.
    pub ip: String,
    /// Its services.
    pub services: Vec<ServiceStatus>,
}

/// One service in a [`Status`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Service name.
    pub name: String,
    /// State as text: running, stopped, paused, exited(N), killed(SIG).
    pub state: String,
    /// Main pid while it runs.
    pub pid: Option<u32>,
}

impl Status {
    /// The status of `network` now.
    pub fn of(network: &Network) -> Status {
        Status {
            id: network.id().to_string(),
            name: network.name().to_string(),
            subnet: network.subnet().to_string(),
            run_dir: network.run_dir().to_path_buf(),
            nodes: network
                .nodes()
                .iter()
                .map(|n| NodeStatus {
                    name: n.name().to_string(),
                    ip: n.ip().to_string(),
                    services: n
                        .services()
                        .iter()
                        .map(|s| ServiceStatus {
                            name: s.name().to_string(),
                            state: s.state().to_string(),
                            pid: s.pid(),
                        })
                        .collect(),
                })
                .collect(),
            cuts: network.cuts(),
        }
    }
}

/// What a QoS request shapes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum QosTarget {
    /// What a node sends, receives, or both.
    Node {
        /// Node name or index.
        node: String,
        /// Which of its traffic.
        direction: Direction,
    },
    /// What `from` sends to `to` (and back, with `both`).
    Pair {
        /// Sender.
        from: String,
        /// Receiver.
        to: String,
        /// Both ways.
        both: bool,
    },
}

/// A service's log files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Logs {
    /// `node/service`.
    pub service: String,
    /// Its standard output.
    pub stdout: PathBuf,
    /// Its standard error.
    pub stderr: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "lowercase")]
enum Request {
    Status,
    Op { op: Op, target: String },
    Logs { target: String },
    Enter { node: String },
    Partition { groups: Vec<Vec<String>> },
    Clock { node: String, skew: ClockSkew, restart: bool },
    Qos { target: QosTarget, qos: Qos },
    ClearQos,
    Block { from: String, to: String },
    Heal,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "lowercase")]
enum Answer {
    Done,
    Failed {
        error: String,
    },
    Status(Status),
    Logs {
        logs: Vec<Logs>,
    },
    Clock(ClockReport),
    /// Comes with the node's namespace descriptors: net, uts, mnt and, if its clocks are
    /// shifted, time; `env` applies the node's wall clock and time zone.
    Enter {
        env: Vec<(String, String)>,
    },
}

/// Serves a network on its control socket until [`Server::shutdown`].
#[derive(Debug)]
pub struct Server<'a> {
    network: &'a Network,
    listener: UnixListener,
    path: PathBuf,
    stopping: AtomicBool,
}

impl<'a> Server<'a> {
    /// Binds the network's control socket.
    pub fn bind(network: &'a Network) -> Result<Server<'a>> {
        let path = network.record().socket();
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).context(|| format!("binding {}", path.display()))?;
        Ok(Server { network, listener, path, stopping: AtomicBool::new(false) })
    }

    /// Answers requests, one connection at a time, until shut down.
    pub fn run(&self) {
        for stream in self.listener.incoming() {
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            if let Ok(stream) = stream {
                if let Err(e) = self.handle(stream) {
                    tracing::warn!("control socket: {e}");
                }
            }
        }
    }

    /// Makes [`Server::run`] return.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = UnixStream::connect(&self.path);
    }

    fn handle(&self, stream: UnixStream) -> Result<()> {
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).context(|| "reading a request")?;
        let request: Request =
            serde_json::from_str(&line).map_err(|e| Error::invalid("control request", e.to_string()))?;
        if let Request::Enter { node } = &request {
            return self.enter(&stream, node);
        }
        let answer = self.answer(&request).unwrap_or_else(|e| Answer::Failed { error: e.to_string() });
        let bytes = serde_json::to_vec(&answer).expect("answers serialize");
        (&stream).write_all(&bytes).context(|| "writing an answer")
    }

    /// Answers an Enter request with the node's namespace descriptors.
    fn enter(&self, stream: &UnixStream, node: &str) -> Result<()> {
        let entry = self.network.node(node).and_then(|n| n.entry());
        let (answer, fds) = match &entry {
            Ok(e) => {
                let fds: Vec<RawFd> = [e.enter.net, e.enter.uts, e.enter.mnt].into_iter().chain(e.enter.time).collect();
                (Answer::Enter { env: e.env.clone() }, fds)
            }
            Err(e) => (Answer::Failed { error: e.to_string() }, Vec::new()),
        };
        let bytes = serde_json::to_vec(&answer).expect("answers serialize");
        sendmsg::<()>(
            stream.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .context(|| "sending namespace descriptors")?;
        Ok(())
    }

    fn answer(&self, request: &Request) -> Result<Answer> {
        let network = self.network;
        Ok(match request {
            Request::Status => Answer::Status(Status::of(network)),
            Request::Op { op, target } => {
                match target_of(network, target)? {
                    (node, Some(service)) => op.apply(node, service)?,
                    (node, None) => op.apply_node(node)?,
                }
                Answer::Done
            }
            Request::Logs { target } => {
                let (node, service) = target_of(network, target)?;
                let services = match service {
                    Some(s) => vec![s],
                    None => node.services().iter().collect(),
                };
                let logs = services
                    .into_iter()
                    .map(|s| Logs {
                        service: format!("{}/{}", node.name(), s.name()),
                        stdout: s.stdout_log(),
                        stderr: s.stderr_log(),
                    })
                    .collect();
                Answer::Logs { logs }
            }
            Request::Enter { .. } => unreachable!("handle() answers Enter with descriptors"),
            Request::Partition { groups } => {
                let groups: Vec<Vec<&str>> = groups.iter().map(|g| g.iter().map(String::as_str).collect()).collect();
                let groups: Vec<&[&str]> = groups.iter().map(Vec::as_slice).collect();
                network.partition(&groups)?;
                Answer::Done
            }
            Request::Block { from, to } => {
                network.block(from, to)?;
                Answer::Done
            }
            Request::Clock { node, skew, restart } => {
                let node = network.node(node)?;
                let report = node.configure_clock(skew.clone())?;
                if *restart {
                    for name in &report.restart_needed {
                        node.restart_service(name)?;
                    }
                }
                Answer::Clock(report)
            }
            Request::Qos { target, qos } => {
                match target {
                    QosTarget::Node { node, direction } => network.configure_qos(node, *direction, *qos)?,
                    QosTarget::Pair { from, to, both: false } => network.configure_pair_qos(from, to, *qos)?,
                    QosTarget::Pair { from, to, both: true } => network.configure_pair_qos_both(from, to, *qos)?,
                }
                Answer::Done
            }
            Request::ClearQos => {
                network.clear_qos()?;
                Answer::Done
            }
            Request::Heal => {
                network.heal()?;
                Answer::Done
            }
        })
    }
}

/// `NODE` or `NODE/SERVICE`.
fn target_of<'n>(network: &'n Network, target: &str) -> Result<(&'n Node, Option<&'n Service>)> {
    let (node, service) = match target.split_once('/') {
        Some((n, s)) => (n, Some(s)),
        None => (target, None),
    };
    let node = network.node(node)?;
    Ok((node, service.map(|s| node.service(s)).transpose()?))
}

/// A connection to a live network's controller.
#[derive(Debug, Clone)]
pub struct Client {
    record: Record,
}

impl Client {
    /// Finds a live network by id or name; with `None`, the only live one.
    pub fn find(network: Option<&str>) -> Result<Client> {
        let live: Vec<Record> = registry::records().into_iter().filter(Record::is_live).collect();
        let record = match network {
            Some(key) => live.into_iter().find(|r| r.id == key || r.name == key).ok_or_else(|| {
                Error::NoNetwork(format!("no live network has the id or name '{key}'; `netdriver status` lists them"))
            })?,
            None => match <[Record; 1]>::try_from(live) {
                Ok([one]) => one,
                Err(live) if live.is_empty() => {
                    return Err(Error::NoNetwork("no network is up; start one with `netdriver up -f FILE`".into()))
                }
                Err(live) => {
                    let ids: Vec<String> = live.iter().map(|r| format!("{} ({})", r.id, r.name)).collect();
                    return Err(Error::NoNetwork(format!(
                        "{} networks are up: {}; choose one with --network or NETDRIVER_NETWORK",
                        live.len(),
                        ids.join(", ")
                    )));
                }
            },
        };
        Ok(Client { record })
    }

    /// The network's status.
    pub fn status(&self) -> Result<Status> {
        match self.call(&Request::Status)? {
            Answer::Status(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// Applies `op` to `NODE` or `NODE/SERVICE`.
    pub fn op(&self, op: Op, target: &str) -> Result<()> {
        self.done(&Request::Op { op, target: target.to_string() })
    }

    /// Splits the network into groups that cannot reach each other.
    pub fn partition(&self, groups: Vec<Vec<String>>) -> Result<()> {
        self.done(&Request::Partition { groups })
    }

    /// Drops everything `from` sends to `to`.
    pub fn block(&self, from: &str, to: &str) -> Result<()> {
        self.done(&Request::Block { from: from.to_string(), to: to.to_string() })
    }

    /// Shifts `node`'s clocks; with `restart`, restarts its running services so they get them.
    pub fn clock(&self, node: &str, skew: ClockSkew, restart: bool) -> Result<ClockReport> {
        match self.call(&Request::Clock { node: node.to_string(), skew, restart })? {
            Answer::Clock(report) => Ok(report),
            other => Err(unexpected(other)),
        }
    }

    /// Shapes a node's or a pair's traffic.
    pub fn qos(&self, target: QosTarget, qos: Qos) -> Result<()> {
        self.done(&Request::Qos { target, qos })
    }

    /// Removes every shaping.
    pub fn clear_qos(&self) -> Result<()> {
        self.done(&Request::ClearQos)
    }

    /// Removes every partition and block.
    pub fn heal(&self) -> Result<()> {
        self.done(&Request::Heal)
    }

    fn done(&self, request: &Request) -> Result<()> {
        match self.call(request)? {
            Answer::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// The log files of `NODE` or `NODE/SERVICE`.
    pub fn logs(&self, target: &str) -> Result<Vec<Logs>> {
        match self.call(&Request::Logs { target: target.to_string() })? {
            Answer::Logs { logs } => Ok(logs),
            other => Err(unexpected(other)),
        }
    }

    /// Runs `argv` inside `node` with this process's standard streams; returns its status.
    pub fn exec(&self, node: &str, argv: &[String]) -> Result<ExitStatus> {
        let (program, args) = argv.split_first().ok_or_else(|| Error::invalid("command", "empty command line"))?;
        let stream = self.send(&Request::Enter { node: node.to_string() })?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut cmsg = nix::cmsg_space!([RawFd; 4]);
        let (len, fds) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
                .context(|| "receiving namespace descriptors")?;
            let mut fds = Vec::new();
            for c in msg.cmsgs().context(|| "reading control messages")? {
                if let ControlMessageOwned::ScmRights(received) = c {
                    // SAFETY: the kernel just gave us these descriptors.
                    fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                }
            }
            (msg.bytes, fds)
        };
        let env =
            match serde_json::from_slice(&buf[..len]).map_err(|e| Error::invalid("control answer", e.to_string()))? {
                Answer::Enter { env } if fds.len() >= 3 => env,
                Answer::Failed { error } => return Err(Error::State(error)),
                other => return Err(unexpected(other)),
            };
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        let enter = Enter { net: raw[0], uts: raw[1], mnt: raw[2], time: raw.get(3).copied() };
        let mut cmd = Command::new(program);
        cmd.args(args).envs(env).env(process::RUN_MARKER, &self.record.id).env("NETDRIVER_NODE", node);
        process::prepare(&mut cmd, enter, Tie::Command);
        let status = cmd.status().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound if process::find_program(program).is_none() => {
                Error::invalid("command", format!("'{program}' not found on PATH"))
            }
            _ => Error::io(format!("running {program} in {node}"), e),
        });
        drop(fds);
        status
    }

    fn send(&self, request: &Request) -> Result<UnixStream> {
        let path = self.record.socket();
        let mut stream = UnixStream::connect(&path).context(|| format!("connecting to {}", path.display()))?;
        let mut line = serde_json::to_vec(request).expect("requests serialize");
        line.push(b'\n');
        stream.write_all(&line).context(|| "sending a request")?;
        Ok(stream)
    }

    fn call(&self, request: &Request) -> Result<Answer> {
        let mut stream = self.send(request)?;
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).context(|| "reading the answer")?;
        match serde_json::from_slice(&bytes).map_err(|e| Error::invalid("control answer", e.to_string()))? {
            Answer::Failed { error } => Err(Error::State(error)),
            answer => Ok(answer),
        }
    }
}

fn unexpected(answer: Answer) -> Error {
    Error::State(format!("unexpected answer from the controller: {answer:?}"))
}
