//! Reclaiming what dead runs left: the processes in their nodes' network namespaces,
//! their uplink (by name *and* alias), the nodes' private `/tmp` and (unless the run kept
//! them) the services' data directories, their records. Live runs are never touched; logs stay.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::fabric;
use crate::files;
use crate::ns;
use crate::process;
use crate::registry::{Record, Registry};

/// What [`gc`] reclaimed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// The ids of the dead runs whose leftovers were removed.
    pub runs: Vec<String>,
    /// How many leftover processes were killed.
    pub processes: usize,
    /// How many leftover links were deleted.
    pub links: usize,
    /// How many directories (nodes' `/tmp`, services' data) were removed.
    pub dirs: usize,
}

/// Reclaims everything left by runs whose controller died; live runs are not touched. Every
/// bring-up does the same first.
pub fn gc() -> Result<GcReport> {
    Ok(reclaim(&Registry::lock()?))
}

/// Reclaims the dead runs of the locked `registry`.
pub(crate) fn reclaim(registry: &Registry) -> GcReport {
    let mut report = GcReport::default();
    for record in registry.dead() {
        // The clock supervisor lives in the host's namespaces: it is matched by pid and start time.
        if let Some((pid, start)) = record.supervisor {
            if process::alive(pid) && process::start_time(pid) == Some(start) {
                process::signal(&[pid], nix::sys::signal::Signal::SIGKILL);
                report.processes += 1;
            }
        }
        // Every process left in a node's network namespace is the node's, whatever it did to its
        // environment (gunicorn's setproctitle overwrites it): the namespace is proven the run's
        // by its cookie, and held while its processes are killed.
        if !record.netns.is_empty() {
            let mut proven = ns::Proven::new(&record.netns);
            report.processes += process::kill_until_gone(|| process::Table::scan().in_proven(&mut proven));
        }
        match fabric::remove_stale_uplink(&record.uplink, &record.id) {
            Ok(true) => report.links += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!("gc: {e}"),
        }
        match remove_dirs(&record) {
            Ok(n) => report.dirs += n,
            Err(e) => tracing::warn!("gc: {e}"),
        }
        record.remove();
        report.runs.push(record.id);
    }
    report
}

/// Removes the nodes' `/tmp` of a dead run and, unless it kept them, its data directories:
/// `<run_dir>/<node>/tmp` and `<run_dir>/<node>/<service>/data`. Returns how many.
fn remove_dirs(record: &Record) -> Result<usize> {
    let root = record.run_dir.parent().unwrap_or(&record.run_dir);
    if !files::is_trusted_root(root, "run_root")? || std::fs::symlink_metadata(&record.run_dir).is_err() {
        return Ok(0);
    }
    let subdirs = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(std::result::Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect()
    };
    let mut doomed = Vec::new();
    for node in subdirs(&record.run_dir) {
        doomed.push(node.join("tmp"));
        if !record.keep_data {
            doomed.extend(subdirs(&node).into_iter().map(|service| service.join("data")));
        }
    }
    let mut removed = 0;
    for dir in doomed.iter().filter(|d| std::fs::symlink_metadata(d).is_ok()) {
        files::remove_tree(dir)?;
        removed += 1;
    }
    Ok(removed)
}
