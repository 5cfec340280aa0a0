//! The supervisor: a process of its own per network (ptrace stops must not reach the
//! controller's own waits), started from the controller's spawner thread so that it dies with
//! the controller. It receives exec filters' listeners, each with a clock page path, over a
//! socket whose other end the controller holds; it answers their notifications by injecting
//! the stub ([`super::inject`]); it exits when the controller's end closes.
//!
//! It is the `netdriver` program run with `NETDRIVER_SUPERVISE` set (the command line does that
//! first thing), or what `NETDRIVER_SUPERVISOR` names: a program, or a JSON list of a program
//! and its arguments (the Python package sets it to its interpreter and a module). Processes
//! it could not shift are written, one line each, to the page's `.log` file beside it.

use std::ffi::{CStr, CString, OsStr};
use std::io::Write as _;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

use super::filter::Hook;
use super::inject;
use crate::error::{Error, Result};
use crate::files;
use crate::runtime;

/// The environment variable that makes the netdriver program a supervisor.
pub const SUPERVISE: &str = "NETDRIVER_SUPERVISE";
/// The descriptor the supervisor finds its socket at.
const SOCKET_FD: RawFd = 3;

/// The controller's side of a network's supervisor.
#[derive(Debug)]
pub(crate) struct Supervisor {
    child: Mutex<Child>,
    pid: u32,
    socket: OwnedFd,
}

impl Supervisor {
    /// Starts the supervisor, marked with `marks` (environment), its output going to `log`.
    pub(crate) fn start(marks: &[(&str, &str)], log: &Path) -> Result<Supervisor> {
        let argv = program()?;
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
            .map_err(|e| Error::io("making the clock supervisor's socket", e))?;
        let output = crate::files::create_file(log, 0o644, true)?;
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env(SUPERVISE, "1")
            .envs(marks.iter().copied())
            .stdin(Stdio::null())
            .stdout(output.try_clone().map_err(|e| Error::io("duplicating a descriptor", e))?)
            .stderr(output);
        let fd = theirs.as_raw_fd();
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs between fork and exec and makes plain system calls only.
        unsafe {
            cmd.pre_exec(move || {
                runtime::reset_signals()?;
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                let moved = if fd == SOCKET_FD { libc::fcntl(fd, libc::F_SETFD, 0) } else { libc::dup2(fd, SOCKET_FD) };
                if moved < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = runtime::on_spawner(move || cmd.spawn())
            .map_err(|e| Error::io(format!("starting the clock supervisor ({})", argv[0].to_string_lossy()), e))?;
        drop(theirs);
        Ok(Supervisor { pid: child.id(), child: Mutex::new(child), socket: ours })
    }

    /// The supervisor's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// What a process must do before it execs into a node whose clock page is `page`.
    pub(crate) fn hook(&self, page: &Path) -> Hook {
        Hook { socket: self.socket.as_raw_fd(), page: CString::new(page.as_os_str().as_bytes()).unwrap_or_default() }
    }

    /// How the supervisor ended, if it did.
    pub(crate) fn ended(&self) -> Option<ExitStatus> {
        self.child.lock().unwrap_or_else(std::sync::PoisonError::into_inner).try_wait().ok().flatten()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Closing our end makes it exit; it holds no tracee between notifications.
        let mut child = self.child.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = nix::sys::socket::shutdown(self.socket.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        if child.wait().is_err() {
            let _ = child.kill();
        }
    }
}

/// The supervisor's command line: `NETDRIVER_SUPERVISOR`, else the netdriver program that is
/// running, beside the running one (or a directory above, as in cargo's target directory),
/// or on PATH.
pub(super) fn program() -> Result<Vec<std::ffi::OsString>> {
    if let Some(given) = std::env::var_os("NETDRIVER_SUPERVISOR") {
        let text = given.to_string_lossy();
        let mut argv: Vec<std::ffi::OsString> = if text.starts_with('[') {
            let argv: Vec<String> = serde_json::from_str(&text).map_err(|e| {
                Error::invalid("NETDRIVER_SUPERVISOR", format!("'{text}' is not a JSON list of strings: {e}"))
            })?;
            argv.into_iter().map(Into::into).collect()
        } else {
            vec![given.clone()]
        };
        let program = argv.first().ok_or_else(|| Error::invalid("NETDRIVER_SUPERVISOR", "the list is empty"))?;
        let found = files::find_program(&program.to_string_lossy()).ok_or_else(|| Error::MissingBinary {
            service: "the clock supervisor".into(),
            program: program.to_string_lossy().into_owned(),
            fix: "NETDRIVER_SUPERVISOR must name an executable (a path, or a name on PATH), alone or first in a JSON \
                  list; unset it to use the netdriver program"
                .into(),
        })?;
        argv[0] = found.into_os_string();
        return Ok(argv);
    }
    let exe = std::env::current_exe().ok();
    let beside =
        exe.as_deref().and_then(Path::parent).into_iter().flat_map(|d| [d.join("netdriver"), d.join("../netdriver")]);
    exe.iter()
        .filter(|e| e.file_name() == Some(OsStr::new("netdriver")))
        .cloned()
        .chain(beside)
        .find(|p| files::find_program(&p.to_string_lossy()).is_some())
        .or_else(|| files::find_program("netdriver"))
        .map(|p| vec![p.into_os_string()])
        .ok_or_else(|| Error::MissingBinary {
            service: "the clock supervisor".into(),
            program: "netdriver".into(),
            fix: "build it beside this program (cargo build --release) or put it on PATH, or set NETDRIVER_SUPERVISOR to it"
                .into(),
        })
}

/// One listener and the clock page its processes read.
struct Listener {
    fd: OwnedFd,
    page: CString,
    log: PathBuf,
}

/// Runs the supervisor on descriptor 3 until the controller's end closes; then exits.
pub fn supervise() -> ! {
    // SAFETY: descriptor 3 is the socket the controller passed down; nothing else owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(SOCKET_FD) };
    let mut listeners: Vec<Listener> = Vec::new();
    loop {
        let mut fds: Vec<PollFd<'_>> = std::iter::once(PollFd::new(socket.as_fd(), PollFlags::POLLIN))
            .chain(listeners.iter().map(|l| PollFd::new(l.fd.as_fd(), PollFlags::POLLIN)))
            .collect();
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue;
        }
        let events: Vec<PollFlags> = fds.iter().map(|f| f.revents().unwrap_or(PollFlags::empty())).collect();
        drop(fds);
        if events[0].intersects(PollFlags::POLLIN) {
            match receive(&socket) {
                Some(Some(listener)) => listeners.push(listener),
                Some(None) => {}
                None => std::process::exit(0),
            }
        } else if events[0].intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            std::process::exit(0);
        }
        let mut closed = Vec::new();
        for (i, revents) in events[1..].iter().enumerate() {
            let listener = &listeners[i];
            if revents.intersects(PollFlags::POLLIN) {
                if let Some(miss) = inject::on_exec(listener.fd.as_fd(), &listener.page) {
                    report(&listener.log, &miss);
                }
            } else if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
                closed.push(i);
            }
        }
        for i in closed.into_iter().rev() {
            listeners.swap_remove(i);
        }
    }
}

/// A listener and its page from the socket: `Some(None)` for a message without one, `None`
/// once the controller's end is closed.
fn receive(socket: &OwnedFd) -> Option<Option<Listener>> {
    let mut buf = [0u8; 4096];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ok()?;
    let mut fd = None;
    for c in msg.cmsgs().ok()? {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(received) = c {
            // SAFETY: the kernel just gave us these descriptors.
            fd = received.into_iter().next().map(|raw| unsafe { OwnedFd::from_raw_fd(raw) });
        }
    }
    let len = msg.bytes;
    if len == 0 && fd.is_none() {
        return None;
    }
    let page = CStr::from_bytes_until_nul(&buf[..len])
        .map_or_else(|_| CString::new(&buf[..len]).unwrap_or_default(), CStr::to_owned);
    let log = super::page::log_of(Path::new(OsStr::from_bytes(page.as_bytes())));
    Some(fd.map(|fd| Listener { fd, page, log }))
}

/// Notes a program that runs on the host's clock, and why.
fn report(log: &Path, miss: &inject::Miss) {
    if let Ok(mut file) = crate::files::create_file(log, 0o644, true) {
        let _ = writeln!(file, "pid {} ({}): {}", miss.pid, miss.program, miss.why);
    }
}
