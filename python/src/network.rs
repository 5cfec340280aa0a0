//! The binding's `Network` class: a profile's network, brought up by `start(n)` and torn down
//! by `stop()`, with a method per operation of the library. The pure-Python `netdriver.Network`
//! wraps it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use netdriver::profile::{self, Profile};
use netdriver::{ClockSkew, Direction, Op, Qos, QosTarget, Service};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::{to_py, IntoPy, InvalidError, StateError};

/// The settings of a dict as `(key, value)` pairs in a stable order.
fn pairs(settings: &HashMap<String, String>) -> Vec<(&str, &str)> {
    let mut pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.sort_unstable();
    pairs
}

/// A network of one profile (`bigchaindb`, `kvstore`, or a manifest): brought up by
/// `start(n)`, torn down by `stop()`, and started again as often as wanted. Nodes are named by
/// name or by index (as a string).
#[pyclass(module = "netdriver._netdriver", frozen)]
pub(crate) struct Network {
    profile: Arc<dyn Profile>,
    name: String,
    run_root: Option<PathBuf>,
    keep_data: bool,
    /// Dual stack, whatever the profile's or manifest's spec says.
    ipv6: bool,
    /// The network. Operations clone the Arc and run without the lock (never held while
    /// detached from Python), so that several Python threads can drive nodes at once; `stop`
    /// waits until they are done.
    live: Mutex<Live>,
    /// Id and run directory of the last network brought up (kept after it is torn down, and
    /// also when a start failed half-way and tore it down).
    last: Mutex<Option<(String, PathBuf)>>,
}

/// Where a [`Network`] is in its life.
enum Live {
    Stopped,
    /// `start` runs in some thread.
    Starting,
    Up(Arc<netdriver::Network>),
}

/// Resets a [`Live::Starting`] to [`Live::Stopped`] when dropped by a panic.
struct StartGuard<'a>(&'a Mutex<Live>);

impl Drop for StartGuard<'_> {
    fn drop(&mut self) {
        let mut live = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if matches!(*live, Live::Starting) {
            *live = Live::Stopped;
        }
    }
}

impl Network {
    fn live(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn up(&self) -> Option<Arc<netdriver::Network>> {
        match &*self.live() {
            Live::Up(n) => Some(n.clone()),
            _ => None,
        }
    }

    /// The id and run directory of the live network, or of the last one once stopped.
    fn run(&self) -> Option<(String, PathBuf)> {
        match self.up() {
            Some(n) => Some((n.id().to_string(), n.run_dir().to_path_buf())),
            None => self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
        }
    }

    /// `f` of a service of the live network (a quick look, under the GIL).
    fn with_service<T>(&self, node: &str, service: &str, f: impl FnOnce(&Service) -> T) -> PyResult<T> {
        let network = self.network()?;
        let node = network.node(node).py_err()?;
        Ok(f(node.service(service).py_err()?))
    }

    /// The live network, or StateError.
    fn network(&self) -> PyResult<Arc<netdriver::Network>> {
        match &*self.live() {
            Live::Up(n) => Ok(n.clone()),
            Live::Starting => Err(StateError::new_err(format!("network '{}' is still starting", self.name))),
            Live::Stopped => Err(StateError::new_err(format!(
                "network '{}' is not started: call start(n) first (or it was stopped)",
                self.name
            ))),
        }
    }

    /// Runs `f` on the live network with the Python thread detached.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&netdriver::Network) -> netdriver::Result<T> + Send,
    ) -> PyResult<T> {
        let network = self.network()?;
        py.detach(move || f(&network)).py_err()
    }
}

#[pymethods]
impl Network {
    /// Locates the profile's programs now, so that a missing one fails here.
    #[new]
    #[expect(clippy::too_many_arguments, reason = "Python's keyword arguments, one parameter each")]
    #[pyo3(signature = (profile = Some("bigchaindb".to_string()), manifest = None, name = None, binaries = None, run_root = None, keep_data = false, ipv6 = false))]
    fn new(
        py: Python<'_>,
        profile: Option<String>,
        manifest: Option<PathBuf>,
        name: Option<String>,
        binaries: Option<HashMap<String, PathBuf>>,
        run_root: Option<PathBuf>,
        keep_data: bool,
        ipv6: bool,
    ) -> PyResult<Self> {
        let binaries: Vec<(String, PathBuf)> = binaries.unwrap_or_default().into_iter().collect();
        let located: netdriver::Result<Arc<dyn Profile>> = py.detach(|| match &manifest {
            Some(path) => {
                if !binaries.is_empty() {
                    return Err(netdriver::Error::Invalid {
                        what: "binaries".into(),
                        message: "a manifest names its programs itself; give binaries only with a profile".into(),
                    });
                }
                Ok(Arc::new(profile::Manifest::load(path)?) as Arc<dyn Profile>)
            }
            None => profile::by_name(profile.as_deref().unwrap_or("bigchaindb"), &binaries),
        });
        let profile = located.py_err()?;
        let name = match (name, manifest.is_some()) {
            (Some(name), _) => name,
            // A manifest's spec keeps its own name when given an empty one.
            (None, true) => profile.spec("", 1).py_err()?.name,
            (None, false) => profile.name().to_string(),
        };
        Ok(Network {
            profile,
            name,
            run_root,
            keep_data,
            ipv6,
            live: Mutex::new(Live::Stopped),
            last: Mutex::new(None),
        })
    }

    /// Brings up `nodes` nodes, prepares them and starts every service (waiting until each is
    /// ready). If anything fails, what was made is torn down and the error raised.
    fn start(&self, py: Python<'_>, nodes: usize) -> PyResult<()> {
        {
            let mut live = self.live();
            if !matches!(*live, Live::Stopped) {
                return Err(StateError::new_err(format!(
                    "network '{}' is already started: call stop() first",
                    self.name
                )));
            }
            *live = Live::Starting;
        }
        // Back to Stopped if the bring-up panics (a panic becomes a Python exception).
        let guard = StartGuard(&self.live);
        let (profile, name, run_root) = (self.profile.clone(), &self.name, &self.run_root);
        let (keep_data, ipv6) = (self.keep_data, self.ipv6);
        let last = &self.last;
        let started = py.detach(move || {
            let mut spec = profile.spec(name, nodes)?;
            if let Some(root) = run_root {
                spec.run_root.clone_from(root);
            }
            spec.keep_data |= keep_data;
            spec.ipv6 |= ipv6;
            let network = netdriver::events::acting_as(netdriver::Actor::Python, || profile.up(&spec))?;
            network.set_actor(netdriver::Actor::Python);
            *last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((network.id().to_string(), network.run_dir().to_path_buf()));
            match profile.start(&network) {
                Ok(()) => Ok(network),
                Err(e) => {
                    if let Err(down) = network.down() {
                        eprintln!("netdriver: tearing down after a failed start: {down}");
                    }
                    Err(e)
                }
            }
        });
        std::mem::forget(guard);
        let mut live = self.live();
        match started {
            Ok(network) => {
                *live = Live::Up(Arc::new(network));
                Ok(())
            }
            Err(e) => {
                *live = Live::Stopped;
                Err(to_py(e))
            }
        }
    }

    /// Stops every service and tears the network down (its logs stay in `run_dir`). A no-op
    /// when the network is not started. Waits for operations still running in other threads.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let mut network = {
            let mut live = self.live();
            match std::mem::replace(&mut *live, Live::Stopped) {
                Live::Up(n) => n,
                Live::Stopped => return Ok(()),
                Live::Starting => {
                    *live = Live::Starting;
                    return Err(StateError::new_err(format!("network '{}' is starting in another thread", self.name)));
                }
            }
        };
        py.detach(move || loop {
            match Arc::try_unwrap(network) {
                Ok(network) => return network.down(),
                Err(shared) => {
                    network = shared;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        })
        .py_err()
    }

    /// Whether the network is up.
    #[getter]
    fn started(&self) -> bool {
        matches!(*self.live(), Live::Up(_))
    }

    /// The profile's name: `bigchaindb`, `kvstore` or `manifest`.
    #[getter]
    fn profile(&self) -> &'static str {
        self.profile.name()
    }

    /// The network's name: the one given, else the manifest's, else the profile's.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The run id of the live network (or of the last one, once stopped); None before start.
    #[getter]
    fn id(&self) -> Option<String> {
        self.run().map(|(id, _)| id)
    }

    /// Where the logs of the live network (or of the last one, kept after teardown) are; None
    /// before the first start.
    #[getter]
    fn run_dir(&self) -> Option<PathBuf> {
        self.run().map(|(_, dir)| dir)
    }

    /// The subnet in CIDR form.
    #[getter]
    fn subnet(&self) -> PyResult<String> {
        Ok(self.network()?.subnet().to_string())
    }

    /// The host's address on the network.
    #[getter]
    fn host_ip(&self) -> PyResult<String> {
        Ok(self.network()?.host_ip().to_string())
    }

    /// The IPv6 prefix in CIDR form, or None without IPv6.
    #[getter]
    fn subnet6(&self) -> PyResult<Option<String>> {
        Ok(self.network()?.subnet6().map(|s| s.to_string()))
    }

    /// The host's IPv6 address on the network, or None without IPv6.
    #[getter]
    fn host_ip6(&self) -> PyResult<Option<String>> {
        Ok(self.network()?.host_ip6().map(|ip| ip.to_string()))
    }

    /// One dict per node: name, index, ip, ip6 (None without IPv6), url (None if the profile has none), dir.
    fn nodes<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let network = self.network()?;
        network.nodes().iter().map(|n| node_dict(py, n)).collect()
    }

    /// The node `node` (a name or an index) as nodes() describes it.
    fn node<'py>(&self, py: Python<'py>, node: &str) -> PyResult<Bound<'py, PyDict>> {
        let network = self.network()?;
        node_dict(py, network.node(node).py_err()?)
    }

    /// The names of a node's services, in start order.
    fn services(&self, node: &str) -> PyResult<Vec<String>> {
        let network = self.network()?;
        Ok(network.node(node).py_err()?.services().iter().map(|s| s.name().to_string()).collect())
    }

    /// A service's state: running, paused, stopped, exited(N) or killed(SIG).
    fn service_state(&self, node: &str, service: &str) -> PyResult<String> {
        self.with_service(node, service, |s| s.state().to_string())
    }

    /// The pid of a service's main process while it runs (or is paused), else None.
    fn service_pid(&self, node: &str, service: &str) -> PyResult<Option<u32>> {
        self.with_service(node, service, Service::pid)
    }

    /// A service's (stdout log, stderr log) paths.
    fn service_logs(&self, node: &str, service: &str) -> PyResult<(PathBuf, PathBuf)> {
        self.with_service(node, service, |s| (s.stdout_log(), s.stderr_log()))
    }

    /// A service's data directory.
    fn service_data_dir(&self, node: &str, service: &str) -> PyResult<PathBuf> {
        self.with_service(node, service, |s| s.data_dir().to_path_buf())
    }

    /// Applies `op` (start, stop, kill, pause, resume, restart, reset) to one service of
    /// `node`, or to all of them in dependency order when `service` is None.
    #[pyo3(signature = (node, service, op))]
    fn service_op(&self, py: Python<'_>, node: &str, service: Option<&str>, op: &str) -> PyResult<()> {
        let op = op.parse::<Op>().py_err()?;
        self.with(py, |n| n.node(node)?.apply(op, service))
    }

    /// Merges `settings` (a JSON object: nested, or with dotted keys; null removes a key)
    /// into the configuration file of `service` on `node`; it applies at the next start.
    fn configure(&self, py: Python<'_>, node: &str, service: &str, settings: &str) -> PyResult<()> {
        let value: serde_json::Value = serde_json::from_str(settings)
            .map_err(|e| InvalidError::new_err(format!("invalid settings: not JSON: {e}")))?;
        self.with(py, |n| n.node(node)?.service(service)?.configure(&value))
    }

    /// Sets a node's clocks (keys as in ClockSkew::SETTINGS); the wall clock changes at once,
    /// the others for processes started from now on or, with `restart`, at once by restarting
    /// the services. Returns {"restart_needed": [...], "restarted": [...],
    /// "unreached": [(program, reason)]}.
    #[pyo3(signature = (node, settings, restart = false))]
    fn configure_clock<'py>(
        &self,
        py: Python<'py>,
        node: &str,
        settings: HashMap<String, String>,
        restart: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let skew = ClockSkew::from_settings(pairs(&settings)).py_err()?;
        let report = self.with(py, |n| n.node(node)?.configure_clock(skew, restart))?;
        let dict = PyDict::new(py);
        dict.set_item("restart_needed", report.restart_needed)?;
        dict.set_item("restarted", report.restarted)?;
        dict.set_item("unreached", report.unreached)?;
        Ok(dict)
    }

    /// Shapes a node's links with `settings` (keys as in Qos::SETTINGS, values as text:
    /// "50ms", "1%", "10mbit"). Without `to`: what `node` sends, receives or both
    /// (`direction`); with `to`: what `node` sends to `to`, and back too if `both_ways`.
    /// Empty settings clear that shaping.
    #[pyo3(signature = (node, settings, direction = "both", to = None, both_ways = false))]
    fn configure_qos(
        &self,
        py: Python<'_>,
        node: &str,
        settings: HashMap<String, String>,
        direction: &str,
        to: Option<&str>,
        both_ways: bool,
    ) -> PyResult<()> {
        let qos = Qos::from_settings(pairs(&settings)).py_err()?;
        let target = match to {
            None => QosTarget::node(node, direction.parse().py_err()?),
            Some(to) => QosTarget::Pair { from: node.to_string(), to: to.to_string(), both_ways },
        };
        self.with(py, |n| n.configure_qos(&target, qos))
    }

    /// The keys configure_qos takes.
    #[staticmethod]
    fn qos_settings() -> Vec<&'static str> {
        Qos::SETTINGS.to_vec()
    }

    /// Removes the shaping of `node` (both directions; pairs to it stay), or every shaping of
    /// the network when `node` is None.
    #[pyo3(signature = (node = None))]
    fn clear_qos(&self, py: Python<'_>, node: Option<&str>) -> PyResult<()> {
        self.with(py, |n| match node {
            Some(node) => n.configure_qos(&QosTarget::node(node, Direction::Both), Qos::default()),
            None => n.clear_qos(),
        })
    }

    /// Splits the network into groups (lists of node names or indexes) that cannot reach each
    /// other; nodes in no group form one more group. Replaces earlier cuts.
    fn partition(&self, py: Python<'_>, groups: Vec<Vec<String>>) -> PyResult<()> {
        self.with(py, |n| n.partition(&groups))
    }

    /// Drops what `a` sends to `b` (one way), in addition to the current cuts.
    fn block(&self, py: Python<'_>, a: &str, b: &str) -> PyResult<()> {
        self.with(py, |n| n.block(a, b))
    }

    /// Waits until the nodes agree (see `Profile::wait_converged`): (height, block hash, app
    /// hash). `timeout` is a duration such as "60s".
    fn wait_converged(&self, py: Python<'_>, timeout: &str) -> PyResult<(u64, String, String)> {
        let timeout = netdriver::units::parse_duration(timeout).py_err()?;
        let profile = self.profile.clone();
        self.with(py, move |n| profile.wait_converged(n, timeout)).map(|c| (c.height, c.block_hash, c.app_hash))
    }

    /// The plan of a fault schedule (its spec as JSON, or the manifest's with `None`).
    #[pyo3(signature = (spec = None))]
    fn nemesis_plan(&self, spec: Option<&str>) -> PyResult<String> {
        let network = self.network()?;
        crate::nemesis::plan(&network, &crate::nemesis::spec_of(&network, spec)?)
    }

    /// Starts a fault schedule in the background (its spec as JSON, or the manifest's).
    #[pyo3(signature = (spec = None))]
    fn nemesis_start(&self, spec: Option<&str>) -> PyResult<crate::nemesis::Nemesis> {
        let network = self.network()?;
        let spec = crate::nemesis::spec_of(&network, spec)?;
        crate::nemesis::Nemesis::start(network, spec)
    }

    /// Removes every partition and block.
    fn heal(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, netdriver::Network::heal)
    }

    /// The cuts: (senders, receivers) lists of node names; what the first send the second
    /// is dropped.
    fn cuts(&self) -> PyResult<Vec<(Vec<String>, Vec<String>)>> {
        Ok(self.network()?.cuts().into_iter().map(|c| (c.from, c.to)).collect())
    }

    /// Whether what `a` sends to `b` is dropped.
    fn is_cut(&self, a: &str, b: &str) -> PyResult<bool> {
        self.network()?.is_cut(a, b).py_err()
    }

    /// Runs `argv` inside `node` to completion: (returncode, stdout, stderr); the return code
    /// is -N when a signal N ended it, as in subprocess.
    fn exec<'py>(
        &self,
        py: Python<'py>,
        node: &str,
        argv: Vec<String>,
    ) -> PyResult<(i32, Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let out = self.with(py, |n| n.node(node)?.exec(&argv))?;
        let code = match out.status.code() {
            Some(code) => code,
            None => -std::os::unix::process::ExitStatusExt::signal(&out.status).unwrap_or(0),
        };
        Ok((code, PyBytes::new(py, &out.stdout), PyBytes::new(py, &out.stderr)))
    }

    fn __repr__(&self) -> String {
        match self.up() {
            Some(n) => format!(
                "<netdriver._netdriver.Network {} ({}) id={} nodes={} subnet={}>",
                self.name,
                self.profile.name(),
                n.id(),
                n.nodes().len(),
                n.subnet()
            ),
            None => format!("<netdriver._netdriver.Network {} ({}) stopped>", self.name, self.profile.name()),
        }
    }
}

fn node_dict<'py>(py: Python<'py>, node: &netdriver::Node) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("name", node.name())?;
    dict.set_item("index", node.index())?;
    dict.set_item("ip", node.ip().to_string())?;
    dict.set_item("ip6", node.ip6().map(|ip| ip.to_string()))?;
    dict.set_item("url", node.url())?;
    dict.set_item("dir", node.dir())?;
    Ok(dict)
}
