"""pytest plugin of netdriver (registered through the ``pytest11`` entry point).

The ``network`` fixture gives each test a *stopped* :class:`netdriver.Network`; the test
brings it up with ``network.start(n)``. After the test the network is torn down whatever
happened (a failed assertion, an exception, a start that failed half-way).

Which network: the ``bigchaindb`` profile unless told otherwise, by command line options

- ``--netdriver-profile NAME`` (bigchaindb, kvstore),
- ``--netdriver-manifest PATH`` (a TOML manifest instead of a profile),
- ``--netdriver-binary PROGRAM=PATH`` (repeatable: tendermint, bigchaindb, mongod, ferretdb),

or per test by a marker, which wins::

    @pytest.mark.netdriver(profile="kvstore")
    def test_catch_up(network):
        network.start(4)

(``ipv6=True`` in the marker makes the network dual stack.)

Logs: a run's logs stay in its run directory (``network.run_dir``). After a failed test the
plugin keeps them and adds a "netdriver" section to the report naming the run directory, its
timeline (``events.jsonl``) with its last events, a picture of the run (``timeline.html``,
written then), each service's log files and the last lines
of each stderr log; after a passing test it deletes the
run directory, unless ``--netdriver-keep-logs`` is given.

Under pytest-xdist every worker's networks are named after the worker and the test
(``gw0-test_catch_up``), and each network gets its own subnet, so workers do not collide.
"""

import os
import re
import shutil
from pathlib import Path
from typing import Any, Dict, Generator, Iterator, List, Optional, Set

import pytest

import netdriver

_REPORTS = pytest.StashKey[Dict[str, pytest.TestReport]]()
_NETWORKS = pytest.StashKey[List[netdriver.Network]]()
_REPORTED = pytest.StashKey[Set[str]]()

#: How many of the last events of the timeline a failure report shows.
EVENT_LINES = 20

#: How many lines of each stderr log a failure report shows.
TAIL_LINES = 10


def pytest_addoption(parser: pytest.Parser) -> None:
    """The --netdriver-* options."""
    group = parser.getgroup("netdriver", "netdriver networks (the `network` fixture)")
    group.addoption(
        "--netdriver-profile",
        metavar="NAME",
        default=None,
        help="profile of the `network` fixture: bigchaindb (default) or kvstore",
    )
    group.addoption(
        "--netdriver-manifest",
        metavar="PATH",
        default=None,
        help="a TOML manifest for the `network` fixture, instead of a profile",
    )
    group.addoption(
        "--netdriver-binary",
        metavar="PROGRAM=PATH",
        action="append",
        default=[],
        help="where a profile's program is (tendermint, bigchaindb, mongod, ferretdb); repeatable",
    )
    group.addoption(
        "--netdriver-keep-logs",
        action="store_true",
        default=False,
        help="keep the run directories (logs) of passing tests too",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Registers the ``netdriver`` marker and checks the options."""
    _binaries_option(config.getoption("netdriver_binary"))
    if config.getoption("netdriver_profile") and config.getoption("netdriver_manifest"):
        raise pytest.UsageError("give --netdriver-profile or --netdriver-manifest, not both")
    config.addinivalue_line(
        "markers",
        "netdriver(profile=None, manifest=None, binaries=None, ipv6=False): the network the `network` "
        "fixture gives this test (overrides --netdriver-profile, --netdriver-manifest, --netdriver-binary)",
    )


def _binaries_option(values: List[str]) -> Dict[str, str]:
    binaries = {}
    for value in values:
        program, sep, path = value.partition("=")
        if not sep or not program or not path:
            raise pytest.UsageError(f"--netdriver-binary {value!r}: use PROGRAM=PATH, e.g. tendermint=/opt/netdriver/bin/tendermint")
        binaries[program] = path
    return binaries


_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]+")


def network_name(test_name: str, worker: Optional[str] = None) -> str:
    """A network name for a test, by the core's rule (1-32 letters, digits, '-' and '_'):
    the xdist worker id (if any) and the test's name, with other characters made '_'."""
    test = _NAME_BAD.sub("_", test_name).strip("_") or "test"
    prefix = _NAME_BAD.sub("_", worker) + "-" if worker else ""
    return (prefix + test)[:32]


def _network_args(request: pytest.FixtureRequest) -> Dict[str, Any]:
    config = request.config
    profile = config.getoption("netdriver_profile")
    manifest = config.getoption("netdriver_manifest")
    binaries = _binaries_option(config.getoption("netdriver_binary"))
    marker = request.node.get_closest_marker("netdriver")
    marker_binaries: Dict[str, str] = {}
    ipv6 = bool(marker is not None and marker.kwargs.get("ipv6", False))
    if marker is not None:
        if marker.args:
            raise pytest.UsageError("@pytest.mark.netdriver takes keywords only: profile=, manifest=, binaries=, ipv6=")
        unknown = set(marker.kwargs) - {"profile", "manifest", "binaries", "ipv6"}
        if unknown:
            raise pytest.UsageError(f"@pytest.mark.netdriver: unknown keywords {sorted(unknown)} (known: profile, manifest, binaries, ipv6)")
        if "manifest" in marker.kwargs:
            manifest = marker.kwargs["manifest"]
            if "profile" not in marker.kwargs:
                profile = None
        if "profile" in marker.kwargs:
            profile = marker.kwargs["profile"]
            if "manifest" not in marker.kwargs:
                manifest = None
        marker_binaries = dict(marker.kwargs.get("binaries") or {})
        binaries = {**binaries, **marker_binaries}
    if manifest is not None:
        if profile is not None:
            raise pytest.UsageError("the netdriver network has both a profile and a manifest: give one")
        # A manifest names its programs: --netdriver-binary applies to profiles only (a
        # marker that gives both is told so by Network).
        return {"manifest": manifest, "binaries": marker_binaries or None, "ipv6": ipv6}
    return {"profile": profile or "bigchaindb", "binaries": binaries or None, "ipv6": ipv6}


@pytest.fixture
def network(request: pytest.FixtureRequest) -> Iterator[netdriver.Network]:
    """A stopped netdriver Network (the test calls ``network.start(n)``), torn down after
    the test whatever happens; see :mod:`netdriver.pytest_plugin` for options and logs."""
    name = network_name(request.node.name, os.environ.get("PYTEST_XDIST_WORKER"))
    net = netdriver.Network(name=name, **_network_args(request))
    request.node.stash.setdefault(_NETWORKS, []).append(net)
    failed_teardown = False
    try:
        yield net
    finally:
        try:
            net.stop()
        except Exception:
            failed_teardown = True
            raise
        finally:
            reports = request.node.stash.get(_REPORTS, {})
            passed = not failed_teardown and all(r.passed or r.skipped for r in reports.values())
            if passed and not request.config.getoption("netdriver_keep_logs"):
                for run_dir in net.run_dirs:
                    shutil.rmtree(run_dir, ignore_errors=True)


def _tail(path: Path, lines: int) -> List[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def log_report(run_dir: str, tail: int = TAIL_LINES) -> str:
    """A run directory, each service's log files, and the last lines of each stderr log."""
    root = Path(run_dir)
    out = [f"run directory: {root}"]
    if not root.is_dir():
        out.append("  (gone)")
        return "\n".join(out)
    timeline = root / "events.jsonl"
    if timeline.is_file():
        try:
            events = netdriver.read_events(root)
        except netdriver.NetdriverError as e:
            out.append(f"timeline: {timeline} (unreadable: {e})")
        else:
            shown = events[-EVENT_LINES:]
            out.append(f"timeline: {timeline} ({len(events)} events; `netdriver events {root}`), the last {len(shown)}:")
            out.extend(f"  | {netdriver.format_event(e)}" for e in shown)
            picture = root / "timeline.html"
            try:
                netdriver.write_timeline(root, picture)
                out.append(f"picture of the run: {picture} (open it in a browser)")
            except netdriver.NetdriverError as e:
                out.append(f"picture of the run: not written ({e})")
    for node in sorted((p for p in root.iterdir() if p.is_dir()), key=_natural):
        for service in sorted(p for p in node.iterdir() if p.is_dir() and (p / "stderr.log").exists()):
            out.append(f"{node.name}/{service.name}:")
            out.append(f"  stdout: {service / 'stdout.log'}")
            out.append(f"  stderr: {service / 'stderr.log'}")
            lines = _tail(service / "stderr.log", tail)
            if lines:
                out.append(f"  last {len(lines)} lines of stderr:")
                out.extend(f"  | {line}" for line in lines)
    return "\n".join(out)


def _natural(path: Path) -> Any:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: "pytest.CallInfo[None]") -> Generator[None, Any, None]:
    """Records each phase's report (the fixture deletes logs only if all passed) and adds the
    log section to a failed one."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    if not report.failed:
        return
    networks = item.stash.get(_NETWORKS, [])
    # A failed call or setup: the networks are not torn down yet. A failed teardown: they are;
    # either way the logs are on disk. Report each run directory once per test.
    reported = item.stash.setdefault(_REPORTED, set())
    sections = []
    for net in networks:
        for run_dir in net.run_dirs:
            if run_dir not in reported:
                reported.add(run_dir)
                sections.append(log_report(run_dir))
    if sections:
        report.sections.append(("netdriver logs (kept)", "\n\n".join(sections)))

