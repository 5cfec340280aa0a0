//! Processes inside nodes: spawning into a node's namespaces, finding process trees and every
//! process of a namespace in /proc, and signalling them.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::ns::{self, Enter};
use crate::runtime;
use crate::wallclock::Hook;

/// The environment variable that marks every process netdriver starts with its run id.
pub(crate) const RUN_MARKER: &str = "NETDRIVER_RUN";

/// How a spawned process relates to the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tie {
    /// A service: its own session and process group, killed if the controller dies.
    Service,
    /// A one-off command: stays in the caller's process group.
    Command,
}

/// Makes `cmd` start inside the namespaces `ns` (net, uts, mnt), in its current directory
/// (or ours), with no signal blocked or ignored (a controller blocks the ones it waits for,
/// and a child would inherit that), and under the node's wall clock when `hook` is given. A
/// service fails to start if the directory is missing in the node; a one-off command starts
/// in `/` instead (the caller's directory may be under the host's /tmp, which the node does
/// not see).
pub(crate) fn prepare(cmd: &mut Command, ns: Enter, tie: Tie, hook: Option<Hook>) {
    let cwd = cmd
        .get_current_dir()
        .map(Path::to_path_buf)
        .or_else(|| std::env::current_dir().ok())
        .and_then(|d| CString::new(d.as_os_str().as_bytes()).ok());
    let parent = std::process::id() as libc::pid_t;

    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // calls are allowed: it makes plain system calls and allocates nothing (its errors are OS
    // error codes, which io::Error holds without allocating).
    unsafe {
        cmd.pre_exec(move || {
            runtime::reset_signals()?;
            ns.join()?;
            // Joining a mount namespace moves the process to its root: go back to the directory.
            if let Some(dir) = &cwd {
                if libc::chdir(dir.as_ptr()) != 0 {
                    if tie == Tie::Service {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::chdir(c"/".as_ptr());
                }
            }
            if tie == Tie::Service {
                if libc::setsid() < 0 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The controller exited during the spawn: PDEATHSIG was set too late to fire.
                if libc::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
            }
            // Last: the filter it installs reports the exec that follows.
            if let Some(hook) = &hook {
                hook.install()?;
            }
            Ok(())
        });
    }
}

/// One row of the process table.
#[derive(Debug, Clone, Copy)]
struct Proc {
    pid: i32,
    ppid: i32,
    pgrp: i32,
    /// The network namespace's inode, if it could be read.
    net: Option<u64>,
}

fn read_stat(pid: i32) -> Option<(Proc, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    let proc = Proc { pid, ppid: fields.get(1)?.parse().ok()?, pgrp: fields.get(2)?.parse().ok()?, net: None };
    Some((proc, fields.get(19)?.parse().ok()?))
}

fn pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc").into_iter().flatten().filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
}

/// A process's start time (clock ticks since boot): with the pid, it names the process uniquely.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    read_stat(pid).map(|(_, t)| t)
}

/// The process table, read from /proc in one pass: many questions about it cost one scan
/// (stopping hundreds of services at once would otherwise scan /proc for each).
#[derive(Debug)]
pub(crate) struct Table(Vec<Proc>);

impl Table {
    /// Reads every process's parent, group and network namespace.
    pub(crate) fn scan() -> Table {
        Table(
            pids()
                .filter_map(|pid| {
                    let (proc, _) = read_stat(pid)?;
                    Some(Proc { net: ns::inode_of(Path::new(&format!("/proc/{pid}/ns/net"))), ..proc })
                })
                .collect(),
        )
    }

    /// `root`, its descendants, and every member of the process group `root` leads.
    pub(crate) fn tree(&self, root: i32) -> Vec<i32> {
        let mut found: HashSet<i32> = self.0.iter().filter(|p| p.pgrp == root).map(|p| p.pid).collect();
        found.insert(root);
        let mut frontier = vec![root];
        while let Some(parent) = frontier.pop() {
            for p in self.0.iter().filter(|p| p.ppid == parent) {
                if found.insert(p.pid) {
                    frontier.push(p.pid);
                }
            }
        }
        found.into_iter().collect()
    }

    /// Every process in one of the network namespaces `proven` holds (of a run that may be
    /// gone, whose namespaces' inode numbers may have passed to others).
    pub(crate) fn in_proven(&self, proven: &mut ns::Proven) -> Vec<i32> {
        let me = std::process::id() as i32;
        self.0.iter().filter(|p| p.pid != me && p.net.is_some_and(|i| proven.has(p.pid, i))).map(|p| p.pid).collect()
    }

    /// Every process in one of the live network namespaces `inodes` whose environment holds
    /// every `KEY=VALUE` of `env` (e.g. a service's name, to find what escaped its tree).
    pub(crate) fn in_namespaces(&self, inodes: &HashSet<u64>, env: &[String]) -> Vec<i32> {
        let me = std::process::id() as i32;
        self.0
            .iter()
            .filter(|p| p.pid != me && p.net.is_some_and(|i| inodes.contains(&i)))
            .filter(|p| env.is_empty() || has_env(p.pid, env))
            .map(|p| p.pid)
            .collect()
    }
}

fn has_env(pid: i32, wanted: &[String]) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else { return false };
    let vars: HashSet<&[u8]> = environ.split(|b| *b == 0).collect();
    wanted.iter().all(|w| vars.contains(w.as_bytes()))
}

/// Sends `signal` to each process, ignoring those that are already gone.
pub(crate) fn signal(pids: &[i32], signal: Signal) {
    for &pid in pids {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

/// Kills the processes `find` returns with SIGKILL until it returns none (at most ~2 s).
pub(crate) fn kill_until_gone(mut find: impl FnMut() -> Vec<i32>) -> usize {
    let mut killed: HashSet<i32> = HashSet::new();
    for _ in 0..200 {
        let left: Vec<i32> = find().into_iter().filter(|p| alive(*p)).collect();
        if left.is_empty() {
            break;
        }
        killed.extend(&left);
        signal(&left, Signal::SIGKILL);
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    killed.len()
}

/// Whether `pid` is a running (not zombie) process.
pub(crate) fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rfind(')').and_then(|i| s.get(i + 2..i + 3)) != Some("Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_stat() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert!(alive(me));
        assert!(Table::scan().tree(me).contains(&me));
    }
}
