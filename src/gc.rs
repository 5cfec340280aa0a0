//! Reclaiming what dead runs left: the processes in their namespaces that carry their run id,
//! their uplink (by name *and* alias), their records. Live runs are never touched.

use std::collections::HashSet;

use crate::error::Result;
use crate::fabric;
use crate::process;
use crate::registry::Registry;

/// What [`gc`] reclaimed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// The ids of the dead runs whose leftovers were removed.
    pub runs: Vec<String>,
    /// How many leftover processes were killed.
    pub processes: usize,
    /// How many leftover links were deleted.
    pub links: usize,
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
        let inodes: HashSet<u64> = record.netns.iter().copied().collect();
        if !inodes.is_empty() {
            let marker = [format!("{}={}", process::RUN_MARKER, record.id)];
            report.processes += process::kill_until_gone(|| process::Table::scan().in_namespaces(&inodes, &marker));
        }
        match fabric::remove_stale_uplink(&record.uplink, &record.id) {
            Ok(true) => report.links += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!("gc: {e}"),
        }
        record.remove();
        report.runs.push(record.id);
    }
    report
}
