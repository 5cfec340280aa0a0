//! `netdriver._netdriver`: the Python extension module over the netdriver Rust library.
//!
//! A thin translation: one class, `Cluster`, over [`netdriver::profile::Cluster`], and one
//! exception class per [`netdriver::Error`] variant. Every call that can block (bring-up,
//! service operations, readiness waits, link shaping, teardown) runs with the Python thread
//! detached, so other Python threads go on meanwhile. The friendly API is the pure-Python
//! `netdriver` package around it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use netdriver::control::Op;
use netdriver::profile::{self, Profile};
use netdriver::{ClockSkew, Direction, Qos, Service};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

create_exception!(netdriver, NetdriverError, PyException, "Base class of every netdriver error.");
create_exception!(netdriver, PrivilegeError, NetdriverError, "The process lacks a capability (run as root).");
create_exception!(netdriver, KernelFeatureError, NetdriverError, "A kernel feature netdriver needs is missing.");
create_exception!(netdriver, MissingBinaryError, NetdriverError, "A service's program cannot be found.");
create_exception!(netdriver, ManifestError, NetdriverError, "The manifest cannot be read or is invalid.");
create_exception!(
    netdriver,
    InvalidError,
    NetdriverError,
    "A value is invalid (the message names it and what is allowed)."
);
create_exception!(netdriver, UnknownNodeError, NetdriverError, "No node has this name or index.");
create_exception!(netdriver, UnknownServiceError, NetdriverError, "The node has no service of this name.");
create_exception!(netdriver, DuplicateNameError, NetdriverError, "Two nodes or two services share a name.");
create_exception!(netdriver, SubnetError, NetdriverError, "No free subnet, or the one asked for is taken.");
create_exception!(
    netdriver,
    ServiceFailedError,
    NetdriverError,
    "A service did not become ready or exited while starting."
);
create_exception!(netdriver, StateError, NetdriverError, "An operation that makes no sense in the current state.");
create_exception!(netdriver, NoNetworkError, NetdriverError, "No network is reachable.");
create_exception!(netdriver, NetlinkError, NetdriverError, "A netlink request failed.");
create_exception!(netdriver, NetdriverIOError, NetdriverError, "A system call or file operation failed.");

/// The Python exception for a netdriver error; the message is the error's text.
fn to_py(e: netdriver::Error) -> PyErr {
    use netdriver::Error as E;
    let msg = e.to_string();
    match e {
        E::Privilege { .. } => PrivilegeError::new_err(msg),
        E::KernelFeature { .. } => KernelFeatureError::new_err(msg),
        E::MissingBinary { .. } => MissingBinaryError::new_err(msg),
        E::Manifest { .. } => ManifestError::new_err(msg),
        E::Invalid { .. } => InvalidError::new_err(msg),
        E::UnknownNode { .. } => UnknownNodeError::new_err(msg),
        E::UnknownService { .. } => UnknownServiceError::new_err(msg),
        E::DuplicateName { .. } => DuplicateNameError::new_err(msg),
        E::Subnet(_) => SubnetError::new_err(msg),
        E::ServiceFailed { .. } => ServiceFailedError::new_err(msg),
        E::State(_) => StateError::new_err(msg),
        E::NoNetwork(_) => NoNetworkError::new_err(msg),
        E::Netlink { .. } => NetlinkError::new_err(msg),
        E::Io { .. } => NetdriverIOError::new_err(msg),
        _ => NetdriverError::new_err(msg),
    }
}

trait IntoPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for netdriver::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// The settings of a dict as `(key, value)` pairs in a stable order.
fn pairs(settings: &HashMap<String, String>) -> Vec<(&str, &str)> {
    let mut pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.sort();
    pairs
}

/// A network of one profile (`bigchaindb`, `kvstore`, or a manifest): brought up by
/// `start(n)`, torn down by `stop()`. Nodes are named by name or by index (as a string).
#[pyclass(module = "netdriver._netdriver", frozen)]
struct Cluster {
    profile: Arc<dyn Profile>,
    name: String,
    run_root: Option<PathBuf>,
    keep_data: bool,
    /// The network. Operations clone the Arc and run without the lock (never held while
    /// detached from Python), so that several Python threads can drive nodes at once; `stop`
    /// waits until they are done.
    live: Mutex<Live>,
    /// Id and run directory of the last network brought up (kept after it is torn down, and
    /// also when a start failed half-way and tore it down).
    last: Mutex<Option<(String, PathBuf)>>,
}

/// Where a [`Cluster`] is in its life.
enum Live {
    Stopped,
    /// `start` runs in some thread.
    Starting,
    Up(Arc<profile::Cluster>),
}

/// Resets a [`Live::Starting`] to [`Live::Stopped`] when dropped by a panic.
struct StartGuard<'a>(&'a Mutex<Live>);

impl Drop for StartGuard<'_> {
    fn drop(&mut self) {
        let mut live = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*live, Live::Starting) {
            *live = Live::Stopped;
        }
    }
}

impl Cluster {
    fn live(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn up(&self) -> Option<Arc<profile::Cluster>> {
        match &*self.live() {
            Live::Up(c) => Some(c.clone()),
            _ => None,
        }
    }

    /// The id and run directory of the live network, or of the last one once stopped.
    fn run(&self) -> Option<(String, PathBuf)> {
        match self.up() {
            Some(c) => Some((c.id().to_string(), c.run_dir().to_path_buf())),
            None => self.last.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// `f` of a service of the live network (a quick look, under the GIL).
    fn with_service<T>(&self, node: &str, service: &str, f: impl FnOnce(&Service) -> T) -> PyResult<T> {
        let cluster = self.network()?;
        let node = cluster.node(node).py_err()?;
        Ok(f(node.service(service).py_err()?))
    }

    /// The live network, or StateError.
    fn network(&self) -> PyResult<Arc<profile::Cluster>> {
        match &*self.live() {
            Live::Up(c) => Ok(c.clone()),
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
        f: impl FnOnce(&profile::Cluster) -> netdriver::Result<T> + Send,
    ) -> PyResult<T> {
        let cluster = self.network()?;
        py.detach(move || f(&cluster)).py_err()
    }
}

#[pymethods]
impl Cluster {
    /// Locates the profile's programs now, so that a missing one fails here.
    #[new]
    #[pyo3(signature = (profile = Some("bigchaindb".to_string()), manifest = None, name = None, binaries = None, run_root = None, keep_data = false))]
    fn new(
        py: Python<'_>,
        profile: Option<String>,
        manifest: Option<PathBuf>,
        name: Option<String>,
        binaries: Option<HashMap<String, PathBuf>>,
        run_root: Option<PathBuf>,
        keep_data: bool,
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
        Ok(Cluster { profile, name, run_root, keep_data, live: Mutex::new(Live::Stopped), last: Mutex::new(None) })
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
        let (profile, name, run_root, keep_data) = (self.profile.clone(), &self.name, &self.run_root, self.keep_data);
        let last = &self.last;
        let started = py.detach(move || {
            let mut spec = profile.spec(name, nodes)?;
            if let Some(root) = run_root {
                spec.run_root = root.clone();
            }
            spec.keep_data |= keep_data;
            let cluster = profile::Cluster::up(profile, &spec)?;
            *last.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((cluster.id().to_string(), cluster.run_dir().to_path_buf()));
            match cluster.start() {
                Ok(()) => Ok(cluster),
                Err(e) => {
                    if let Err(down) = cluster.down() {
                        eprintln!("netdriver: tearing down after a failed start: {down}");
                    }
                    Err(e)
                }
            }
        });
        std::mem::forget(guard);
        let mut live = self.live();
        match started {
            Ok(cluster) => {
                *live = Live::Up(Arc::new(cluster));
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
        let mut cluster = {
            let mut live = self.live();
            match std::mem::replace(&mut *live, Live::Stopped) {
                Live::Up(c) => c,
                Live::Stopped => return Ok(()),
                Live::Starting => {
                    *live = Live::Starting;
                    return Err(StateError::new_err(format!("network '{}' is starting in another thread", self.name)));
                }
            }
        };
        py.detach(move || loop {
            match Arc::try_unwrap(cluster) {
                Ok(cluster) => return cluster.down(),
                Err(shared) => {
                    cluster = shared;
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

    /// One dict per node: name, index, ip, url (None if the profile has none), dir.
    fn nodes<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let cluster = self.network()?;
        cluster.nodes().iter().map(|n| node_dict(py, n)).collect()
    }

    /// The node `node` (a name or an index) as nodes() describes it.
    fn node<'py>(&self, py: Python<'py>, node: &str) -> PyResult<Bound<'py, PyDict>> {
        let cluster = self.network()?;
        node_dict(py, cluster.node(node).py_err()?)
    }

    /// The names of a node's services, in start order.
    fn services(&self, node: &str) -> PyResult<Vec<String>> {
        let cluster = self.network()?;
        Ok(cluster.node(node).py_err()?.services().iter().map(|s| s.name().to_string()).collect())
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
        self.with(py, |c| {
            let node = c.node(node)?;
            match service {
                Some(s) => op.apply(node, node.service(s)?),
                None => op.apply_node(node),
            }
        })
    }

    /// Merges `settings` (a JSON object: nested, or with dotted keys; null removes a key)
    /// into the configuration file of `service` on `node`; it applies at the next start.
    fn configure(&self, py: Python<'_>, node: &str, service: &str, settings: &str) -> PyResult<()> {
        let value: serde_json::Value = serde_json::from_str(settings)
            .map_err(|e| InvalidError::new_err(format!("invalid settings: not JSON: {e}")))?;
        self.with(py, |c| c.configure(node, service, &value))
    }

    /// Shifts a node's clocks (keys: offset, realtime, monotonic, boottime, tz) for processes
    /// started from now on; with `restart`, restarts the running services so that they get
    /// them at once. Returns {"restart_needed": [...], "wall_clock_unchanged": [(service,
    /// reason)], "restarted": [...]}.
    #[pyo3(signature = (node, settings, restart = false))]
    fn configure_clock<'py>(
        &self,
        py: Python<'py>,
        node: &str,
        settings: HashMap<String, String>,
        restart: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let skew = ClockSkew::from_settings(pairs(&settings)).py_err()?;
        let (report, restarted) = self.with(py, |c| {
            let node = c.node(node)?;
            let report = node.configure_clock(skew)?;
            let mut restarted = Vec::new();
            if restart {
                for service in &report.restart_needed {
                    node.restart_service(service)?;
                    restarted.push(service.clone());
                }
            }
            Ok((report, restarted))
        })?;
        let dict = PyDict::new(py);
        dict.set_item("restart_needed", report.restart_needed)?;
        dict.set_item("wall_clock_unchanged", report.wall_clock_unchanged)?;
        dict.set_item("restarted", restarted)?;
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
        let direction = direction.parse::<Direction>().py_err()?;
        self.with(py, |c| match (to, both_ways) {
            (None, _) => c.configure_qos(node, direction, qos),
            (Some(to), false) => c.configure_pair_qos(node, to, qos),
            (Some(to), true) => c.configure_pair_qos_both(node, to, qos),
        })
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
        self.with(py, |c| match node {
            Some(node) => c.configure_qos(node, Direction::Both, Qos::default()),
            None => c.clear_qos(),
        })
    }

    /// Splits the network into groups (lists of node names or indexes) that cannot reach each
    /// other; nodes in no group form one more group. Replaces earlier cuts.
    fn partition(&self, py: Python<'_>, groups: Vec<Vec<String>>) -> PyResult<()> {
        self.with(py, |c| {
            let groups: Vec<Vec<&str>> = groups.iter().map(|g| g.iter().map(String::as_str).collect()).collect();
            let groups: Vec<&[&str]> = groups.iter().map(Vec::as_slice).collect();
            c.partition(&groups)
        })
    }

    /// Drops what `a` sends to `b` (one way), in addition to the current cuts.
    fn block(&self, py: Python<'_>, a: &str, b: &str) -> PyResult<()> {
        self.with(py, |c| c.block(a, b))
    }

    /// Removes every partition and block.
    fn heal(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |c| c.heal())
    }

    /// The cut (from, to) node pairs.
    fn cuts(&self) -> PyResult<Vec<(String, String)>> {
        Ok(self.network()?.cuts())
    }

    /// Runs `argv` inside `node` to completion: (returncode, stdout, stderr); the return code
    /// is -N when a signal N ended it, as in subprocess.
    fn exec<'py>(
        &self,
        py: Python<'py>,
        node: &str,
        argv: Vec<String>,
    ) -> PyResult<(i32, Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let out = self.with(py, |c| c.node(node)?.exec(&argv))?;
        let code = match out.status.code() {
            Some(code) => code,
            None => -std::os::unix::process::ExitStatusExt::signal(&out.status).unwrap_or(0),
        };
        Ok((code, PyBytes::new(py, &out.stdout), PyBytes::new(py, &out.stderr)))
    }

    fn __repr__(&self) -> String {
        match self.up() {
            Some(c) => format!(
                "<netdriver._netdriver.Cluster {} ({}) id={} nodes={} subnet={}>",
                self.name,
                self.profile.name(),
                c.id(),
                c.nodes().len(),
                c.subnet()
            ),
            None => format!("<netdriver._netdriver.Cluster {} ({}) stopped>", self.name, self.profile.name()),
        }
    }
}

fn node_dict<'py>(py: Python<'py>, node: &netdriver::Node) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("name", node.name())?;
    dict.set_item("index", node.index())?;
    dict.set_item("ip", node.ip().to_string())?;
    dict.set_item("url", node.url())?;
    dict.set_item("dir", node.dir())?;
    Ok(dict)
}

/// The extension module.
#[pymodule]
fn _netdriver(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Cluster>()?;
    m.add("NetdriverError", py.get_type::<NetdriverError>())?;
    m.add("PrivilegeError", py.get_type::<PrivilegeError>())?;
    m.add("KernelFeatureError", py.get_type::<KernelFeatureError>())?;
    m.add("MissingBinaryError", py.get_type::<MissingBinaryError>())?;
    m.add("ManifestError", py.get_type::<ManifestError>())?;
    m.add("InvalidError", py.get_type::<InvalidError>())?;
    m.add("UnknownNodeError", py.get_type::<UnknownNodeError>())?;
    m.add("UnknownServiceError", py.get_type::<UnknownServiceError>())?;
    m.add("DuplicateNameError", py.get_type::<DuplicateNameError>())?;
    m.add("SubnetError", py.get_type::<SubnetError>())?;
    m.add("ServiceFailedError", py.get_type::<ServiceFailedError>())?;
    m.add("StateError", py.get_type::<StateError>())?;
    m.add("NoNetworkError", py.get_type::<NoNetworkError>())?;
    m.add("NetlinkError", py.get_type::<NetlinkError>())?;
    m.add("NetdriverIOError", py.get_type::<NetdriverIOError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
