//! `netdriver events`: a run's timeline, as a table or as its JSON lines, once or as it grows.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use netdriver::control::Client;
use netdriver::events::{self, Event};
use netdriver::Result;

/// Prints the timeline of `run_dir` (or of the live network's); with `follow`, new events as
/// they come until the network's teardown.
pub(super) fn events(network: Option<&str>, run_dir: Option<&Path>, json: bool, follow: bool) -> Result<ExitCode> {
    let dir: PathBuf = match run_dir {
        Some(dir) => dir.to_path_buf(),
        None => Client::find(network)?.status()?.run_dir,
    };
    events::watch(&dir.join(events::FILE), follow, |event, line| {
        if json {
            println!("{line}");
        } else {
            println!("{}", row(event));
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// One event as a line of the table: time, wall clock, where, what, details, who.
fn row(event: &Event) -> String {
    let place = match (&event.node, &event.service) {
        (Some(node), Some(service)) => format!("{node}/{service}"),
        (Some(node), None) => node.clone(),
        _ => "-".into(),
    };
    let details = if event.details.is_null() { String::new() } else { event.details.to_string() };
    format!("{:>10.3}s  {}  {place:<22} {:<12} {details}  (by {})", event.t, event.wall, event.kind.name(), event.by)
}
