//! The client's side of the control socket: drives a live network from another process.

use std::ffi::CString;
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, ExitStatus};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use super::protocol::{Answer, Logs, Request, Status};
use crate::clock::{ClockReport, ClockSkew};
use crate::error::{Context, Error, Result};
use crate::nemesis::History;
use crate::ns::Enter;
use crate::process::{self, Tie};
use crate::registry::{self, Record};
use crate::service::Op;
use crate::shaping::Qos;
use crate::spec::{NemesisSpec, QosTarget};
use crate::wallclock::Hook;

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
            other => Err(unexpected(&other)),
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
            other => Err(unexpected(&other)),
        }
    }

    /// Shapes the traffic `target` names.
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
            other => Err(unexpected(&other)),
        }
    }

    /// The plan of a fault schedule on the network (`None`: the one of its manifest), as
    /// text; nothing is applied.
    pub fn nemesis_plan(&self, spec: Option<NemesisSpec>) -> Result<String> {
        match self.call(&Request::Nemesis { spec, plan: true })? {
            Answer::Nemesis { plan, .. } => Ok(plan),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs a fault schedule on the network (`None`: the one of its manifest) to its end and
    /// returns what it did. Closing the connection (this process exiting, say on Ctrl-C)
    /// stops it, every fault undone.
    pub fn nemesis(&self, spec: Option<NemesisSpec>) -> Result<History> {
        match self.call(&Request::Nemesis { spec, plan: false })? {
            Answer::Nemesis { history: Some(history), .. } => Ok(history),
            other => Err(unexpected(&other)),
        }
    }

    /// The log files of `NODE` or `NODE/SERVICE`.
    pub fn logs(&self, target: &str) -> Result<Vec<Logs>> {
        match self.call(&Request::Logs { target: target.to_string() })? {
            Answer::Logs { logs } => Ok(logs),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs `argv` inside `node` with this process's standard streams; returns its status.
    pub fn exec(&self, node: &str, argv: &[String]) -> Result<ExitStatus> {
        let (program, args) = argv.split_first().ok_or_else(|| Error::invalid("command", "empty command line"))?;
        let stream = self.send(&Request::Enter { node: node.to_string() })?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut cmsg = nix::cmsg_space!([RawFd; 5]);
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
        let answer =
            serde_json::from_slice(&buf[..len]).map_err(|e| Error::invalid("control answer", e.to_string()))?;
        let (env, time, page) = match answer {
            Answer::Enter { env, time, page } if fds.len() == 3 + usize::from(time) + usize::from(page.is_some()) => {
                (env, time, page)
            }
            Answer::Failed { error } => return Err(Error::State(error)),
            other => return Err(unexpected(&other)),
        };
        let mut raw = fds.iter().map(AsRawFd::as_raw_fd);
        let mut next = || raw.next().expect("counted above");
        let enter = Enter { net: next(), uts: next(), mnt: next(), time: time.then(&mut next) };
        let hook = page.map(|page| Hook { socket: next(), page: CString::new(page).unwrap_or_default() });
        let mut cmd = Command::new(program);
        cmd.args(args).envs(env).env(process::RUN_MARKER, &self.record.id).env("NETDRIVER_NODE", node);
        process::prepare(&mut cmd, enter, Tie::Command, hook);
        let status = cmd.status().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                match crate::files::program_for_nodes(&format!("exec on {node}"), program) {
                    Err(missing) => missing,
                    Ok(_) => Error::io(format!("running {program} in {node}"), e),
                }
            }
            _ => Error::io(format!("running {program} in {node}"), e),
        });
        drop(fds);
        status
    }

    fn send(&self, request: &Request) -> Result<UnixStream> {
        let path = self.record.socket();
        let (name, id) = (&self.record.name, &self.record.id);
        let mut stream = UnixStream::connect(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => Error::Privilege {
                missing: format!(
                    "access to the control socket of network {name} ({id}), which serves root and uid {} (who started it)",
                    self.record.uid
                ),
            },
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => Error::NoNetwork(format!(
                "the controller of network {name} ({id}, pid {}) does not answer on {}: it is starting, exiting or \
                 gone; `netdriver gc` reclaims a dead one",
                self.record.pid,
                path.display()
            )),
            _ => Error::io(format!("connecting to {}", path.display()), e),
        })?;
        let mut line = serde_json::to_vec(request).expect("requests serialize");
        line.push(b'\n');
        stream.write_all(&line).context(|| "sending a request")?;
        Ok(stream)
    }

    fn call(&self, request: &Request) -> Result<Answer> {
        let mut stream = self.send(request)?;
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).context(|| "reading the answer")?;
        match self.parse(&bytes)? {
            Answer::Failed { error } => Err(Error::State(error)),
            answer => Ok(answer),
        }
    }

    /// The controller's answer; an empty one means it went away while handling the request.
    fn parse(&self, bytes: &[u8]) -> Result<Answer> {
        if bytes.is_empty() {
            return Err(Error::NoNetwork(format!(
                "the controller of network {} ({}, pid {}) closed the connection without answering: it exited or \
                 was killed while handling the request; see its output",
                self.record.name, self.record.id, self.record.pid
            )));
        }
        serde_json::from_slice(bytes).map_err(|e| Error::invalid("control answer", e.to_string()))
    }
}

fn unexpected(answer: &Answer) -> Error {
    Error::State(format!("unexpected answer from the controller: {answer:?}"))
}
