//! The one error type of netdriver: every variant names the cause and, where there is one, the fix.

use std::path::PathBuf;

/// Result with netdriver's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building or driving a network.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The process lacks a capability netdriver needs.
    #[error("netdriver needs {missing} (run it as root, e.g. with sudo, or grant the capabilities)")]
    Privilege {
        /// The capabilities that are missing, e.g. "CAP_NET_ADMIN, CAP_SYS_ADMIN".
        missing: String,
    },
    /// A kernel feature netdriver relies on is not available.
    #[error("the kernel lacks {feature}: {fix}")]
    KernelFeature {
        /// What is missing, e.g. "veth".
        feature: String,
        /// How to get it.
        fix: String,
    },
    /// The host cannot hold a network of this size (checked before anything is made).
    #[error("the host cannot hold {nodes} nodes: they need {need}, and {have}; {fix}")]
    Capacity {
        /// The network's node count.
        nodes: usize,
        /// What the network needs, with the figure, e.g. "40256 open files".
        need: String,
        /// What the host has, with the figure.
        have: String,
        /// How to make room, or the size that fits.
        fix: String,
    },
    /// A service's program cannot be found or run.
    #[error("service {service}: program '{program}' not found; {fix}")]
    MissingBinary {
        /// The service that names the program.
        service: String,
        /// The program as written.
        program: String,
        /// How to get it.
        fix: String,
    },
    /// The manifest cannot be read or is invalid.
    #[error("{path}:{line}:{column}: {message}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// 1-based line of the offending field.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong with it, naming the field.
        message: String,
    },
    /// A value in a spec is invalid (outside a manifest, or not tied to a line).
    #[error("invalid {what}: {message}")]
    Invalid {
        /// The field or parameter.
        what: String,
        /// What is wrong, and what is allowed.
        message: String,
    },
    /// A node name or index that the network does not have.
    #[error("unknown node '{node}' (the network has {known})")]
    UnknownNode {
        /// The name or index asked for.
        node: String,
        /// The nodes there are, abridged.
        known: String,
    },
    /// A service name that the node does not run.
    #[error("node {node} has no service '{service}' (it has: {known})")]
    UnknownService {
        /// The node asked.
        node: String,
        /// The service asked for.
        service: String,
        /// The services the node has, comma-separated.
        known: String,
    },
    /// Two nodes or two services share a name.
    #[error("duplicate {kind} name '{name}': names must be unique")]
    DuplicateName {
        /// "node" or "service".
        kind: &'static str,
        /// The repeated name.
        name: String,
    },
    /// No free subnet could be found, or the requested one is taken.
    #[error("subnet: {0}")]
    Subnet(String),
    /// A service did not become ready, or exited while starting.
    #[error("{node}/{service} {reason}; last lines of its log ({log}):\n{tail}")]
    ServiceFailed {
        /// Node name.
        node: String,
        /// Service name.
        service: String,
        /// What happened, e.g. "exited with status 1" or "was not ready after 10s".
        reason: String,
        /// The stderr log file.
        log: PathBuf,
        /// The last lines of the logs.
        tail: String,
    },
    /// An operation that makes no sense in the current state.
    #[error("{0}")]
    State(String),
    /// No network is reachable from the command line.
    #[error("{0}")]
    NoNetwork(String),
    /// A wait was cancelled (by a signal, or a [`Cancel`](crate::cancel::Cancel)).
    #[error("cancelled while {0}")]
    Cancelled(String),
    /// A netlink request failed.
    #[error("netlink: {op}: {source}")]
    Netlink {
        /// What was being done.
        op: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// A system call or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// An [`Error::MissingBinary`] for a program looked up on PATH.
    pub(crate) fn missing_binary(service: impl Into<String>, program: impl Into<String>) -> Self {
        let fix = "install it or give its full path".to_string();
        Error::MissingBinary { service: service.into(), program: program.into(), fix }
    }

    /// An [`Error::Io`] with context.
    pub(crate) fn io(context: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        Error::Io { context: context.into(), source: source.into() }
    }

    /// An [`Error::Invalid`].
    pub(crate) fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid { what: what.into(), message: message.into() }
    }
}

/// Adds context to OS errors.
pub(crate) trait Context<T> {
    /// Wraps the error in [`Error::Io`] with the context `f()`.
    fn context<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<std::io::Error>> Context<T> for std::result::Result<T, E> {
    fn context<C: Into<String>>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::io(f(), e))
    }
}
