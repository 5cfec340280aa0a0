"""Nodes and services of a started network, and the original BigchainDB Node API."""

import json
import numbers
import subprocess
from os import PathLike, fspath
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple, Type, Union

from . import _netdriver
from ._convert import Duration, _json_default, _offset, _qos_settings
from ._netdriver import InvalidError, NetdriverError, StateError

if TYPE_CHECKING:
    from ._network import Network

#: A node: a Node, its name, or its index.
NodeRef = Union["Node", str, int]


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


class ClockReport(Dict[str, Any]):
    """What a clock change means for a node's services (a dict with attribute access).

    - ``restart_needed``: services that were running, and keep the old monotonic or boottime
      clock or time zone until restarted (the wall clock changes under them at once).
    - ``restarted``: services restarted because ``restart=True`` was given.
    - ``unreached``: ``(program, reason)`` pairs for programs of the node that run on the
      host's wall clock because the clock supervisor could not shift them.
    """

    @property
    def restart_needed(self) -> List[str]:
        """Services that keep the old clocks until restarted."""
        return list(self["restart_needed"])

    @property
    def restarted(self) -> List[str]:
        """Services restarted by ``restart=True``."""
        return list(self["restarted"])

    @property
    def unreached(self) -> List[Tuple[str, str]]:
        """(program, reason) for programs of the node that run on the host's wall clock."""
        return [tuple(pair) for pair in self["unreached"]]


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
        self._node._binding().service_op(self._node._key, self.name, op)

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
        return self._node._binding().service_state(self._node._key, self.name)

    @property
    def running(self) -> bool:
        """Whether it runs (paused counts as running: its processes exist)."""
        return self.state in ("running", "paused")

    @property
    def pid(self) -> Optional[int]:
        """The main process's pid while it runs or is paused, else None."""
        return self._node._binding().service_pid(self._node._key, self.name)

    @property
    def stdout_log(self) -> str:
        """The file that receives its standard output (kept after teardown)."""
        return fspath(self._node._binding().service_logs(self._node._key, self.name)[0])

    @property
    def stderr_log(self) -> str:
        """The file that receives its standard error (kept after teardown)."""
        return fspath(self._node._binding().service_logs(self._node._key, self.name)[1])

    @property
    def data_dir(self) -> str:
        """Its data directory, wiped by :meth:`reset`."""
        return fspath(self._node._binding().service_data_dir(self._node._key, self.name))

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
        #: Its IPv6 address in a dual-stack network (``ipv6``), reachable from the host; else None.
        self.ip6: Optional[str] = info["ip6"]
        #: The URL of its main service (the profile's; e.g. BigchainDB's ``/api/v1/``), or None.
        self.url: Optional[str] = info["url"]
        #: Its directory in the run directory: logs and data of its services.
        self.dir: str = fspath(info["dir"])
        self._key = str(self.index)

    def _binding(self) -> "_netdriver.Network":
        net = self._network._net
        if self._network.id != self._run_id or not net.started:
            raise StateError(
                f"node {self.name} belongs to a network run that was stopped; "
                "call network.start(n) and take the node from network.nodes again"
            )
        return net

    def _op(self, op: str, service: Optional[str] = None) -> None:
        self._binding().service_op(self._key, service, op)

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
        return [Service(self, name) for name in self._binding().services(self._key)]

    def service(self, name: str) -> Service:
        """The service ``name``; UnknownServiceError (naming the services there are) if none."""
        self._binding().service_state(self._key, name)  # raises UnknownServiceError
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
        self._binding().configure(self._key, service, text)

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
        code, out, err = self._binding().exec(self._key, args)
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
        drift: Optional[str] = None,
        realtime: Optional[Duration] = None,
        monotonic: Optional[Duration] = None,
        boottime: Optional[Duration] = None,
        tz: Optional[str] = None,
        restart: bool = False,
    ) -> ClockReport:
        """Sets the node's clocks. ``offset`` moves every clock; ``realtime``, ``monotonic``
        and ``boottime`` override it one by one. Offsets are text ("+1h", "-30s"), timedelta,
        or seconds (negative: behind). ``drift`` is the wall clock's pace from now on
        ("+200ppm", "-0.1%"), ``tz`` the time zone ("Asia/Tokyo"). The wall clock changes at
        once for every program of the node, running ones included; the monotonic and boottime
        clocks and the time zone reach programs started from now on, or running services
        restarted with ``restart=True``. With no arguments the clocks go back to the host's.
        Returns a :class:`ClockReport`."""
        settings = {}
        for key, value in (("offset", offset), ("realtime", realtime), ("monotonic", monotonic), ("boottime", boottime)):
            if value is not None:
                settings[key] = _offset(key, value)
        if drift is not None:
            settings["drift"] = str(drift)
        if tz is not None:
            settings["tz"] = tz
        return ClockReport(self._binding().configure_clock(self._key, settings, restart))

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
        target = None if to is None else _key(to)
        self._binding().configure_qos(self._key, _qos_settings(settings), direction, target, both_ways)

    configure_QoS = configure_qos

    def clear_qos(self) -> None:
        """Removes this node's own shaping (both directions); pair settings stay."""
        self._binding().clear_qos(self._key)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.ip}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Node) and other._network is self._network and other._run_id == self._run_id and other.index == self.index

    def __hash__(self) -> int:
        return hash((id(self._network), self._run_id, self.index))


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


NODE_CLASSES: Dict[str, Type[Node]] = {"bigchaindb": BigchainDBNode, "kvstore": TendermintNode, "manifest": Node}
