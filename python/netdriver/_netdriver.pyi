"""Type stubs of netdriver._netdriver, the extension module over the netdriver Rust library.

Nodes are named by name or by index as a string ("0"). Every blocking call releases the GIL.
"""

from pathlib import Path
from typing import Dict, List, NoReturn, Optional, Tuple, TypedDict, final

__all__ = [
    "Network",
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
    "__version__",
]

__version__: str

class NetdriverError(Exception):
    """Base class of every netdriver error; the message names the cause and the fix."""

class PrivilegeError(NetdriverError):
    """The process lacks a capability (run as root)."""

class KernelFeatureError(NetdriverError):
    """A kernel feature netdriver needs is missing (e.g. sch_netem for link shaping)."""

class CapacityError(NetdriverError):
    """The host cannot hold a network of this size."""

class MissingBinaryError(NetdriverError):
    """A service's program cannot be found."""

class ManifestError(NetdriverError):
    """The manifest cannot be read or is invalid (the message has file:line:column)."""

class InvalidError(NetdriverError):
    """A value is invalid (the message names it and what is allowed)."""

class UnknownNodeError(NetdriverError):
    """No node has this name or index."""

class UnknownServiceError(NetdriverError):
    """The node has no service of this name."""

class DuplicateNameError(NetdriverError):
    """Two nodes or two services share a name."""

class SubnetError(NetdriverError):
    """No free subnet, or the one asked for is taken."""

class ServiceFailedError(NetdriverError):
    """A service did not become ready, or exited while starting (the message has its log's tail)."""

class StateError(NetdriverError):
    """An operation that makes no sense in the current state (e.g. before start)."""

class NoNetworkError(NetdriverError):
    """No network is reachable."""

class CancelledError(NetdriverError):
    """A wait was cancelled (a signal, or another thread)."""

class NetlinkError(NetdriverError):
    """A netlink request failed."""

class NetdriverIOError(NetdriverError):
    """A system call or file operation failed."""

class _NodeInfo(TypedDict):
    name: str
    index: int
    ip: str
    ip6: Optional[str]
    url: Optional[str]
    dir: Path

class _ClockReport(TypedDict):
    restart_needed: List[str]
    unreached: List[Tuple[str, str]]
    restarted: List[str]

@final
def _supervise() -> NoReturn: ...
def read_events(run_dir: str) -> List[str]:
    """The JSON lines of the timeline in run_dir (events.jsonl)."""
def write_timeline(run_dir: str, out: str) -> None:
    """Writes the picture of the run in run_dir (an HTML page with an SVG) to out."""

class Network:
    """A network of one profile: brought up by start(n), torn down by stop()."""

    def __new__(
        cls,
        profile: Optional[str] = "bigchaindb",
        manifest: Optional[str] = None,
        name: Optional[str] = None,
        binaries: Optional[Dict[str, str]] = None,
        run_root: Optional[str] = None,
        keep_data: bool = False,
        ipv6: bool = False,
    ) -> "Network":
        """Locates the profile's programs (a missing one raises MissingBinaryError), or
        reads the manifest when `manifest` is given (then `profile` is ignored)."""
    def start(self, nodes: int) -> None:
        """Brings up the nodes and starts every service; a failure tears down and raises.
        StateError if already started."""
    def stop(self) -> None:
        """Tears everything down (logs stay in run_dir). A no-op when not started."""
    @property
    def started(self) -> bool: ...
    @property
    def profile(self) -> str:
        """bigchaindb, kvstore or manifest."""
    @property
    def name(self) -> str:
        """The name given, else the manifest's, else the profile's."""
    @property
    def id(self) -> Optional[str]:
        """The live run's id, or the last one's; None before the first start."""
    @property
    def run_dir(self) -> Optional[Path]:
        """The live run's directory, or the last one's (logs kept); None before the first start."""
    @property
    def subnet(self) -> str: ...
    @property
    def host_ip(self) -> str: ...
    @property
    def subnet6(self) -> Optional[str]: ...
    @property
    def host_ip6(self) -> Optional[str]: ...
    def nodes(self) -> List[_NodeInfo]: ...
    def node(self, node: str) -> _NodeInfo: ...
    def services(self, node: str) -> List[str]: ...
    def service_state(self, node: str, service: str) -> str:
        """running, paused, stopped, exited(N) or killed(SIG)."""
    def service_pid(self, node: str, service: str) -> Optional[int]: ...
    def service_logs(self, node: str, service: str) -> Tuple[Path, Path]:
        """(stdout log, stderr log)."""
    def service_data_dir(self, node: str, service: str) -> Path: ...
    def service_op(self, node: str, service: Optional[str], op: str) -> None:
        """op: start, stop, kill, pause, resume, restart, reset; service None: the whole node."""
    def configure(self, node: str, service: str, settings: str) -> None:
        """Merges a JSON object of settings into the service's configuration file."""
    def configure_clock(self, node: str, settings: Dict[str, str], restart: bool = False) -> _ClockReport:
        """Keys: offset, realtime, monotonic, boottime (signed durations), tz."""
    def configure_qos(
        self,
        node: str,
        settings: Dict[str, str],
        direction: str = "both",
        to: Optional[str] = None,
        both_ways: bool = False,
    ) -> None:
        """Keys: qos_settings(); direction: send, receive, both; with `to`: one pair."""
    @staticmethod
    def qos_settings() -> List[str]: ...
    def clear_qos(self, node: Optional[str] = None) -> None: ...
    def partition(self, groups: List[List[str]]) -> None: ...
    def block(self, a: str, b: str) -> None: ...
    def heal(self) -> None: ...
    def wait_converged(self, timeout: str) -> Tuple[int, str, str]: ...
    def nemesis_plan(self, spec: Optional[str] = None) -> str: ...
    def nemesis_start(self, spec: Optional[str] = None) -> "Nemesis": ...
    def cuts(self) -> List[Tuple[List[str], List[str]]]: ...
    def is_cut(self, a: str, b: str) -> bool: ...
    def exec(self, node: str, argv: List[str]) -> Tuple[int, bytes, bytes]:
        """(returncode, stdout, stderr); -N when signal N ended it."""

class Nemesis:
    """A fault schedule running on a network; plan and history as JSON text."""

    def plan(self) -> str: ...
    def history(self) -> str: ...
    def finished(self) -> bool: ...
    def stop(self) -> str: ...
    def wait(self) -> str: ...
