//! The crate's threads: an async runtime, one worker thread that drives netlink requests and
//! HTTP probes while callers block on it (from sync or async code alike); and the spawner, the
//! long-lived thread every long-lived child is forked from, with what such a child resets.

use std::future::Future;
use std::sync::{mpsc, Mutex, OnceLock};

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

type Job = Box<dyn FnOnce() + Send>;

/// Runs `f` on one long-lived thread of the process.
///
/// Services are spawned there because PR_SET_PDEATHSIG fires when the *thread* that forked
/// a child exits, not the process: a short-lived caller thread would kill its services.
pub(crate) fn on_spawner<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("netdriver-spawner".into())
            .spawn(move || rx.into_iter().for_each(|job| job()))
            .expect("starting the spawner thread");
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    sender.lock().unwrap_or_else(std::sync::PoisonError::into_inner).send(job).expect("spawner thread is gone");
    rx.recv().expect("spawner thread dropped a job")
}

/// Makes a forked child start with no signal blocked or ignored, whatever its parent did with
/// its own (a controller blocks the signals it waits for). For a child before exec: plain
/// system calls only.
///
/// # Safety
/// Call only between fork and exec.
pub(crate) unsafe fn reset_signals() -> std::io::Result<()> {
    // SAFETY: sigemptyset writes only the set on this stack; sigprocmask and signal are
    // async-signal-safe system calls.
    unsafe {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        if libc::sigprocmask(libc::SIG_SETMASK, set.as_ptr(), std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Handlers go at exec; what is ignored stays ignored unless reset here. Numbers the
        // kernel refuses (SIGKILL, SIGSTOP, the C library's own) are skipped.
        for sig in 1..=64 {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    Ok(())
}
