//! The crate's async runtime: one worker thread that drives netlink requests and HTTP probes
//! while callers block on it, from sync or async code alike.

use std::future::Future;

use tokio::runtime::Runtime;

use crate::error::{Context, Result};

/// A runtime with one worker that drives netlink and HTTP probes while callers block on it.
///
/// Blocking calls work from anywhere, async code included: inside a runtime they block on a
/// scoped thread instead, and the runtime shuts down without blocking when dropped.
pub(crate) struct Io(Option<Runtime>);

impl Io {
    /// Starts the runtime.
    pub(crate) fn new() -> Result<Io> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("netdriver-io")
            .enable_all()
            .build()
            .context(|| "starting the netlink runtime")?;
        Ok(Io(Some(rt)))
    }

    /// A handle for [`block_on`], to keep where the runtime is needed.
    pub(crate) fn handle(&self) -> tokio::runtime::Handle {
        self.0.as_ref().expect("runtime is live until drop").handle().clone()
    }

    /// Runs `f` to completion on the runtime.
    pub(crate) fn block_on<F: Future + Send>(&self, f: F) -> F::Output
    where
        F::Output: Send,
    {
        block_on(&self.handle(), f)
    }
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Io")
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs `f` to completion on `rt`, from sync or async code alike.
pub(crate) fn block_on<F: Future + Send>(rt: &tokio::runtime::Handle, f: F) -> F::Output
where
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(|| rt.block_on(f)).join().expect("netdriver I/O thread panicked"))
    } else {
        rt.block_on(f)
    }
}
