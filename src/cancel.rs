//! Cancelling what waits: a flag that bring-up, readiness probes and a profile's settling check,
//! so that a signal (or another thread) can end them at once and teardown can begin.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

/// A flag shared by clones: once [`Cancel::cancel`] is called, netdriver's long waits give up
/// with [`Error::Cancelled`].
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag not yet raised.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Raises the flag: waits in progress and later ones end with [`Error::Cancelled`].
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the flag is raised.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// [`Error::Cancelled`] naming `what` was going on, if the flag is raised.
    pub(crate) fn check(&self, what: impl FnOnce() -> String) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled(what()))
        } else {
            Ok(())
        }
    }
}
