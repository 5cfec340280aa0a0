"""netdriver: networks of Linux-namespace nodes for integration tests.

Each node is a set of namespaces (network, mount, UTS) joined to a bridge, with its own
address; its services are processes spawned inside it. A *profile* says what every node runs:
``bigchaindb`` (a database, BigchainDB and Tendermint), ``kvstore`` (Tendermint's built-in
key-value application), or any TOML manifest (see netdriver's README)::

    from netdriver import Network

    network = Network()                 # the bigchaindb profile
    network.start(4)                    # 4 nodes, every service started and ready
    node = network.nodes[0]
    requests.post(node.url + 'transactions?mode=commit', json=tx)
    node.stop(); node.start()
    network.stop()                      # everything torn down; logs stay in network.run_dir

Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN). Every error is a :class:`NetdriverError`
subclass whose message names the cause and the fix. Node and service operations are safe in
any state: starting a running service or stopping a stopped one does nothing; pausing a
stopped service raises :class:`StateError`. Operations release the GIL, so several threads
may drive nodes at once.

With pytest, the ``network`` fixture (see :mod:`netdriver.pytest_plugin`) gives each test a
stopped network and tears it down after the test.
"""

import atexit
import datetime
import json
import numbers
import subprocess
import threading
import weakref
from os import PathLike, fspath
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Type, Union

from . import _netdriver
from ._netdriver import (
    DuplicateNameError,
    InvalidError,
    KernelFeatureError,
    ManifestError,
    MissingBinaryError,
    NetdriverError,
    NetdriverIOError,
    NetlinkError,
    NoNetworkError,
    PrivilegeError,
    ServiceFailedError,
    StateError,
    SubnetError,
    UnknownNodeError,
    UnknownServiceError,
)

__version__ = _netdriver.__version__

__all__ = [
    "Network",
    "Node",
    "Service",
    "TendermintNode",
    "BigchainDBNode",
    "ClockReport",
    "QOS_SETTINGS",
    "NetdriverError",
    "PrivilegeError",
    "KernelFeatureError",
    "MissingBinaryError",
    "ManifestError",
    "InvalidError",
    "UnknownNodeError",
    "UnknownServiceError",
    "DuplicateNameError",
    "SubnetError",
    "ServiceFailedError",
    "StateError",
    "NoNetworkError",
    "NetlinkError",
    "NetdriverIOError",
]

#: The keys :meth:`Node.configure_qos` takes.
QOS_SETTINGS: Tuple[str, ...] = tuple(_netdriver.Cluster.qos_settings())

#: A duration: text such as "50ms" or "1.5s", a timedelta, or a number of seconds.
Duration = Union[str, datetime.timedelta, float, int]
#: A node: a Node, its name, or its index.
NodeRef = Union["Node", str, int]


# --- value conversion -------------------------------------------------------------------------


def _decimal(x: float) -> str:
    """A number as plain decimal text (no exponent), e.g. 0.05 -> "0.05"."""
    text = format(x, ".9f").rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _duration(key: str, value: Any) -> str:
    """A duration value as the core reads it: "50ms" stays, 0.05 and timedelta become "0.05s"."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime.timedelta):
        return _decimal(value / datetime.timedelta(microseconds=1) / 1e6) + "s"
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return _decimal(float(value)) + "s"
    raise InvalidError(f"invalid {key}: {value!r} (use text like '50ms', a datetime.timedelta, or seconds as a number)")


def _offset(key: str, value: Any) -> str:
    """A signed clock offset: "+1h"/"-30s" stay, timedelta and seconds become "+3600s"/"-30s"."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime.timedelta):
        seconds = value / datetime.timedelta(microseconds=1) / 1e6
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise InvalidError(
            f"invalid clock {key}: {value!r} (use text like '+1h' or '-30s', a datetime.timedelta, or seconds as a number)"
        )
    return ("-" if seconds < 0 else "+") + _decimal(abs(seconds)) + "s"


def _percent(key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return _decimal(float(value)) + "%"
    raise InvalidError(f"invalid qos {key}: {value!r} (use text like '1%' or a number meaning percent)")


def _count(key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    raise InvalidError(f"invalid qos {key}: {value!r} (use a whole number of packets)")


def _rate(key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return f"{int(value)}bit"
    raise InvalidError(f"invalid qos {key}: {value!r} (use text like '10mbit' or an int of bits per second)")


def _qos_settings(settings: Mapping[str, Any]) -> Dict[str, str]:
    """QoS settings as text, by kind of key; unknown keys are left to the core to reject."""
    out = {}
    for key, value in settings.items():
        if value is None:
            continue
        if key in ("delay", "jitter"):
            out[key] = _duration(key, value)
        elif key == "rate":
            out[key] = _rate(key, value)
        elif key in ("gap", "limit"):
            out[key] = _count(key, value)
        elif key == "distribution":
            out[key] = value if isinstance(value, str) else str(value)
        elif key in QOS_SETTINGS:
            out[key] = _percent(key, value)
        else:
            out[key] = str(value)
    return out


def _key(node: NodeRef) -> str:
    """How the core names a node: its name, or its index as text."""
    if isinstance(node, Node):
        return str(node.index)
    if isinstance(node, bool):
        raise InvalidError(f"invalid node: {node!r} (give a Node, a name or an index)")
    if isinstance(node, numbers.Integral):
        return str(int(node))
    if isinstance(node, str):
        return node
    raise InvalidError(f"invalid node: {node!r} (give a Node, a name or an index)")


# --- results ----------------------------------------------------------------------------------


class ClockReport(Dict[str, Any]):
    """What a clock change means for a node's services (a dict with attribute access).

    - ``restart_needed``: services that were running, and keep the old clocks until restarted.
    - ``wall_clock_unchanged``: ``(service, reason)`` pairs for programs whose wall clock
      libfaketime cannot shift (Go programs such as Tendermint, static binaries).
    - ``restarted``: services restarted because ``restart=True`` was given.
    """

    @property
    def restart_needed(self) -> List[str]:
        """Services that keep the old clocks until restarted."""
        return list(self["restart_needed"])

    @property
    def wall_clock_unchanged(self) -> List[Tuple[str, str]]:
        """(service, reason) for programs whose wall clock libfaketime cannot shift."""
        return [tuple(pair) for pair in self["wall_clock_unchanged"]]

    @property
    def restarted(self) -> List[str]:
        """Services restarted by ``restart=True``."""
        return list(self["restarted"])


# --- services and nodes -----------------------------------------------------------------------


class Service:
    """One service on one node. Get it with :meth:`Node.service`.

    Every operation is safe in any state: ``start`` on a running or paused service, ``stop``
    and ``kill`` on a stopped one, and ``resume`` on one that is not paused do nothing;
    ``pause`` on a stopped service raises :class:`StateError`.
    """

    def __init__(self, node: "Node", name: str):
        self._node = node
        self.name = name

    @property
    def node(self) -> "Node":
        """The node the service runs on."""
        return self._node

    def _op(self, op: str) -> None:
        self._node._cluster().service_op(self._node._key, self.name, op)

    def start(self) -> None:
        """Starts the service and waits until its readiness probe passes. A no-op if it runs
        (or is paused). Services bound to it (Tendermint to BigchainDB) restart with it."""
        self._op("start")

    def stop(self) -> None:
        """SIGTERM to its process group, then SIGKILL to its whole tree after its grace period.
        A no-op if it is stopped."""
        self._op("stop")

    def kill(self) -> None:
        """SIGKILL to its whole process tree at once. A no-op if it is stopped."""
        self._op("kill")

    def pause(self) -> None:
        """Freezes its processes (SIGSTOP). A no-op if paused; StateError if stopped."""
        self._op("pause")

    def resume(self) -> None:
        """Lets a paused service run again (SIGCONT). A no-op if it is not paused."""
        self._op("resume")

    def restart(self) -> None:
        """Stops the service if it runs, then starts it (and waits until it is ready)."""
        self._op("restart")

    def reset(self) -> None:
        """Resets its state (its reset command, or wiping its data directory). A running
        service is stopped first and started again after; a stopped one stays stopped."""
        self._op("reset")

    @property
    def state(self) -> str:
        """``running``, ``paused``, ``stopped``, ``exited(N)`` or ``killed(SIGNAL)``."""
        return self._node._cluster().service_state(self._node._key, self.name)

    @property
    def running(self) -> bool:
        """Whether it runs (paused counts as running: its processes exist)."""
        return self.state in ("running", "paused")

    @property
    def pid(self) -> Optional[int]:
        """The main process's pid while it runs or is paused, else None."""
        return self._node._cluster().service_pid(self._node._key, self.name)

    @property
    def stdout_log(self) -> str:
        """The file that receives its standard output (kept after teardown)."""
        return fspath(self._node._cluster().service_logs(self._node._key, self.name)[0])

    @property
    def stderr_log(self) -> str:
        """The file that receives its standard error (kept after teardown)."""
        return fspath(self._node._cluster().service_logs(self._node._key, self.name)[1])

    @property
    def data_dir(self) -> str:
        """Its data directory, wiped by :meth:`reset`."""
        return fspath(self._node._cluster().service_data_dir(self._node._key, self.name))

    def configure(self, settings: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> None:
        """Merges settings into its configuration file; see :meth:`Node.configure`."""
        self._node.configure(self.name, settings, **kwargs)

    def __repr__(self) -> str:
        try:
            state = self.state
        except NetdriverError:
            state = "gone"
        return f"<Service {self._node.name}/{self.name} {state}>"


class Node:
    """One node of a started :class:`Network`: its address, services, and commands run in it.

    Node operations apply to every service of the node in dependency order (reversed to
    stop), each a no-op where the service already is in that state: ``start`` on a running
    node and ``stop`` on a stopped one do nothing. A Node belongs to one start of its network:
    once the network is stopped, its methods raise :class:`StateError`.
    """

    def __init__(self, network: "Network", info: Mapping[str, Any]):
        self._network = network
        self._run_id = network.id
        #: The node's name, e.g. ``node0``; also its hostname, resolvable from every node.
        self.name: str = info["name"]
        #: Its index in the network, from 0.
        self.index: int = info["index"]
        #: Its IPv4 address, reachable from the host.
        self.ip: str = info["ip"]
        #: The URL of its main service (the profile's; e.g. BigchainDB's ``/api/v1/``), or None.
        self.url: Optional[str] = info["url"]
        #: Its directory in the run directory: logs and data of its services.
        self.dir: str = fspath(info["dir"])
        self._key = str(self.index)

    def _cluster(self) -> "_netdriver.Cluster":
        cluster = self._network._cluster
        if self._network.id != self._run_id or not cluster.started:
            raise StateError(
                f"node {self.name} belongs to a network run that was stopped; "
                "call network.start(n) and take the node from network.nodes again"
            )
        return cluster

    def _op(self, op: str, service: Optional[str] = None) -> None:
        self._cluster().service_op(self._key, service, op)

    # Whole node.

    def start(self) -> None:
        """Starts every service in dependency order, each waiting until it is ready. Running
        services are left alone."""
        self._op("start")

    def stop(self) -> None:
        """Stops every service in reverse dependency order. Stopped ones are left alone."""
        self._op("stop")

    def restart(self) -> None:
        """Stops the node's services, then starts them."""
        self._op("restart")

    def kill(self) -> None:
        """SIGKILLs every service's processes. Stopped services are left alone."""
        self._op("kill")

    def pause(self) -> None:
        """Freezes every service (SIGSTOP). StateError if one of them is stopped."""
        self._op("pause")

    def resume(self) -> None:
        """Resumes every paused service. Others are left alone."""
        self._op("resume")

    def reset(self) -> None:
        """Resets every service's state (running ones are stopped, reset and started again)."""
        self._op("reset")

    # Services.

    @property
    def services(self) -> List[Service]:
        """The node's services, in start order."""
        return [Service(self, name) for name in self._cluster().services(self._key)]

    def service(self, name: str) -> Service:
        """The service ``name``; UnknownServiceError (naming the services there are) if none."""
        self._cluster().service_state(self._key, name)  # raises UnknownServiceError
        return Service(self, name)

    def start_service(self, name: str) -> None:
        """Starts one service (a no-op if it runs); the services bound to it restart."""
        self._op("start", name)

    def stop_service(self, name: str) -> None:
        """Stops one service (a no-op if it is stopped)."""
        self._op("stop", name)

    def reset_service(self, name: str) -> None:
        """Resets one service's state (see :meth:`Service.reset`)."""
        self._op("reset", name)

    def configure(self, service: str, settings: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> None:
        """Merges settings into the configuration file of ``service`` on this node (TOML or
        JSON, as the service has it). Give nested dicts (``consensus={"timeout_commit": "1s"}``)
        or dotted keys (``**{"consensus.timeout_commit": "1s"}``); None removes a key. Applies
        when the service next starts: restart it to apply it now. Services of a manifest have
        no configuration file netdriver knows (InvalidError)."""
        merged: Dict[str, Any] = dict(settings or {})
        merged.update(kwargs)
        try:
            text = json.dumps(merged, default=_json_default)
        except TypeError as e:
            raise InvalidError(f"invalid settings: {e}") from None
        self._cluster().configure(self._key, service, text)

    # Commands.

    def exec(self, *argv: Any, check: bool = False, text: bool = False) -> "subprocess.CompletedProcess[Any]":
        """Runs a command inside the node (its namespaces, hosts file, /tmp and clock) to
        completion and returns a :class:`subprocess.CompletedProcess` with its output
        (bytes, or str with ``text=True``). ``node.exec("ls", "-l")`` or
        ``node.exec(["ls", "-l"])``. With ``check=True`` a non-zero exit raises
        :class:`subprocess.CalledProcessError`."""
        if len(argv) == 1 and isinstance(argv[0], (list, tuple)):
            argv = tuple(argv[0])
        args = [fspath(a) if isinstance(a, PathLike) else str(a) for a in argv]
        code, out, err = self._cluster().exec(self._key, args)
        result: "subprocess.CompletedProcess[Any]" = subprocess.CompletedProcess(args, code, out, err)
        if text:
            result.stdout, result.stderr = out.decode(errors="replace"), err.decode(errors="replace")
        if check:
            result.check_returncode()
        return result

    # Clocks and links.

    def configure_clock(
        self,
        offset: Optional[Duration] = None,
        *,
        realtime: Optional[Duration] = None,
        monotonic: Optional[Duration] = None,
        boottime: Optional[Duration] = None,
        tz: Optional[str] = None,
        restart: bool = False,
    ) -> ClockReport:
        """Shifts the node's clocks for processes started from now on. ``offset`` moves every
        clock; ``realtime``, ``monotonic`` and ``boottime`` override it one by one. Offsets are
        text ("+1h", "-30s"), timedelta, or seconds (negative: behind). ``tz`` sets the time
        zone ("Asia/Tokyo"). Running services keep their clocks until restarted; with
        ``restart=True`` they are restarted now. With no arguments the clocks go back to the
        host's. Returns a :class:`ClockReport`."""
        settings = {}
        for key, value in (("offset", offset), ("realtime", realtime), ("monotonic", monotonic), ("boottime", boottime)):
            if value is not None:
                settings[key] = _offset(key, value)
        if tz is not None:
            settings["tz"] = tz
        return ClockReport(self._cluster().configure_clock(self._key, settings, restart))

    def configure_qos(
        self, direction: str = "both", *, to: Optional[NodeRef] = None, both_ways: bool = False, **settings: Any
    ) -> None:
        """Shapes the node's links. Without ``to``: what it sends, receives, or both
        (``direction``); with ``to``: what it sends to that node (and back too if
        ``both_ways``). Settings (see :data:`QOS_SETTINGS`): ``delay``/``jitter`` as text
        ("50ms"), timedelta or seconds; ``loss``, ``duplicate``, ``corrupt``, ``reorder`` and
        the correlations as text ("1%") or numbers meaning percent; ``rate`` as text
        ("10mbit") or int bits/s; ``distribution`` ("normal"...); ``gap``, ``limit`` as ints.
        A call replaces that direction's (or pair's) settings; no settings clear them. Needs
        the kernel's sch_netem (KernelFeatureError otherwise)."""
        cluster = self._cluster()
        target = None if to is None else _key(to)
        cluster.configure_qos(self._key, _qos_settings(settings), direction, target, both_ways)

    configure_QoS = configure_qos

    def clear_qos(self) -> None:
        """Removes this node's own shaping (both directions); pair settings stay."""
        self._cluster().clear_qos(self._key)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.ip}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and other._network is self._network and other._run_id == self._run_id and other.index == self.index

    def __hash__(self) -> int:
        return hash((id(self._network), self._run_id, self.index))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.timedelta):
        return _duration("setting", value)
    if isinstance(value, PathLike):
        return fspath(value)
    raise TypeError(f"{value!r} is not a JSON value")


class TendermintNode(Node):
    """A node running Tendermint (the ``kvstore`` and ``bigchaindb`` profiles)."""

    TENDERMINT = "tendermint"

    def start_tendermint(self) -> None:
        """Starts Tendermint and waits until its RPC answers. A no-op if it runs."""
        self._op("start", self.TENDERMINT)

    def stop_tendermint(self) -> None:
        """Stops Tendermint. A no-op if it is stopped."""
        self._op("stop", self.TENDERMINT)

    def reset_tendermint(self) -> None:
        """Resets Tendermint's chain state (``unsafe_reset_all``), keeping keys and
        configuration; restarts it if it ran. With BigchainDB, reset the database too."""
        self._op("reset", self.TENDERMINT)

    def configure_tendermint(self, settings: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> None:
        """Merges settings into Tendermint's config.toml (``**{"consensus.timeout_commit":
        "500ms"}``); applies at its next start."""
        self.configure(self.TENDERMINT, settings, **kwargs)

    @property
    def tendermint(self) -> Service:
        """The Tendermint service."""
        return Service(self, self.TENDERMINT)


class BigchainDBNode(TendermintNode):
    """A node of the ``bigchaindb`` profile: database, BigchainDB server and Tendermint,
    started in that order. ``url`` is the HTTP API root (``http://IP:9984/api/v1/``).
    Tendermint restarts whenever BigchainDB starts again."""

    DB = "db"
    BIGCHAINDB = "bigchaindb"

    def start_db(self) -> None:
        """Starts the database. A no-op if it runs."""
        self._op("start", self.DB)

    def stop_db(self) -> None:
        """Stops the database. A no-op if it is stopped."""
        self._op("stop", self.DB)

    def reset_db(self) -> None:
        """Wipes the database (stopping and restarting it if it runs)."""
        self._op("reset", self.DB)

    def start_bigchaindb(self) -> None:
        """Starts BigchainDB and waits until its API answers (restarting Tendermint if it
        runs). A no-op if it runs."""
        self._op("start", self.BIGCHAINDB)

    def stop_bigchaindb(self) -> None:
        """Stops BigchainDB. A no-op if it is stopped."""
        self._op("stop", self.BIGCHAINDB)

    def configure_bigchaindb(self, settings: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> None:
        """Merges settings into BigchainDB's configuration (``server={"workers": 4}``); applies
        at its next start."""
        self.configure(self.BIGCHAINDB, settings, **kwargs)

    @property
    def db(self) -> Service:
        """The database service."""
        return Service(self, self.DB)

    @property
    def bigchaindb(self) -> Service:
        """The BigchainDB service."""
        return Service(self, self.BIGCHAINDB)


_NODE_CLASSES: Dict[str, Type[Node]] = {"bigchaindb": BigchainDBNode, "kvstore": TendermintNode, "manifest": Node}


# --- networks ---------------------------------------------------------------------------------

_live_networks: "weakref.WeakSet[Network]" = weakref.WeakSet()
_live_lock = threading.Lock()


@atexit.register
def _stop_all() -> None:
    """Tears down the networks still up when Python exits."""
    with _live_lock:
        networks = list(_live_networks)
    for network in networks:
        try:
            network.stop()
        except Exception:
            pass


class Network:
    """A network of nodes of one profile. Made stopped; :meth:`start` brings it up.

    ``profile`` is ``"bigchaindb"`` (the default) or ``"kvstore"``; ``manifest`` a TOML
    manifest's path instead. ``binaries`` maps programs (tendermint, bigchaindb, mongod,
    ferretdb) to paths; otherwise they are looked up on PATH and in /opt/netdriver.
    The programs are located here, so a missing one raises MissingBinaryError at once.
    ``name`` names the network (1-32 letters, digits, '-' or '_'); ``run_root`` is where run
    directories go (default /var/tmp/netdriver); ``keep_data`` keeps the services' data
    directories after teardown.

    Used as a context manager, the network is stopped on exit::

        with Network(profile="kvstore").start(4) as network:
            ...
    """

    def __init__(
        self,
        profile: Optional[str] = "bigchaindb",
        *,
        manifest: Optional[Union[str, "PathLike[str]"]] = None,
        name: Optional[str] = None,
        binaries: Optional[Mapping[str, Union[str, "PathLike[str]"]]] = None,
        run_root: Optional[Union[str, "PathLike[str]"]] = None,
        keep_data: bool = False,
        node_class: Optional[Type[Node]] = None,
    ):
        self._cluster = _netdriver.Cluster(
            profile=None if manifest is not None else (profile or "bigchaindb"),
            manifest=None if manifest is None else fspath(manifest),
            name=name,
            binaries=None if binaries is None else {k: fspath(v) for k, v in binaries.items()},
            run_root=None if run_root is None else fspath(run_root),
            keep_data=keep_data,
        )
        self._node_class = node_class or _NODE_CLASSES.get(self._cluster.profile, Node)
        self._nodes: Optional[List[Node]] = None
        self._nodes_id: Optional[str] = None
        #: Every run directory this network has had (one per start), oldest first.
        self.run_dirs: List[str] = []

    # Life.

    def start(self, n: int) -> "Network":
        """Brings up ``n`` nodes, prepares them (keys, genesis, configuration) and starts every
        service, level by level, waiting until each is ready. Returns the network. If
        anything fails, what was made is torn down and the error raised (its logs stay in
        :attr:`run_dir`). StateError if the network is already started."""
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise InvalidError(f"invalid nodes: {n!r} (give a number of nodes, at least 1)")
        with _live_lock:
            _live_networks.add(self)
        try:
            self._cluster.start(int(n))
        finally:
            run_dir = self._cluster.run_dir
            if run_dir is not None and fspath(run_dir) not in self.run_dirs:
                self.run_dirs.append(fspath(run_dir))
        return self

    def stop(self) -> None:
        """Stops every service and tears everything down (namespaces, links, processes); the
        logs stay in :attr:`run_dir`. A no-op when the network is not started."""
        try:
            self._cluster.stop()
        finally:
            self._nodes = None
            with _live_lock:
                _live_networks.discard(self)

    @property
    def started(self) -> bool:
        """Whether the network is up."""
        return self._cluster.started

    def __enter__(self) -> "Network":
        """The network itself (started or not)."""
        return self

    def __exit__(self, *exc: Any) -> None:
        """Stops the network, whatever happened in the block."""
        self.stop()

    # What it is.

    @property
    def profile(self) -> str:
        """``bigchaindb``, ``kvstore`` or ``manifest``."""
        return self._cluster.profile

    @property
    def name(self) -> str:
        """The network's name."""
        return self._cluster.name

    @property
    def id(self) -> Optional[str]:
        """The run id (part of every name the run makes); the last run's once stopped."""
        return self._cluster.id

    @property
    def run_dir(self) -> Optional[str]:
        """The run directory, with each node's service logs
        (``<node>/<service>/{stdout,stderr}.log``); the last run's once stopped (logs stay),
        None before the first start."""
        run_dir = self._cluster.run_dir
        return None if run_dir is None else fspath(run_dir)

    @property
    def subnet(self) -> str:
        """The nodes' subnet, e.g. ``10.200.0.0/24``."""
        return self._cluster.subnet

    @property
    def host_ip(self) -> str:
        """The host's address on the network."""
        return self._cluster.host_ip

    # Nodes.

    @property
    def nodes(self) -> List[Node]:
        """The nodes, in index order (StateError before :meth:`start`)."""
        run_id = self.id
        if self._nodes is None or self._nodes_id != run_id or not self._cluster.started:
            infos = self._cluster.nodes()  # StateError when not started
            self._nodes = [self._node_class(self, info) for info in infos]
            self._nodes_id = run_id
        return list(self._nodes)

    def node(self, node: NodeRef) -> Node:
        """The node with this name or index (UnknownNodeError naming the nodes otherwise)."""
        index = self._cluster.node(_key(node))["index"]
        return self.nodes[index]

    def __iter__(self) -> Iterator[Node]:
        """Iterates over :attr:`nodes`."""
        return iter(self.nodes)

    def __getitem__(self, node: Union[str, int]) -> Node:
        """``network[0]``, ``network["node0"]``: :meth:`node`."""
        return self.node(node)

    # Links.

    def partition(self, *groups: Union[NodeRef, Iterable[NodeRef]]) -> None:
        """Splits the network into groups (each a list of nodes, names or indexes; a single
        node may stand alone) that cannot reach each other, both ways; nodes in no group form
        one more group. Replaces earlier partitions and blocks. ``partition([0, 1], [2, 3])``."""
        normalized = []
        for group in groups:
            if isinstance(group, (Node, str, int, numbers.Integral)):
                normalized.append([_key(group)])
            else:
                normalized.append([_key(member) for member in group])
        self._cluster.partition(normalized)

    def block(self, a: NodeRef, b: NodeRef) -> None:
        """Drops every packet ``a`` sends to ``b`` (one way), in addition to current cuts."""
        self._cluster.block(_key(a), _key(b))

    def heal(self) -> None:
        """Removes every partition and block."""
        self._cluster.heal()

    @property
    def cuts(self) -> List[Tuple[str, str]]:
        """The (from, to) node names whose traffic is dropped."""
        return self._cluster.cuts()

    def configure_qos(
        self, a: NodeRef, b: Optional[NodeRef] = None, *, to: Optional[NodeRef] = None, both_ways: bool = False,
        direction: str = "both", **settings: Any
    ) -> None:
        """Shapes links. ``configure_qos(a, b, delay="50ms")`` or ``configure_qos(a, to=b)``:
        what ``a`` sends to ``b`` (and back too with ``both_ways=True``);
        ``configure_qos(a, direction="send", ...)``: all of ``a``'s traffic in that direction.
        Settings as for :meth:`Node.configure_qos`."""
        if b is not None and to is not None:
            raise InvalidError("invalid qos: give the other node once, as b or as to=")
        target = b if b is not None else to
        cluster = self._cluster
        cluster.configure_qos(_key(a), _qos_settings(settings), direction, None if target is None else _key(target), both_ways)

    configure_QoS = configure_qos

    def clear_qos(self, node: Optional[NodeRef] = None) -> None:
        """Removes every shaping of the network (all links plain again), or only ``node``'s own."""
        self._cluster.clear_qos(None if node is None else _key(node))

    def __repr__(self) -> str:
        if self._cluster.started:
            return f"<Network {self.name} ({self.profile}) id={self.id} nodes={len(self.nodes)} subnet={self.subnet} run_dir={self.run_dir}>"
        return f"<Network {self.name} ({self.profile}) stopped>"
