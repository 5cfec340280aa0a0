"""Networks: made stopped, brought up by start(n), torn down by stop()."""

import atexit
import numbers
import threading
import weakref
from os import PathLike, fspath
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Type, Union

from . import _netdriver
from ._convert import _qos_settings
from ._events import read_events
from ._nemesis import Nemesis, duration_text, spec_json
from ._netdriver import InvalidError
from ._node import NODE_CLASSES, Node, NodeRef, _key

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
    directories after teardown; ``ipv6`` makes the network dual stack (each node also gets an
    IPv6 address, :attr:`Node.ip6`, as a manifest's ``ipv6 = true`` does).

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
        ipv6: bool = False,
        node_class: Optional[Type[Node]] = None,
    ):
        self._net = _netdriver.Network(
            profile=None if manifest is not None else (profile or "bigchaindb"),
            manifest=None if manifest is None else fspath(manifest),
            name=name,
            binaries=None if binaries is None else {k: fspath(v) for k, v in binaries.items()},
            run_root=None if run_root is None else fspath(run_root),
            keep_data=keep_data,
            ipv6=ipv6,
        )
        self._node_class = node_class or NODE_CLASSES.get(self._net.profile, Node)
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
            self._net.start(int(n))
        finally:
            run_dir = self._net.run_dir
            if run_dir is not None and fspath(run_dir) not in self.run_dirs:
                self.run_dirs.append(fspath(run_dir))
        return self

    def stop(self) -> None:
        """Stops every service and tears everything down (namespaces, links, processes); the
        logs stay in :attr:`run_dir`. A no-op when the network is not started."""
        try:
            self._net.stop()
        finally:
            self._nodes = None
            with _live_lock:
                _live_networks.discard(self)

    @property
    def started(self) -> bool:
        """Whether the network is up."""
        return self._net.started

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
        return self._net.profile

    @property
    def name(self) -> str:
        """The network's name."""
        return self._net.name

    @property
    def id(self) -> Optional[str]:
        """The run id (part of every name the run makes); the last run's once stopped."""
        return self._net.id

    def events(self) -> List[Dict[str, Any]]:
        """The run's timeline (``<run_dir>/events.jsonl``, kept after teardown): every change
        made on the network, by whom (``by``: python, cli, nemesis, library, or network for
        what it noticed), and every service state change, as dicts with ``t`` (seconds since
        the bring-up began), ``wall``, ``kind``, ``node``, ``service`` and ``details``. The
        last run's once stopped; empty before the first start."""
        return read_events(self.run_dir) if self.run_dir is not None else []

    @property
    def run_dir(self) -> Optional[str]:
        """The run directory, with each node's service logs
        (``<node>/<service>/{stdout,stderr}.log``); the last run's once stopped (logs stay),
        None before the first start."""
        run_dir = self._net.run_dir
        return None if run_dir is None else fspath(run_dir)

    @property
    def subnet(self) -> str:
        """The nodes' subnet, e.g. ``10.200.0.0/24``."""
        return self._net.subnet

    @property
    def host_ip(self) -> str:
        """The host's address on the network."""
        return self._net.host_ip

    @property
    def subnet6(self) -> Optional[str]:
        """The nodes' IPv6 prefix, e.g. ``fd3c:1a2b:9f00::/64``; None without IPv6."""
        return self._net.subnet6

    @property
    def host_ip6(self) -> Optional[str]:
        """The host's IPv6 address on the network; None without IPv6."""
        return self._net.host_ip6

    # Nodes.

    @property
    def nodes(self) -> List[Node]:
        """The nodes, in index order (StateError before :meth:`start`)."""
        run_id = self.id
        if self._nodes is None or self._nodes_id != run_id or not self._net.started:
            infos = self._net.nodes()  # StateError when not started
            self._nodes = [self._node_class(self, info) for info in infos]
            self._nodes_id = run_id
        return list(self._nodes)

    def node(self, node: NodeRef) -> Node:
        """The node with this name or index (UnknownNodeError naming the nodes otherwise)."""
        index = self._net.node(_key(node))["index"]
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
        self._net.partition(normalized)

    def block(self, a: NodeRef, b: NodeRef) -> None:
        """Drops every packet ``a`` sends to ``b`` (one way), in addition to current cuts."""
        self._net.block(_key(a), _key(b))

    def heal(self) -> None:
        """Removes every partition and block."""
        self._net.heal()

    def nemesis(
        self,
        seed: Optional[int] = None,
        faults: Optional[Iterable[str]] = None,
        interval: Any = ("2s", "5s"),
        hold: Any = ("1s", "3s"),
        length: Any = "60s",
        services: Optional[Iterable[str]] = None,
        kill_services: Optional[Iterable[str]] = None,
    ) -> Nemesis:
        """A seeded fault schedule, as a context manager (see :class:`Nemesis`)::

            with network.nemesis(seed=7, faults=["kill", "pause", "partition"],
                                 interval=("2s", "5s"), hold=("1s", "3s"), length="60s") as n:
                ...                     # load, while faults come and go
            n.history                   # what it did; everything is healed

        Fault kinds: kill, pause, stop, partition, block, qos (needs sch_netem), clock.
        ``interval``: between fault starts; ``hold``: how long each lasts (each a duration or a
        (min, max) pair; seconds or text such as "500ms"); ``length``: the whole schedule;
        ``services``: which ones faults may pick; ``kill_services``: which ones kill and stop
        may pick, if fewer (defaults: the profile's; BigchainDB's kill only its db). The same
        seed, nodes and options give the same schedule (``plan``). Without ``seed`` and
        ``faults``, the manifest's ``[nemesis]``. Bad input raises InvalidError before anything is applied;
        a kind the network cannot apply, KernelFeatureError or InvalidError."""

        if seed is None and faults is None:
            spec = None
        elif seed is None or faults is None:
            raise InvalidError("invalid nemesis: give both seed and faults (or neither, for the manifest's [nemesis])")
        else:
            spec = spec_json(seed, faults, interval, hold, length, services, kill_services)
        self._net.nemesis_plan(spec)  # every check up front: a bad schedule raises here, nothing applied
        return Nemesis(self._net, spec)

    def wait_converged(self, timeout: Union[float, str] = 60) -> Dict[str, Any]:
        """Waits until the nodes agree: every node has the block the most advanced one had when
        the wait began, the same one (kvstore and bigchaindb). ``timeout``: seconds, or a
        duration such as ``"90s"``. Returns ``{"height", "block_hash", "app_hash"}``; raises
        StateError naming the nodes behind if they do not agree in time."""
        height, block_hash, app_hash = self._net.wait_converged(duration_text(timeout))
        return {"height": height, "block_hash": block_hash, "app_hash": app_hash}

    @property
    def cuts(self) -> List[Tuple[Tuple[str, ...], Tuple[str, ...]]]:
        """The current cuts, in the order they were made: (senders, receivers) tuples of node
        names; what the senders send the receivers is dropped. A partition into k groups is
        k cuts, each from a group to all the others; a block is one."""
        return [(tuple(senders), tuple(receivers)) for senders, receivers in self._net.cuts()]

    def is_cut(self, a: NodeRef, b: NodeRef) -> bool:
        """Whether what ``a`` sends to ``b`` is dropped."""
        return self._net.is_cut(_key(a), _key(b))

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
        self._net.configure_qos(_key(a), _qos_settings(settings), direction, None if target is None else _key(target), both_ways)

    configure_QoS = configure_qos

    def clear_qos(self, node: Optional[NodeRef] = None) -> None:
        """Removes every shaping of the network (all links plain again), or only ``node``'s own."""
        self._net.clear_qos(None if node is None else _key(node))

    def __repr__(self) -> str:
        if self._net.started:
            return f"<Network {self.name} ({self.profile}) id={self.id} nodes={len(self.nodes)} subnet={self.subnet} run_dir={self.run_dir}>"
        return f"<Network {self.name} ({self.profile}) stopped>"
