//! Injection at exec: a process of a node that calls `execve` is seized (ptrace), the exec
//! goes on, and at the end of the exec, before the new program runs a single instruction,
//! the supervisor makes it map the node's clock page and a copy of the stub, and points the
//! vDSO's clock symbols at the stub. Then it lets go of it: the program runs untraced.
//!
//! The program's own code is left as it was (the one instruction borrowed to make system
//! calls is put back), and so are the vDSO's code and data: only the dynamic symbol values
//! change, in the process's private copy of the vDSO page, before anything (the dynamic
//! loader, a static C library, Go's runtime) has looked them up.

use std::ffi::CStr;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sys::ptrace::{self, Options};
use nix::sys::signal::Signal;
use nix::sys::uio::{process_vm_readv, process_vm_writev, RemoteIoVec};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::stub::{self, Entry};
use super::vdso::Vdso;

/// A program that runs on the host's clock: the process, the program it exec'd, and why.
#[derive(Debug)]
pub(crate) struct Miss {
    pub(crate) pid: i32,
    pub(crate) program: String,
    pub(crate) why: String,
}

/// What became of one exec.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The new program reads the node's clock.
    Shifted,
    /// The exec failed (a PATH search tries many): nothing to do.
    NoExec,
    /// The process went away.
    Gone,
    /// The new program runs on the host's clock, for this reason.
    Unreached(String),
}

/// The x86-64 `syscall` instruction, as the low bytes of a word.
const SYSCALL: u64 = 0x050f;
/// `user_regs_struct.cs` of a 64-bit process.
const USER64_CS: u64 = 0x33;

/// Answers one notification of `listener` (an `execve` of a process under `page`'s clock):
/// lets the exec go on, and injects the stub into the program it starts. Names the program
/// if it could not.
pub(crate) fn on_exec(listener: BorrowedFd<'_>, page: &CStr) -> Option<Miss> {
    // SAFETY: an all-zero seccomp_notif is what NOTIF_RECV wants to fill.
    let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: NOTIF_RECV fills `notif`, which lives for the call.
    if unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &raw mut notif) } < 0 {
        return None;
    }
    let pid = Pid::from_raw(notif.pid as i32);
    let program = program_of(pid, &notif.data);
    match exec(listener, &notif, page) {
        Outcome::Unreached(why) => Some(Miss { pid: pid.as_raw(), program, why }),
        Outcome::Shifted | Outcome::NoExec | Outcome::Gone => None,
    }
}

/// The path the notified exec names (for reports: it may have changed since).
fn program_of(pid: Pid, call: &libc::seccomp_data) -> String {
    let at = if call.nr == libc::SYS_execveat as i32 { call.args[1] } else { call.args[0] };
    let mut path = Vec::new();
    let mut chunk = [0u8; 256];
    while path.len() < 4096 {
        // Short reads stop at the end of a mapping; a chunk never crosses a page boundary.
        let here = at as usize + path.len();
        let len = chunk.len().min(4096 - here % 4096);
        let remote = [RemoteIoVec { base: here, len }];
        let Ok(got) = process_vm_readv(pid, &mut [IoSliceMut::new(&mut chunk[..len])], &remote) else { break };
        if let Some(end) = chunk[..got].iter().position(|b| *b == 0) {
            path.extend_from_slice(&chunk[..end]);
            return String::from_utf8_lossy(&path).into_owned();
        }
        if got == 0 {
            break;
        }
        path.extend_from_slice(&chunk[..got]);
    }
    "?".into()
}

/// Lets the exec of `notif` go on; at its end, injects the stub.
fn exec(listener: BorrowedFd<'_>, notif: &libc::seccomp_notif, page: &CStr) -> Outcome {
    let pid = Pid::from_raw(notif.pid as i32);
    let tgid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Tgid:").map(|v| v.trim().parse::<i32>().ok()))?);
    if tgid != Some(pid.as_raw()) {
        // An exec from a thread other than the main one changes the process's id on the way:
        // let it run as it is.
        answer(listener, notif.id);
        return Outcome::Unreached("it called exec from a thread other than its main one".into());
    }
    let seized = ptrace::seize(pid, Options::PTRACE_O_TRACEEXEC | Options::PTRACE_O_TRACESYSGOOD);
    // The notification may be stale (the caller died, its pid reused) by the time we seized.
    // SAFETY: NOTIF_ID_VALID reads the id.
    let valid =
        unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &raw const notif.id) } == 0;
    answer(listener, notif.id);
    match seized {
        // A process that is on its way out cannot be seized (EPERM) either.
        Err(nix::errno::Errno::ESRCH) => return Outcome::Gone,
        Err(_) if !valid => return Outcome::Gone,
        Err(e) => {
            return Outcome::Unreached(format!("it could not be traced ({e}): is a debugger or tracer attached?"))
        }
        Ok(()) if !valid => {
            // Gone, or its exec was cut short by a signal (it calls exec again after it).
            settle(pid);
            return Outcome::Gone;
        }
        Ok(()) => {}
    }
    // One stop is certain now: the exec's, or (if it failed) the interrupt's.
    let _ = ptrace::interrupt(pid);
    let outcome = after_exec(pid, page);
    if matches!(outcome, Outcome::Gone) {
        settle(pid);
    }
    outcome
}

/// Ends the tracing of `pid` whatever became of it: a dead tracee stays a zombie that its
/// parent cannot reap until its tracer has waited for it, so it is waited for; a live one is
/// stopped (an interrupt) and let go. Returns at once if it was reaped already (ECHILD).
fn settle(pid: Pid) {
    let _ = ptrace::interrupt(pid);
    match waitpid(pid, Some(WaitPidFlag::__WALL)) {
        Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_) => {}
        Ok(WaitStatus::Stopped(_, signal)) => {
            let _ = ptrace::detach(pid, signal);
        }
        Ok(_) => {
            let _ = ptrace::detach(pid, None);
        }
    }
}

/// Lets the notified `execve` go on as if no filter were there.
fn answer(listener: BorrowedFd<'_>, id: u64) {
    let mut resp =
        libc::seccomp_notif_resp { id, val: 0, error: 0, flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32 };
    // SAFETY: NOTIF_SEND reads `resp`, which lives for the call.
    let _ = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &raw mut resp) };
}

/// Signals that arrived while a process was held: they are delivered when it is let go.
#[derive(Default)]
struct Held(Vec<Signal>);

impl Held {
    fn add(&mut self, signal: Signal) {
        if !self.0.contains(&signal) {
            self.0.push(signal);
        }
    }

    /// Detaches from `pid`, handing it the first signal held and sending it the others.
    /// Returns false if it was killed meanwhile (a SIGKILL ends a ptrace stop).
    fn let_go(self, pid: Pid) -> bool {
        let mut signals = self.0.into_iter();
        if ptrace::detach(pid, signals.next()) == Err(nix::errno::Errno::ESRCH) {
            return false;
        }
        for signal in signals {
            let _ = nix::sys::signal::kill(pid, signal);
        }
        true
    }
}

/// Waits for the exec of seized `pid` to end, injects, and lets go of it.
fn after_exec(pid: Pid, page: &CStr) -> Outcome {
    let mut held = Held::default();
    loop {
        match waitpid(pid, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::PtraceEvent(_, _, libc::PTRACE_EVENT_EXEC)) => break,
            Ok(WaitStatus::PtraceEvent(_, _, _)) => {
                // The interrupt's stop: the exec failed and the process runs on.
                return if held.let_go(pid) { Outcome::NoExec } else { Outcome::Gone };
            }
            Ok(WaitStatus::Stopped(_, signal)) => {
                // A signal on the way: hand it over when letting go.
                held.add(signal);
                let _ = ptrace::cont(pid, None);
            }
            Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_) => return Outcome::Gone,
            Ok(_) => {
                let _ = ptrace::cont(pid, None);
            }
        }
    }
    // From the exec's event to the end of the execve system call: there, registers set now
    // are what the program resumes with (at the event, the call's return value would still
    // overwrite them).
    if ptrace::syscall(pid, None).is_err() {
        return Outcome::Gone;
    }
    let mut tracee = match Tracee::at_syscall_exit(pid, held) {
        Ok(t) => t,
        Err(outcome) => return outcome,
    };
    let outcome = match tracee.inject(page) {
        Ok(()) => Outcome::Shifted,
        Err(why) => Outcome::Unreached(why),
    };
    if tracee.release() {
        outcome
    } else {
        Outcome::Gone
    }
}

/// A process stopped at the end of its execve, with what it must resume with.
struct Tracee {
    pid: Pid,
    saved: libc::user_regs_struct,
    /// The word at the resume address, while a `syscall` instruction stands in for it.
    borrowed: Option<i64>,
    /// Signals that arrived meanwhile.
    held: Held,
}

impl Tracee {
    fn at_syscall_exit(pid: Pid, mut held: Held) -> Result<Tracee, Outcome> {
        loop {
            match waitpid(pid, Some(WaitPidFlag::__WALL)) {
                Ok(WaitStatus::PtraceSyscall(_)) => break,
                Ok(WaitStatus::Stopped(_, signal)) => {
                    held.add(signal);
                    ptrace::syscall(pid, None).map_err(|_| Outcome::Gone)?;
                }
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_) => return Err(Outcome::Gone),
                Ok(_) => ptrace::syscall(pid, None).map_err(|_| Outcome::Gone)?,
            }
        }
        let saved = ptrace::getregs(pid).map_err(|_| Outcome::Gone)?;
        let exec = [libc::SYS_execve, libc::SYS_execveat].map(|nr| nr as u64);
        if !exec.contains(&saved.orig_rax) || saved.rax != 0 {
            if !held.let_go(pid) {
                return Err(Outcome::Gone);
            }
            return Err(Outcome::Unreached(format!(
                "it stopped after its exec in system call {} (returning {}), not at the exec's end",
                saved.orig_rax as i64, saved.rax as i64
            )));
        }
        Ok(Tracee { pid, saved, borrowed: None, held })
    }

    /// Maps the page and the stub into the process and points the vDSO's clock symbols at
    /// the stub; an error says why not (the process is left as it was, but for a page).
    fn inject(&mut self, page: &CStr) -> Result<(), String> {
        if self.saved.cs != USER64_CS {
            return Err("it is not a 64-bit program".into());
        }
        let base = self.vdso_base().ok_or("it has no vDSO")?;
        let image = self.read(base, self.vdso_len(base).ok_or("its vDSO is not in its maps")?)?;
        let vdso = Vdso::parse(&image, base).ok_or("its vDSO is not an ELF image")?;
        let targets: Vec<(Entry, Vec<super::vdso::Symbol>)> = Entry::ALL
            .into_iter()
            .map(|entry| (entry, entry.symbols().iter().filter_map(|name| vdso.symbol(name)).collect()))
            .collect();
        let real = targets.iter().map(|(_, found)| found.first().map_or(0, |s| s.address)).collect::<Vec<_>>();
        if real[0] == 0 {
            return Err("its vDSO has no clock_gettime".into());
        }

        let scratch = self.syscall(
            libc::SYS_mmap,
            [
                0,
                4096,
                (libc::PROT_READ | libc::PROT_WRITE) as u64,
                (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64,
                u64::MAX,
                0,
            ],
        )?;
        self.write(scratch, page.to_bytes_with_nul())?;
        let fd = self
            .syscall(
                libc::SYS_openat,
                [libc::AT_FDCWD as u64, scratch, (libc::O_RDONLY | libc::O_CLOEXEC) as u64, 0, 0, 0],
            )
            .map_err(|e| format!("it cannot open the clock page {}: {e}", page.to_string_lossy()))?;
        let mapped = self.syscall(libc::SYS_mmap, [0, 4096, libc::PROT_READ as u64, libc::MAP_SHARED as u64, fd, 0]);
        let _ = self.syscall(libc::SYS_close, [fd, 0, 0, 0, 0, 0]);
        let clock = mapped?;
        self.write(scratch, &stub::build(clock, [real[0], real[1], real[2]]))?;
        self.syscall(libc::SYS_mprotect, [scratch, 4096, (libc::PROT_READ | libc::PROT_EXEC) as u64, 0, 0, 0])?;
        for (entry, found) in &targets {
            for symbol in found {
                let value = symbol.value_for(scratch + stub::entry_offset(*entry) as u64);
                ptrace::write(self.pid, symbol.value_at as ptrace::AddressType, value as i64)
                    .map_err(|e| format!("its vDSO's symbols cannot be changed ({e})"))?;
            }
        }
        Ok(())
    }

    /// Runs system call `nr` in the process: a `syscall` instruction in place of the word at
    /// the resume address, the registers set, one step.
    fn syscall(&mut self, nr: libc::c_long, args: [u64; 6]) -> Result<u64, String> {
        let at = self.saved.rip;
        if self.borrowed.is_none() {
            let word =
                ptrace::read(self.pid, at as ptrace::AddressType).map_err(|e| format!("reading its code: {e}"))?;
            ptrace::write(self.pid, at as ptrace::AddressType, (word & !0xffff) | SYSCALL as i64)
                .map_err(|e| format!("it refused a system call ({e})"))?;
            self.borrowed = Some(word);
        }
        let mut regs = self.saved;
        (regs.rax, regs.orig_rax, regs.rip) = (nr as u64, u64::MAX, at);
        (regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9) =
            (args[0], args[1], args[2], args[3], args[4], args[5]);
        ptrace::setregs(self.pid, regs).map_err(|e| format!("setting its registers: {e}"))?;
        loop {
            ptrace::step(self.pid, None).map_err(|e| format!("stepping it: {e}"))?;
            match waitpid(self.pid, Some(WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Stopped(_, Signal::SIGTRAP)) => break,
                // The interrupt asked for before the exec, taken now: step again.
                Ok(WaitStatus::PtraceEvent(..)) => {}
                // A signal sent meanwhile (a `stop` right after a start): held, step again.
                Ok(WaitStatus::Stopped(_, signal)) => self.held.add(signal),
                Ok(other) => return Err(format!("it stopped otherwise during a system call ({other:?})")),
                Err(e) => return Err(format!("waiting for it: {e}")),
            }
        }
        let ret = ptrace::getregs(self.pid).map_err(|e| format!("reading its registers: {e}"))?.rax as i64;
        if (-4095..0).contains(&ret) {
            return Err(format!("system call {nr} failed: {}", nix::errno::Errno::from_raw(-ret as i32)));
        }
        Ok(ret as u64)
    }

    fn read(&self, at: u64, len: usize) -> Result<Vec<u8>, String> {
        let mut buf = vec![0u8; len];
        let remote = [RemoteIoVec { base: at as usize, len }];
        let got = process_vm_readv(self.pid, &mut [IoSliceMut::new(&mut buf)], &remote)
            .map_err(|e| format!("reading its memory: {e}"))?;
        (got == len).then_some(buf).ok_or_else(|| "a short read of its memory".into())
    }

    fn write(&self, at: u64, bytes: &[u8]) -> Result<(), String> {
        let remote = [RemoteIoVec { base: at as usize, len: bytes.len() }];
        let put = process_vm_writev(self.pid, &[IoSlice::new(bytes)], &remote)
            .map_err(|e| format!("writing its memory: {e}"))?;
        (put == bytes.len()).then_some(()).ok_or_else(|| "a short write to its memory".into())
    }

    /// AT_SYSINFO_EHDR of the new program's auxiliary vector.
    fn vdso_base(&self) -> Option<u64> {
        let auxv = std::fs::read(format!("/proc/{}/auxv", self.pid)).ok()?;
        auxv.chunks_exact(16).find_map(|pair| {
            let key = u64::from_le_bytes(pair[..8].try_into().ok()?);
            let value = u64::from_le_bytes(pair[8..].try_into().ok()?);
            (key == libc::AT_SYSINFO_EHDR).then_some(value)
        })
    }

    /// The length of the mapping that starts at `base`, from the process's maps.
    fn vdso_len(&self, base: u64) -> Option<usize> {
        let maps = std::fs::read_to_string(format!("/proc/{}/maps", self.pid)).ok()?;
        maps.lines().find_map(|line| {
            let (start, end) = line.split_whitespace().next()?.split_once('-')?;
            let (start, end) = (u64::from_str_radix(start, 16).ok()?, u64::from_str_radix(end, 16).ok()?);
            (start == base).then_some((end - start) as usize)
        })
    }

    /// Puts back the borrowed word and the registers, and lets the process run untraced;
    /// false if it was killed meanwhile.
    fn release(self) -> bool {
        if let Some(word) = self.borrowed {
            let _ = ptrace::write(self.pid, self.saved.rip as ptrace::AddressType, word);
        }
        let _ = ptrace::setregs(self.pid, self.saved);
        self.held.let_go(self.pid)
    }
}
