//! The exception classes: one per [`netdriver::Error`] variant, under `NetdriverError`, each
//! with the error's message (cause and fix).

use netdriver::Error as E;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(netdriver, NetdriverError, PyException, "Base class of every netdriver error.");

/// Each row makes one exception class, maps its error variants to it, and adds it to the
/// module: one place per class.
macro_rules! exceptions {
    ($($class:ident for $pattern:pat, $doc:literal;)*) => {
        $(create_exception!(netdriver, $class, NetdriverError, $doc);)*

        /// The Python exception for a netdriver error; the message is the error's text.
        pub(crate) fn to_py(e: netdriver::Error) -> PyErr {
            let msg = e.to_string();
            match e {
                $($pattern => $class::new_err(msg),)*
                _ => NetdriverError::new_err(msg),
            }
        }

        /// Adds every exception class to the module.
        pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
            let py = m.py();
            m.add("NetdriverError", py.get_type::<NetdriverError>())?;
            $(m.add(stringify!($class), py.get_type::<$class>())?;)*
            Ok(())
        }
    };
}

exceptions! {
    PrivilegeError for E::Privilege { .. }, "The process lacks a capability (run as root).";
    KernelFeatureError for E::KernelFeature { .. }, "A kernel feature netdriver needs is missing.";
    CapacityError for E::Capacity { .. }, "The host cannot hold a network of this size.";
    MissingBinaryError for E::MissingBinary { .. }, "A service's program cannot be found.";
    ManifestError for E::Manifest { .. }, "The manifest cannot be read or is invalid.";
    InvalidError for E::Invalid { .. }, "A value is invalid (the message names it and what is allowed).";
    UnknownNodeError for E::UnknownNode { .. }, "No node has this name or index.";
    UnknownServiceError for E::UnknownService { .. }, "The node has no service of this name.";
    DuplicateNameError for E::DuplicateName { .. }, "Two nodes or two services share a name.";
    SubnetError for E::Subnet(_), "No free subnet, or the one asked for is taken.";
    ServiceFailedError for E::ServiceFailed { .. }, "A service did not become ready or exited while starting.";
    StateError for E::State(_), "An operation that makes no sense in the current state.";
    NoNetworkError for E::NoNetwork(_), "No network is reachable.";
    CancelledError for E::Cancelled(_), "A wait was cancelled (a signal, or another thread raised the network's Cancel).";
    NetlinkError for E::Netlink { .. }, "A netlink request failed.";
    NetdriverIOError for E::Io { .. }, "A system call or file operation failed.";
}

/// `?` for netdriver results in PyO3 methods.
pub(crate) trait IntoPy<T> {
    /// The result with a netdriver error turned into its Python exception.
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for netdriver::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
