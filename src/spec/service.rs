//! What a node runs: a service's program, arguments, environment, readiness probe, stop
//! grace, reset command, restart rule and configuration file.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::config::Format;
use crate::error::{Error, Result};
use crate::template::{self, Template};

/// The longest service name: it names a directory and travels in environment marks.
const MAX_NAME: usize = 64;

/// How to tell that a service is ready to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connection to the node's address on this port succeeds (to either of its
    /// addresses in a dual-stack network).
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

impl ServiceSpec {
    /// Every template of the service: command, arguments, environment, working directory,
    /// probe, bind sources, reset command and configuration path.
    pub(crate) fn templates(&self) -> impl Iterator<Item = &Template> {
        let probe = match &self.ready {
            Some(Probe::Http(url)) => Some(url),
            _ => None,
        };
        std::iter::once(&self.command)
            .chain(&self.args)
            .chain(self.env.iter().map(|(_, t)| t))
            .chain(&self.workdir)
            .chain(probe)
            .chain(self.binds.iter().map(|(_, t)| t))
            .chain(&self.reset)
            .chain(self.config.iter().map(|(t, _)| t))
    }

    /// Checks the name, the bind targets and the readiness probe: what can be checked without
    /// the other services or the host.
    pub fn validate(&self) -> Result<()> {
        check_name(&self.name)?;
        for (target, _) in &self.binds {
            check_bind_target(&self.name, target)?;
        }
        match &self.ready {
            Some(Probe::Http(url)) => check_http_probe(&self.name, url),
            _ => Ok(()),
        }
    }
}

/// A service name names its directory in the node's: letters, digits, `-`, `_` and `.`, not
/// starting with a dot, and not `tmp` (the node's `/tmp` is there).
pub(crate) fn check_name(name: &str) -> Result<()> {
    let chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let problem = if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(chars) {
        Some(format!("use 1 to {MAX_NAME} letters, digits, '-', '_' or '.'"))
    } else if name.starts_with('.') {
        Some("it may not start with '.'".to_string())
    } else if name == "tmp" {
        Some("`tmp` is the node's /tmp in its directory; call it something else".to_string())
    } else {
        None
    };
    problem.map_or(Ok(()), |why| Err(Error::invalid("service name", format!("'{name}': {why}"))))
}

/// A bind target is an absolute path inside the node, not `/` itself, without `..`.
pub(crate) fn check_bind_target(service: &str, target: &Path) -> Result<()> {
    let problem = if !target.is_absolute() {
        Some("is relative; give the absolute path it takes inside the node")
    } else if target.components().any(|c| c == Component::ParentDir) {
        Some("has a `..`; give the path itself")
    } else if target.parent().is_none() {
        Some("is the node's root; bind over a directory or file below it")
    } else {
        None
    };
    problem.map_or(Ok(()), |why| {
        Err(Error::invalid(format!("service {service}: binds"), format!("the target {} {why}", target.display())))
    })
}

/// An HTTP probe's URL, rendered as for a sample node, is an http(s) URL with a host.
pub(crate) fn check_http_probe(service: &str, url: &Template) -> Result<()> {
    let rendered = template::render_sample(url);
    let parsed = reqwest::Url::parse(&rendered);
    let fine = parsed.as_ref().is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if fine {
        Ok(())
    } else {
        let why = parsed.err().map_or_else(|| "it is not an http:// URL with a host".to_string(), |e| e.to_string());
        Err(Error::invalid(
            format!("service {service}: ready.http"),
            format!("'{}' is not a URL to probe ({why}); use e.g. http://{{ip}}:8080/health", url.source()),
        ))
    }
}
