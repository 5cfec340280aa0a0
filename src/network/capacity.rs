//! What the host can hold, checked before a network is made: open files, namespaces, tasks
//! and memory, against what a network of this size needs. A network that will not fit is
//! refused with both figures and the fix; the open-files limit is raised (up to the hard
//! limit) when that is all it takes.

use crate::error::{Error, Result};

/// Descriptors the controller holds per node: its mount namespace (the network and UTS ones
/// are in the network's namespace keep; a node whose monotonic or boottime clock is shifted
/// holds one more, its time namespace).
const FILES_PER_NODE: u64 = 1;
/// Descriptors for everything else: the lab, the netlink sockets of the nodes being linked
/// up, logs, probes, time namespaces.
const FILES_BASE: u64 = 512;
/// The memory a bare node takes, with some room: about 340 KiB measured (the kernel's
/// namespaces, links, routes and neighbour entries, and the controller's share; README,
/// "Benchmarks"). Services come on top.
pub(crate) const MEMORY_PER_NODE: u64 = 400 << 10;

/// Refuses a network of `nodes` nodes running `services` services each that the host cannot
/// hold, naming the limit; raises the open-files limit when that is enough.
pub(crate) fn check(nodes: usize, services: usize) -> Result<()> {
    let n = nodes as u64;
    let refuse = |need: String, have: String, fix: String| Err(Error::Capacity { nodes, need, have, fix });

    let need = FILES_BASE + FILES_PER_NODE * n;
    let (soft, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_err(|e| Error::io("reading the open-files limit", std::io::Error::from(e)))?;
    if soft < need {
        // Root (CAP_SYS_RESOURCE) may raise its own hard limit, up to fs.nr_open.
        let nr_open = read_number("/proc/sys/fs/nr_open").unwrap_or(u64::MAX);
        if need > nr_open.max(hard) {
            return refuse(
                format!("{need} open files"),
                format!("fs.nr_open, the most a process may have, is {nr_open}"),
                format!("raise it (sysctl fs.nr_open={need}), or bring up fewer nodes"),
            );
        }
        if nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, need, hard.max(need)).is_err() {
            return refuse(
                format!("{need} open files"),
                format!(
                    "the hard limit (ulimit -Hn) is {hard}, and this process may not raise it (no CAP_SYS_RESOURCE)"
                ),
                "raise it (ulimit -Hn, or LimitNOFILE= for a systemd unit), or bring up fewer nodes".into(),
            );
        }
    }
    let file_nr = std::fs::read_to_string("/proc/sys/fs/file-nr").unwrap_or_default();
    let mut file_nr = file_nr.split_whitespace().filter_map(|v| v.parse::<u64>().ok());
    if let (Some(open), _, Some(max)) = (file_nr.next(), file_nr.next(), file_nr.next()) {
        if open + need > max {
            return refuse(
                format!("{need} more open files"),
                format!("{open} of the host's {max} (fs.file-max) are open"),
                "raise fs.file-max, or bring up fewer nodes".into(),
            );
        }
    }

    for kind in ["net", "mnt", "uts"] {
        let path = format!("/proc/sys/user/max_{kind}_namespaces");
        if let Some(max) = read_number(&path) {
            // The nodes' and the lab's, on top of the host's own.
            if max < n + 2 {
                return refuse(
                    format!("{} {kind} namespaces", n + 2),
                    format!("{path} is {max}"),
                    format!("raise it (sysctl user.max_{kind}_namespaces={}), or bring up fewer nodes", n + 16),
                );
            }
        }
    }

    // One task per service at least (most have more threads), and the clock supervisor.
    let tasks = n * services as u64 + 1;
    let running = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().nth(3)?.split_once('/')?.1.parse::<u64>().ok());
    let limit = [read_number("/proc/sys/kernel/pid_max"), read_number("/proc/sys/kernel/threads-max")]
        .into_iter()
        .flatten()
        .min();
    if let (Some(running), Some(limit)) = (running, limit) {
        if running + tasks > limit {
            return refuse(
                format!("{tasks} more tasks ({services} service(s) a node)"),
                format!("{running} of the kernel's {limit} (kernel.pid_max, kernel.threads-max) are taken"),
                "raise kernel.pid_max and kernel.threads-max, or bring up fewer nodes".into(),
            );
        }
    }

    let need = n * MEMORY_PER_NODE;
    if let Some(available) = mem_available() {
        if available < need {
            return refuse(
                format!(
                    "about {} MiB of memory ({} KiB a node, before their services)",
                    need >> 20,
                    MEMORY_PER_NODE >> 10
                ),
                format!("{} MiB is available (MemAvailable in /proc/meminfo)", available >> 20),
                format!("free memory, or bring up at most {} nodes", available / MEMORY_PER_NODE),
            );
        }
    }
    Ok(())
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The kernel's estimate of the memory available without swapping, in bytes.
fn mem_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?;
    Some(line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()? << 10)
}
