//! What a node runs: a service's program, arguments, environment, readiness probe, stop
//! grace, reset command, restart rule and configuration file.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::Format;
use crate::error::Result;
use crate::template::Template;

/// How to tell that a service is ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connection to the node's address on this port succeeds.
    Tcp(u16),
    /// An HTTP GET of this URL (a template) answers with a 2xx status.
    Http(Template),
}

/// One program every node runs, with how to start, probe and stop it.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Unique name within the node, e.g. `etcd`.
    pub name: String,
    /// The program: a name looked up on PATH, or a path.
    pub command: Template,
    /// Its arguments.
    pub args: Vec<Template>,
    /// Extra environment variables.
    pub env: Vec<(String, Template)>,
    /// Working directory; the service's data directory if unset.
    pub workdir: Option<Template>,
    /// Readiness probe; none means ready once spawned.
    pub ready: Option<Probe>,
    /// How long start waits for the probe.
    pub ready_timeout: Duration,
    /// Services of the same node that must be ready before this one starts.
    pub after: Vec<String>,
    /// How long stop waits after SIGTERM before it kills the process tree.
    pub stop_timeout: Duration,
    /// Directories bound into the node's mount namespace: (path inside the node, source).
    pub binds: Vec<(PathBuf, Template)>,
    /// The command (program and arguments) that resets the service's state, run inside the
    /// node while the service is stopped; empty to wipe the data directory instead.
    pub reset: Vec<Template>,
    /// Services of the same node whose start means this one must restart: when one of them
    /// starts, this one is restarted after it if it runs or exited on its own (a client that
    /// does not reconnect, like Tendermint to its ABCI application). A service stopped on
    /// purpose stays stopped.
    pub restart_with: Vec<String>,
    /// The service's configuration file, which [`Service::configure`] merges settings into:
    /// its path (a template) and how it is written.
    ///
    /// [`Service::configure`]: crate::service::Service::configure
    pub config: Option<(Template, Format)>,
}

impl ServiceSpec {
    /// A service running `command` (a template), with defaults for the rest.
    pub fn new(name: impl Into<String>, command: &str) -> Result<ServiceSpec> {
        Ok(ServiceSpec {
            name: name.into(),
            command: Template::parse(command)?,
            args: Vec::new(),
            env: Vec::new(),
            workdir: None,
            ready: None,
            ready_timeout: Duration::from_secs(30),
            after: Vec::new(),
            stop_timeout: Duration::from_secs(10),
            binds: Vec::new(),
            reset: Vec::new(),
            restart_with: Vec::new(),
            config: None,
        })
    }

    /// Appends arguments (templates).
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, args: I) -> Result<Self> {
        for a in args {
            self.args.push(Template::parse(a.as_ref())?);
        }
        Ok(self)
    }

    /// Sets an environment variable (value is a template).
    pub fn env(mut self, key: impl Into<String>, value: &str) -> Result<Self> {
        self.env.push((key.into(), Template::parse(value)?));
        Ok(self)
    }

    /// Sets the readiness probe and how long to wait for it.
    pub fn ready(mut self, probe: Probe, timeout: Duration) -> Self {
        self.ready = Some(probe);
        self.ready_timeout = timeout;
        self
    }

    /// Makes this service start after `other` is ready (and stop before it).
    pub fn after(mut self, other: impl Into<String>) -> Self {
        self.after.push(other.into());
        self
    }

    /// Sets the command that resets the service's state instead of wiping its data directory.
    pub fn reset_with<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, argv: I) -> Result<Self> {
        self.reset = argv.into_iter().map(|a| Template::parse(a.as_ref())).collect::<Result<_>>()?;
        Ok(self)
    }

    /// Names the service's configuration file (a template such as `{data}/config.toml`).
    pub fn config(mut self, path: &str, format: Format) -> Result<Self> {
        self.config = Some((Template::parse(path)?, format));
        Ok(self)
    }

    /// Makes this service restart whenever `other` starts while this one runs.
    pub fn restart_with(mut self, other: impl Into<String>) -> Self {
        self.restart_with.push(other.into());
        self
    }
}
