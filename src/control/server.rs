//! The controller's side of the control socket: serves a [`Network`] to other processes.
//!
//! The socket (mode 0600) serves root and the user who started the network, checked on every
//! connection (SO_PEERCRED); anyone else gets a refusal that says so. Connections are served
//! at once, each on its own thread: a request must arrive within 10 s, so a silent client
//! blocks no one, and shutting down waits for no idle client.

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{getsockopt, sendmsg, sockopt::PeerCredentials, ControlMessage, MsgFlags};

use super::protocol::{Answer, Logs, Request, Status};
use crate::cancel::Cancel;
use crate::error::{Context, Error, Result};
use crate::nemesis;
use crate::network::Network;
use crate::node::Node;
use crate::service::Service;
use crate::spec::NemesisSpec;

/// How long a client has to send its request (and to read its answer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often waits look at whether the server is shutting down.
const TICK: Duration = Duration::from_millis(100);
/// The longest request: a line of JSON.
const MAX_REQUEST: u64 = 1 << 20;

/// Serves a network on its control socket until [`Server::shutdown`].
#[derive(Debug)]
pub struct Server<'a> {
    network: &'a Network,
    listener: UnixListener,
    stopping: AtomicBool,
}

impl<'a> Server<'a> {
    /// Binds the network's control socket, readable and writable by its owner only.
    pub fn bind(network: &'a Network) -> Result<Server<'a>> {
        let path = network.record().socket();
        // Only a stale socket of ours may be in the way (the registry's directory is root's).
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_socket() => {
                std::fs::remove_file(&path).context(|| format!("removing {}", path.display()))?;
            }
            Ok(_) => return Err(Error::State(format!("{} exists and is not a socket; remove it", path.display()))),
            Err(_) => {}
        }
        let listener = UnixListener::bind(&path).context(|| format!("binding {}", path.display()))?;
        // Connections before the chmod are refused by the credentials check all the same.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .context(|| format!("chmod {}", path.display()))?;
        listener.set_nonblocking(true).context(|| "making the control socket non-blocking")?;
        Ok(Server { network, listener, stopping: AtomicBool::new(false) })
    }

    /// Answers requests, each connection on a thread of its own, until shut down; returns once
    /// every request in progress is answered.
    pub fn run(&self) {
        std::thread::scope(|scope| {
            while !self.stopping.load(Ordering::SeqCst) {
                let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
                if !matches!(poll(&mut fds, PollTimeout::from(TICK.as_millis() as u16)), Ok(n) if n > 0) {
                    continue;
                }
                match self.listener.accept() {
                    Ok((stream, _)) => {
                        scope.spawn(move || {
                            if let Err(e) = self.serve(&stream) {
                                tracing::warn!("control socket: {e}");
                            }
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => tracing::warn!("control socket: accepting a connection: {e}"),
                }
            }
        });
    }

    /// Makes [`Server::run`] return: new connections are no longer accepted, clients still
    /// sending their request are dropped.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Serves one connection: its request, the peer's credentials, the answer (a refusal for
    /// anyone but root and the network's owner). The request is read first either way, so that
    /// a refused client reads its refusal rather than a reset connection.
    fn serve(&self, stream: &UnixStream) -> Result<()> {
        stream.set_nonblocking(false).context(|| "configuring a control connection")?;
        let Some(line) = self.read_request(stream)? else { return Ok(()) };
        let owner = self.network.record().uid;
        let peer = getsockopt(stream, PeerCredentials).context(|| "reading the peer's credentials")?;
        if peer.uid() != 0 && peer.uid() != owner {
            let error = format!(
                "permission denied: uid {} may not drive network {} ({}); its control socket serves root and uid {owner}, \
                 who started it: run as one of them (e.g. with sudo)",
                peer.uid(),
                self.network.name(),
                self.network.id()
            );
            return reply(stream, &Answer::Failed { error: error.clone() })
                .and(Err(Error::State(format!("refused: {error}"))));
        }
        let request: Request =
            serde_json::from_str(&line).map_err(|e| Error::invalid("control request", e.to_string()))?;
        if let Request::Enter { node } = &request {
            return self.enter(stream, node);
        }
        if let Request::Nemesis { spec, plan: false } = &request {
            let answer =
                self.nemesis(stream, spec.as_ref()).unwrap_or_else(|e| Answer::Failed { error: e.to_string() });
            // A client that hung up (Ctrl-C ended the schedule) is not there to read it.
            let _ = reply(stream, &answer);
            return Ok(());
        }
        let answer = self.answer(&request).unwrap_or_else(|e| Answer::Failed { error: e.to_string() });
        reply(stream, &answer)
    }

    /// The request line, or `None` when the client went away, fell silent past
    /// [`REQUEST_TIMEOUT`], or the server is shutting down.
    fn read_request(&self, stream: &UnixStream) -> Result<Option<String>> {
        stream.set_read_timeout(Some(TICK)).context(|| "configuring a control connection")?;
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let mut line = Vec::new();
        let mut buf = [0u8; 4096];
        let mut reader = stream.take(MAX_REQUEST);
        while !line.ends_with(b"\n") {
            if self.stopping.load(Ordering::SeqCst) || Instant::now() >= deadline {
                return Ok(None);
            }
            match reader.read(&mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => line.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                Err(e) => return Err(Error::io("reading a request", e)),
            }
        }
        String::from_utf8(line).map(Some).map_err(|_| Error::invalid("control request", "not UTF-8"))
    }

    /// Answers an Enter request with the node's namespace descriptors and clock hook.
    fn enter(&self, stream: &UnixStream, node: &str) -> Result<()> {
        let entry = self.network.node(node).and_then(Node::entry);
        let (answer, fds) = match &entry {
            Ok(e) => {
                let fds: Vec<RawFd> = [e.enter.net, e.enter.uts, e.enter.mnt]
                    .into_iter()
                    .chain(e.enter.time)
                    .chain(e.hook.as_ref().map(|hook| hook.socket))
                    .collect();
                let page = e.hook.as_ref().map(|hook| hook.page.to_string_lossy().into_owned());
                (Answer::Enter { env: e.env.clone(), time: e.enter.time.is_some(), page }, fds)
            }
            Err(e) => (Answer::Failed { error: e.to_string() }, Vec::new()),
        };
        let bytes = serde_json::to_vec(&answer).expect("answers serialize");
        stream.set_write_timeout(Some(REQUEST_TIMEOUT)).context(|| "configuring a control connection")?;
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

    /// Runs a fault schedule until its end, the client hanging up, or the server shutting down.
    fn nemesis(&self, stream: &UnixStream, spec: Option<&NemesisSpec>) -> Result<Answer> {
        let spec = self.nemesis_spec(spec)?;
        let plan = nemesis::check(self.network, spec)?.to_string();
        let cancel = Cancel::new();
        let history = std::thread::scope(|scope| {
            let running = scope.spawn(|| nemesis::run(self.network, spec, &cancel));
            while !running.is_finished() {
                // The client sends nothing after its request: the socket turning readable means
                // it closed its end (it exited, say on Ctrl-C).
                let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
                let hung_up = poll(&mut fds, PollTimeout::from(TICK.as_millis() as u16)).is_ok_and(|n| n > 0);
                if hung_up || self.stopping.load(Ordering::SeqCst) {
                    cancel.cancel();
                }
            }
            running.join().unwrap_or_else(|_| Err(Error::State("the nemesis's thread panicked".into())))
        })?;
        Ok(Answer::Nemesis { plan, history: Some(history) })
    }

    /// `spec`, or the network's own schedule (its manifest's `[nemesis]`).
    fn nemesis_spec<'s>(&'s self, spec: Option<&'s NemesisSpec>) -> Result<&'s NemesisSpec> {
        spec.or_else(|| self.network.nemesis_spec()).ok_or_else(|| {
            Error::invalid(
                "nemesis",
                "this network's manifest has no [nemesis] table: give a schedule, e.g. \
                 `--seed 7 --faults kill,pause,partition`",
            )
        })
    }

    fn answer(&self, request: &Request) -> Result<Answer> {
        crate::events::acting_as(crate::events::Actor::Cli, || self.answer_as_cli(request))
    }

    fn answer_as_cli(&self, request: &Request) -> Result<Answer> {
        let network = self.network;
        Ok(match request {
            Request::Status => Answer::Status(Status::of(network)),
            Request::Op { op, target } => {
                let (node, service) = target_of(network, target)?;
                node.apply(*op, service.map(Service::name))?;
                Answer::Done
            }
            Request::Logs { target } => {
                let (node, service) = target_of(network, target)?;
                let services = match service {
                    Some(s) => vec![s],
                    None => node.services().iter().map(|s| &**s).collect(),
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
                network.partition(groups)?;
                Answer::Done
            }
            Request::Block { from, to } => {
                network.block(from, to)?;
                Answer::Done
            }
            Request::Clock { node, skew, restart } => {
                Answer::Clock(network.node(node)?.configure_clock(skew.clone(), *restart)?)
            }
            Request::Qos { target, qos } => {
                network.configure_qos(target, *qos)?;
                Answer::Done
            }
            Request::ClearQos => {
                network.clear_qos()?;
                Answer::Done
            }
            Request::Nemesis { spec, .. } => {
                let plan = nemesis::check(network, self.nemesis_spec(spec.as_ref())?)?;
                Answer::Nemesis { plan: plan.to_string(), history: None }
            }
            Request::Heal => {
                network.heal()?;
                Answer::Done
            }
        })
    }
}

/// Writes `answer` and closes the writing side; a client that does not read is dropped after
/// [`REQUEST_TIMEOUT`].
fn reply(stream: &UnixStream, answer: &Answer) -> Result<()> {
    stream.set_write_timeout(Some(REQUEST_TIMEOUT)).context(|| "configuring a control connection")?;
    let mut out = stream;
    out.write_all(&serde_json::to_vec(answer).expect("answers serialize")).context(|| "writing an answer")
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
