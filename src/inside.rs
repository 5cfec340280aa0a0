//! Inside a node: what its processes share (its namespaces, its clock, the network's probe
//! runtime) and what a process needs to start there.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cancel::Cancel;
use crate::clock::NodeClock;
use crate::error::{Context, Result};
use crate::ns::{Enter, NodeNamespaces};
use crate::runtime;

/// What the services of a node share with it.
#[derive(Debug)]
pub(crate) struct NodeCtx {
    pub(crate) name: String,
    pub(crate) run_id: String,
    pub(crate) ns: NodeNamespaces,
    pub(crate) net: Arc<NetCtx>,
    pub(crate) clock: Mutex<NodeClock>,
}

/// What a process needs to start inside a node: the namespaces to join (the time namespace
/// held open until the spawn is done) and the environment of the node's clock.
pub(crate) struct Entry {
    pub(crate) enter: Enter,
    pub(crate) env: Vec<(String, String)>,
    /// Keeps the time namespace descriptor in `enter` open while the entry lives.
    _timens: Option<OwnedFd>,
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
        let enter = self.ns.enter(timens.as_ref().map(AsRawFd::as_raw_fd));
        Ok(Entry { enter, env: clock.skew.env(), _timens: timens })
    }
}

/// What every node of a network shares: the runtime for HTTP probes, and what cancels waits.
#[derive(Debug)]
pub(crate) struct NetCtx {
    pub(crate) rt: tokio::runtime::Handle,
    pub(crate) http: reqwest::Client,
    pub(crate) cancel: Cancel,
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
