//! The controller's side of the control socket: serves a [`Network`] to other processes.

use std::io::{BufRead, BufReader, IoSlice, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use super::protocol::{Answer, Logs, Request, Status};
use crate::error::{Context, Error, Result};
use crate::network::Network;
use crate::node::Node;
use crate::service::Service;

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
                if let Err(e) = self.handle(&stream) {
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

    fn handle(&self, stream: &UnixStream) -> Result<()> {
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).context(|| "reading a request")?;
        let request: Request =
            serde_json::from_str(&line).map_err(|e| Error::invalid("control request", e.to_string()))?;
        if let Request::Enter { node } = &request {
            return self.enter(stream, node);
        }
        let answer = self.answer(&request).unwrap_or_else(|e| Answer::Failed { error: e.to_string() });
        let bytes = serde_json::to_vec(&answer).expect("answers serialize");
        let mut out = stream;
        out.write_all(&bytes).context(|| "writing an answer")
    }

    /// Answers an Enter request with the node's namespace descriptors.
    fn enter(&self, stream: &UnixStream, node: &str) -> Result<()> {
        let entry = self.network.node(node).and_then(Node::entry);
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
                let (node, service) = target_of(network, target)?;
                node.apply(*op, service.map(Service::name))?;
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
