"""netdriver: networks of Linux-namespace nodes for integration tests.

Each node is a set of namespaces (network, mount, UTS) joined to a router, with its own
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

import json
import os
import sys

from . import _netdriver
from ._convert import QOS_SETTINGS
from ._netdriver import (
    CancelledError,
    CapacityError,
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
from ._events import format_event, read_events, write_timeline
from ._nemesis import Nemesis
from ._network import Network
from ._node import BigchainDBNode, ClockReport, Node, Service, TendermintNode

__version__ = _netdriver.__version__

# Networks brought up from here get this interpreter as their clock supervisor (the netdriver
# program need not be installed); a NETDRIVER_SUPERVISOR of the caller's own wins.
os.environ.setdefault("NETDRIVER_SUPERVISOR", json.dumps([sys.executable, "-m", "netdriver._supervise"]))

__all__ = [
    "Network",
    "Nemesis",
    "read_events",
    "write_timeline",
    "format_event",
    "Node",
    "Service",
    "TendermintNode",
    "BigchainDBNode",
    "ClockReport",
    "QOS_SETTINGS",
    "NetdriverError",
    "PrivilegeError",
    "KernelFeatureError",
    "CapacityError",
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
    "CancelledError",
    "NetlinkError",
    "NetdriverIOError",
]
