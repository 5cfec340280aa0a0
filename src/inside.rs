//! Inside a node: what its processes share (its namespaces, its clocks, the network's probe
//! runtime and clock supervisor) and what a process needs to start there.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cancel::Cancel;
use crate::clock::ClockSkew;
use crate::error::{Context, Error, Result};
use crate::events::EventLog;
use crate::ns::{Enter, NodeNamespaces};
use crate::runtime;
use crate::wallclock::{Hook, Page, Supervisor};

/// What the services of a node share with it.
#[derive(Debug)]
pub(crate) struct NodeCtx {
    pub(crate) name: String,
    pub(crate) run_id: String,
    pub(crate) ns: NodeNamespaces,
    pub(crate) net: Arc<NetCtx>,
    pub(crate) clock: Mutex<NodeClock>,
}

/// A node's clocks: the setting, the time namespace that carries its monotonic and boottime
/// offsets, and the page that carries its wall clock.
#[derive(Debug)]
pub(crate) struct NodeClock {
    pub(crate) skew: ClockSkew,
    pub(crate) timens: Option<OwnedFd>,
    /// `None` when the network runs without per-node wall clocks.
    pub(crate) page: Option<Page>,
}

/// What a process needs to start inside a node: the namespaces to join (the time namespace
/// held open until the spawn is done), the environment of the node's clock, and the hook that
/// puts the program under the node's wall clock.
pub(crate) struct Entry {
    pub(crate) enter: Enter,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) hook: Option<Hook>,
    /// Keeps the descriptors in `enter` open while the entry lives: the time namespace's,
    /// and the network and UTS namespaces' opened for it.
    _timens: Option<OwnedFd>,
    _opened: [OwnedFd; 2],
}

impl NodeCtx {
    /// The current [`Entry`] into the node.
    pub(crate) fn entry(&self) -> Result<Entry> {
        let clock = self.clock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let timens = clock
            .timens
            .as_ref()
            .map(OwnedFd::try_clone)
            .transpose()
            .context(|| "duplicating the time namespace descriptor")?;
        let (enter, opened) = self.ns.enter(timens.as_ref().map(AsRawFd::as_raw_fd))?;
        let hook = match (&self.net.supervisor, &clock.page) {
            (Some(supervisor), Some(page)) => Some(supervisor.hook(page.path())),
            _ => None,
        };
        Ok(Entry { enter, env: clock.skew.env(), hook, _timens: timens, _opened: opened })
    }

    /// Why a program could not start in the node, when the network's clock supervisor is gone
    /// (every exec in the node goes through it).
    pub(crate) fn supervisor_gone(&self) -> Option<Error> {
        let supervisor = self.net.supervisor.as_ref()?;
        let status = supervisor.ended()?;
        Some(Error::State(format!(
            "the clock supervisor of this network (pid {}) is gone ({status}): no program can start in its nodes \
             (an exec there fails with ENOSYS, \"function not implemented\"); tear the network down and bring it up again",
            supervisor.pid()
        )))
    }
}

/// What every node of a network shares: the runtime for HTTP probes, what cancels waits, the
/// clock supervisor (none when the network runs without per-node wall clocks) and the timeline.
#[derive(Debug)]
pub(crate) struct NetCtx {
    pub(crate) rt: tokio::runtime::Handle,
    pub(crate) http: reqwest::Client,
    pub(crate) cancel: Cancel,
    pub(crate) supervisor: Option<Supervisor>,
    /// The run's timeline.
    pub(crate) events: Arc<EventLog>,
}

impl NetCtx {
    /// Whether a GET of `url` answers with a 2xx status within a second.
    pub(crate) fn http_ok(&self, url: &str) -> bool {
        runtime::block_on(&self.rt, async {
            let response = self.http.get(url).timeout(Duration::from_secs(1)).send().await;
            response.is_ok_and(|r| r.status().is_success())
        })
    }

    /// The body of a GET of `url` if it answers with a 2xx status within a second.
    pub(crate) fn http_text(&self, url: &str) -> Option<String> {
        runtime::block_on(&self.rt, async {
            let response = self.http.get(url).timeout(Duration::from_secs(1)).send().await.ok()?;
            response.error_for_status().ok()?.text().await.ok()
        })
    }
}
