"""netdriver's Python API: errors, a manifest network, configuration, teardown, the plugin.

Needs root; the kvstore tests need Tendermint (on PATH or in /opt/netdriver/bin).
"""

import datetime
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import netdriver
from netdriver import Network
from netdriver.pytest_plugin import _REPORTS

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

WEB_MANIFEST = """
[network]
name = "pyapi"
nodes = 2
url = "http://{{ip}}:8000/"

[[service]]
name = "web"
command = "{python}"
args = ["-m", "http.server", "8000", "--bind", "{{ip}}", "--directory", "{{data}}"]
ready = {{ tcp = 8000 }}
ready_timeout = "15s"
stop_timeout = "2s"
"""


@pytest.fixture(autouse=True)
def _remove_logs_of_passing_tests(request, monkeypatch):
    """Networks made in a test that passes leave no run directory behind (the core keeps
    logs after teardown; the `network` fixture does the same for its own network)."""
    made = []
    real_init = Network.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Network, "__init__", init)
    yield
    for network in made:
        network.stop()
    reports = request.node.stash.get(_REPORTS, {})
    if reports and all(r.passed for r in reports.values()):
        for network in made:
            for run_dir in network.run_dirs:
                shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def manifest(tmp_path):
    """A manifest of nodes serving their data directory with `python3 -m http.server`."""
    path = tmp_path / "web.toml"
    path.write_text(WEB_MANIFEST.format(python=sys.executable))
    return path


def fetch(node, url, timeout=5):
    """GET `url` from inside `node` (with the same Python); the CompletedProcess."""
    code = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout={timeout}).read().decode())"
    return node.exec(sys.executable, "-c", code, text=True)


def leftovers(run_id):
    """What is left of a run: its registry record, its uplink, processes carrying its mark."""
    left = []
    for path in (Path(f"/run/netdriver/{run_id}.json"), Path(f"/run/netdriver/{run_id}.sock")):
        if path.exists():
            left.append(str(path))
    if Path(f"/sys/class/net/nd{run_id}").exists():
        left.append(f"link nd{run_id}")
    mark = f"NETDRIVER_RUN={run_id}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if mark in environ.split(b"\0"):
            left.append(f"process {proc.name}")
    return left


# --- errors -----------------------------------------------------------------------------------


def test_exception_classes():
    names = [
        "PrivilegeError", "KernelFeatureError", "MissingBinaryError", "ManifestError", "InvalidError",
        "UnknownNodeError", "UnknownServiceError", "DuplicateNameError", "SubnetError",
        "ServiceFailedError", "StateError", "NoNetworkError", "CancelledError", "NetlinkError", "NetdriverIOError",
    ]
    for name in names:
        cls = getattr(netdriver, name)
        assert issubclass(cls, netdriver.NetdriverError) and cls is not netdriver.NetdriverError, name
        assert cls.__module__ == "netdriver"
    assert issubclass(netdriver.NetdriverError, Exception)


def test_unknown_profile():
    with pytest.raises(netdriver.InvalidError, match=r"unknown profile 'nope'; known: bigchaindb, kvstore"):
        Network(profile="nope")


def test_missing_binary_fails_at_once():
    with pytest.raises(netdriver.MissingBinaryError, match=r"program '/nonexistent' not found.*not an executable"):
        Network(profile="kvstore", binaries={"tendermint": "/nonexistent"})
    with pytest.raises(netdriver.InvalidError, match=r"unknown program 'tendermnt'"):
        Network(profile="kvstore", binaries={"tendermnt": "/nonexistent"})


def test_bad_manifest(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[network]\nname = "x"\nnodes = 2\n\n[[service]]\nname = "s"\ncommand = "true"\nready_timeout = "10 parsecs"\n')
    with pytest.raises(netdriver.ManifestError, match=r"bad\.toml:\d+:\d+: .*ready_timeout"):
        Network(manifest=path)


def test_invalid_name_and_count(manifest):
    with pytest.raises(netdriver.InvalidError, match=r"network name: 'bad name'"):
        Network(manifest=manifest, name="bad name").start(1)
    with pytest.raises(netdriver.InvalidError, match=r"at least 1"):
        Network(manifest=manifest).start(0)


def test_methods_before_start(manifest):
    network = Network(manifest=manifest)
    assert not network.started and network.run_dir is None and network.id is None
    assert "stopped" in repr(network)
    for call in (
        lambda: network.nodes,
        lambda: network.node(0),
        lambda: network.partition([0], [1]),
        lambda: network.heal(),
        lambda: network.clear_qos(),
        lambda: network.subnet,
    ):
        with pytest.raises(netdriver.StateError, match=r"not started: call start\(n\) first"):
            call()
    network.stop()  # a no-op


# --- a manifest network -----------------------------------------------------------------------


def test_manifest_network(manifest):
    with Network(manifest=manifest, name="pyweb") as network:
        assert network.start(2) is network
        assert network.profile == "manifest"
        node0, node1 = network.nodes
        assert type(node0) is netdriver.Node
        assert (node0.name, node0.index, node1.name) == ("node0", 0, "node1")
        assert node0.url == f"http://{node0.ip}:8000/"
        assert network.node("node1") == node1 and network.node(1) == node1 and network.node(node1) == node1
        assert node0.dir == os.path.join(network.run_dir, "node0")
        assert network.subnet.endswith("/24") and network.host_ip
        assert network.subnet6 is None and network.host_ip6 is None and node0.ip6 is None

        # Errors name what exists.
        with pytest.raises(netdriver.UnknownNodeError, match=r"unknown node 'node9' \(the network has node0, node1, or an index below 2\)"):
            network.node("node9")
        with pytest.raises(netdriver.UnknownNodeError, match="unknown node '7'"):
            network.node(7)
        with pytest.raises(netdriver.UnknownServiceError, match=r"node node0 has no service 'nope' \(it has: web\)"):
            node0.service("nope")
        with pytest.raises(netdriver.UnknownServiceError):
            node0.start_service("nope")

        web = node0.service("web")
        assert [s.name for s in node0.services] == ["web"]
        assert web.state == "running" and web.pid
        Path(web.data_dir, "hello.txt").write_text("hello from node0\n")

        # exec: inside the node (hostname, hosts file), exit codes and output pass through.
        assert node1.exec("hostname", text=True).stdout.strip() == "node1"
        out = fetch(node1, "http://node0:8000/hello.txt")
        assert out.returncode == 0 and out.stdout.strip() == "hello from node0", out
        result = node0.exec(["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert (result.returncode, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
        with pytest.raises(subprocess.CalledProcessError):
            node0.exec("false", check=True)
        with pytest.raises(netdriver.MissingBinaryError, match="no-such-program.*not found"):
            node0.exec("no-such-program")
        # The host reaches the node at its URL.
        assert _opener.open(node0.url + "hello.txt", timeout=5).read() == b"hello from node0\n"

        # Stop and start: no-ops where the service already is in that state.
        node0.stop()
        assert web.state == "stopped" and web.pid is None
        node0.stop()
        assert fetch(node1, "http://node0:8000/hello.txt").returncode != 0
        with pytest.raises(netdriver.StateError, match="is not running, so it cannot be paused"):
            web.pause()
        node0.start()
        assert web.state == "running"
        pid = web.pid
        node0.start()
        assert web.pid == pid
        assert fetch(node1, "http://node0:8000/hello.txt").stdout.strip() == "hello from node0"

        web.pause()
        assert web.state == "paused"
        web.resume()
        web.restart()
        assert web.state == "running" and web.pid != pid
        web.kill()
        assert web.state == "stopped"
        web.start()

        # Logs.
        assert web.stderr_log == os.path.join(node0.dir, "web", "stderr.log")
        assert "GET /hello.txt" in Path(web.stderr_log).read_text()

        # Partitions and blocks.
        network.partition([node0], [node1])
        assert fetch(node1, "http://node0:8000/hello.txt", timeout=2).returncode != 0
        network.heal()
        assert fetch(node1, "http://node0:8000/hello.txt").returncode == 0
        network.block(1, 0)
        assert network.cuts == [(("node1",), ("node0",))]
        assert network.is_cut(1, "node0") and not network.is_cut(node0, node1)
        network.heal()
        # The timeline holds what this test did, as Python did it, in order.
        kinds = [(e["kind"], e["by"]) for e in network.events() if e["kind"] in ("partition", "block", "heal")]
        assert kinds == [("partition", "python"), ("heal", "python"), ("block", "python"), ("heal", "python")]
        block = next(e for e in network.events() if e["kind"] == "block")
        assert block["details"] == {"from": "node1", "to": "node0"} and block["node"] == "node1"

        # A service whose spec names no configuration file has none to configure.
        with pytest.raises(netdriver.InvalidError, match="has no configuration file; its spec names one with `config`"):
            node0.configure("web", port=1)

        run_id = network.id
        assert Path(f"/run/netdriver/{run_id}.json").is_file()
    # Leaving the with block tore everything down; the logs stay.
    assert not network.started
    assert leftovers(run_id) == []
    assert Path(network.run_dir, "node0", "web", "stderr.log").is_file()
    assert not Path(network.run_dir, "node0", "web", "data").exists()
    with pytest.raises(netdriver.StateError, match="stopped"):
        node0.start()


def test_dual_stack(tmp_path, manifest):
    """ipv6 = true: every node has an IPv6 address the host and the other nodes reach, by
    address and by name, a TCP probe is met on it, and a partition cuts; without it, {ip6}
    is refused up front.
    Network(ipv6=True) makes any profile's or manifest's network dual stack."""
    web6 = WEB_MANIFEST.format(python=sys.executable).replace('"{ip}"', '"{ip6}"')
    web6 = web6.replace("http://{ip}:8000/", "http://[{ip6}]:8000/")
    path = tmp_path / "web6.toml"
    path.write_text(web6)
    with pytest.raises(netdriver.ManifestError, match=r"web6.toml:2:1: invalid url: .* names an IPv6 value .* set ipv6 = true"):
        Network(manifest=path, name="pyweb6")
    with Network(manifest=manifest, name="pyweb4", ipv6=True).start(2) as network:
        assert all(node.ip6 for node in network.nodes) and network.subnet6
    path.write_text(web6.replace("nodes = 2\n", "nodes = 2\nipv6 = true\n"))
    with Network(manifest=path, name="pyweb6").start(2) as network:
        node0, node1 = network.nodes
        prefix = ipaddress.ip_network(network.subnet6)
        assert prefix.prefixlen == 64 and str(prefix).startswith("fd")
        assert ipaddress.ip_address(node1.ip6) in prefix and node1.ip6 != node0.ip6
        assert network.host_ip6 == str(prefix.network_address + 1)
        assert node0.url == f"http://[{node0.ip6}]:8000/"
        Path(node0.service("web").data_dir, "hello.txt").write_text("over IPv6\n")
        assert _opener.open(node0.url + "hello.txt", timeout=5).read() == b"over IPv6\n"
        out = fetch(node1, "http://node0:8000/hello.txt")
        assert out.returncode == 0 and out.stdout.strip() == "over IPv6", out
        network.partition([0], [1])
        assert fetch(node1, "http://node0:8000/hello.txt", timeout=1).returncode != 0
        network.heal()
        assert fetch(node1, "http://node0:8000/hello.txt").returncode == 0


def test_calls_release_the_gil(manifest):
    with Network(manifest=manifest).start(1) as network:
        node = network.nodes[0]
        worker = threading.Thread(target=node.exec, args=("sleep", "1"))
        ticks = 0
        worker.start()
        while worker.is_alive():
            ticks += 1
            time.sleep(0.01)
        worker.join()
        assert ticks >= 50


def test_qos_errors(manifest):
    with Network(manifest=manifest).start(2) as network:
        node0 = network.nodes[0]
        with pytest.raises(netdriver.InvalidError, match=r"invalid qos delay: .*'fast'"):
            node0.configure_qos(delay="fast")
        with pytest.raises(netdriver.InvalidError, match=r"unknown setting 'bandwidth'; known: delay, jitter"):
            node0.configure_qos(bandwidth="1mbit")
        with pytest.raises(netdriver.InvalidError, match=r"invalid qos loss"):
            node0.configure_qos(loss=150)
        with pytest.raises(netdriver.InvalidError, match=r"jitter.* needs a delay"):
            node0.configure_QoS(jitter=datetime.timedelta(milliseconds=5))
        with pytest.raises(netdriver.InvalidError, match=r"qos direction: 'sideways'"):
            node0.configure_qos("sideways", delay="1ms")
        with pytest.raises(netdriver.InvalidError, match="invalid qos rate"):
            network.configure_qos(0, 1, rate=2.5)
        with pytest.raises(netdriver.InvalidError, match="are the same node"):
            network.configure_qos(0, 0, delay="1ms")
        with pytest.raises(netdriver.UnknownNodeError):
            network.configure_qos(0, to="node5", delay="1ms")
        # A clear shaping needs no netem.
        network.clear_qos()
        node0.clear_qos()


def test_qos_applies_or_names_the_missing_kernel_feature(manifest):
    """Shaping works where the kernel has sch_netem, and says so where it has not."""
    with Network(manifest=manifest).start(2) as network:
        node0, node1 = network.nodes
        connect = (
            "import socket, time; t = time.monotonic(); "
            f"socket.create_connection(({node0.ip!r}, 8000), timeout=5).close(); "
            "print(time.monotonic() - t)"
        )
        try:
            node0.configure_qos(delay=datetime.timedelta(milliseconds=30))
        except netdriver.KernelFeatureError as e:
            assert "sch_netem" in str(e) or "netem" in str(e), e
            return
        # 30 ms each way on node0: a TCP handshake with it takes at least 60 ms.
        assert float(node1.exec(sys.executable, "-c", connect, check=True).stdout) >= 0.055
        network.clear_qos()
        assert float(node1.exec(sys.executable, "-c", connect, check=True).stdout) < 0.055


def test_value_conversion():
    from netdriver._convert import _duration, _offset, _percent, _qos_settings

    assert _duration("delay", 0.05) == "0.05s"
    assert _duration("delay", datetime.timedelta(milliseconds=50)) == "0.05s"
    assert _duration("delay", "50ms") == "50ms"
    assert _offset("offset", datetime.timedelta(hours=-1)) == "-3600s"
    assert _offset("offset", 1.5) == "+1.5s"
    assert _percent("loss", 0.5) == "0.5%"
    assert _qos_settings({"delay": 1, "rate": 1000000, "limit": 10, "loss": 1, "distribution": "normal"}) == {
        "delay": "1s", "rate": "1000000bit", "limit": "10", "loss": "1%", "distribution": "normal",
    }


def test_clock(manifest):
    with Network(manifest=manifest).start(1) as network:
        node0 = network.nodes[0]
        report = node0.configure_clock(monotonic="+1h", tz="UTC")
        assert report.restart_needed == ["web"] and report.restarted == []
        report = node0.configure_clock(boottime=datetime.timedelta(hours=2), restart=True)
        assert report.restarted == ["web"]
        assert node0.service("web").state == "running"
        report = node0.configure_clock(realtime="-1d", drift="+10%")
        assert report.restart_needed == ["web"] and report.unreached == []  # back to the host's monotonic
        report = node0.configure_clock(realtime="-1d", drift="-0.1%")
        assert report.restart_needed == [] and report.restarted == []
        value = float(node0.exec("python3", "-c", "import time; print(time.time())").stdout)
        assert abs(value - time.time() + 86400) < 5, value
        with pytest.raises(netdriver.InvalidError, match="clock offset"):
            node0.configure_clock("soon")
        for drift in ("abc", "1e9ppm"):
            with pytest.raises(netdriver.InvalidError, match="clock drift"):
                node0.configure_clock(drift=drift)
        value = float(node0.exec("python3", "-c", "import time; print(time.time())").stdout)
        assert abs(value - time.time() + 86400) < 5, "a refused setting changed the clock"
        with pytest.raises(netdriver.InvalidError, match="time zone"):
            node0.configure_clock(tz="Mars/Olympus")
        node0.configure_clock()


def test_failed_start_tears_down(tmp_path):
    path = tmp_path / "crash.toml"
    path.write_text(textwrap.dedent("""
        [network]
        name = "crash"
        nodes = 2

        [[service]]
        name = "crash"
        command = "sh"
        args = ["-c", "echo starting; echo 'it went wrong' >&2; exit 4"]
        ready = { tcp = 9 }
        ready_timeout = "10s"
    """))
    network = Network(manifest=path)
    with pytest.raises(netdriver.ServiceFailedError, match=r"(?s)node0/crash exited while starting \(exited\(4\)\).*it went wrong") as info:
        network.start(2)
    assert "stderr.log" in str(info.value)
    assert not network.started and network.run_dir and network.id
    assert leftovers(network.id) == []
    assert "it went wrong" in Path(network.run_dir, "node0", "crash", "stderr.log").read_text()
    network.stop()  # a no-op


# --- kvstore: configuration -------------------------------------------------------------------


def test_configure_kvstore():
    with Network(profile="kvstore", name="pyconfigure").start(1) as network:
        node = network.nodes[0]
        assert isinstance(node, netdriver.TendermintNode) and not isinstance(node, netdriver.BigchainDBNode)
        config = Path(node.tendermint.data_dir, "config", "config.toml")
        assert 'create_empty_blocks = false' in config.read_text()
        node.configure("tendermint", **{"consensus.timeout_commit": "1s"})
        node.configure_tendermint(consensus={"timeout_propose": "2s"}, moniker="renamed")
        node.configure("tendermint", {"p2p": {"pex": None}})
        text = config.read_text()
        assert 'timeout_commit = "1s"' in text and 'timeout_propose = "2s"' in text
        assert 'moniker = "renamed"' in text and "pex =" not in text
        # It applies at the next start.
        node.tendermint.restart()
        status = node.exec("cat", str(config), text=True)
        assert 'moniker = "renamed"' in status.stdout
        assert "renamed" in _opener.open(node.url + "status", timeout=5).read().decode()
        with pytest.raises(netdriver.UnknownServiceError, match="no service 'nope'"):
            node.configure("nope", x=1)
        with pytest.raises(netdriver.InvalidError, match="not a table"):
            node.configure("tendermint", **{"moniker.x": 1})


def test_fixture_default_and_binary_option(pytester_run):
    """The plugin's options and marker: default profile, --netdriver-binary, marker wins."""
    result = pytester_run(
        """
        import pytest

        def test_default(network):
            assert network.profile == "bigchaindb"

        @pytest.mark.netdriver(profile="kvstore")
        def test_marker(network):
            assert network.profile == "kvstore"

        @pytest.mark.netdriver(profile="kvstore", binaries={"tendermint": "/nonexistent"})
        def test_marker_binary(network):
            pass

        @pytest.mark.netdriver(profile="kvstore", ipv6=True)
        def test_marker_ipv6(network):
            network.start(1)
            assert network.nodes[0].ip6 and network.subnet6
        """,
    )
    assert "3 passed, 1 error" in result.stdout, result.stdout
    assert "MissingBinaryError" in result.stdout and "/nonexistent" in result.stdout


def test_fixture_command_line_options(pytester_run, manifest):
    """--netdriver-profile and --netdriver-binary apply unless a marker says otherwise; a
    manifest marker drops the command line's binaries."""
    result = pytester_run(
        f"""
        import pytest

        def test_command_line(network):
            pass

        @pytest.mark.netdriver(manifest={str(manifest)!r})
        def test_manifest_marker(network):
            assert network.profile == "manifest"
            network.start(1)
        """,
        "--netdriver-profile=kvstore", "--netdriver-binary=tendermint=/nonexistent",
    )
    assert "1 passed, 1 error" in result.stdout, result.stdout
    assert "MissingBinaryError: service tendermint: program '/nonexistent' not found" in result.stdout
    bad = pytester_run("def test_x(network): pass\n", "--netdriver-binary=tendermint")
    assert bad.returncode == 4 and "use PROGRAM=PATH" in bad.stdout, bad.stdout


def test_plugin_logs_and_teardown(pytester_run, manifest, tmp_path):
    record = tmp_path / "runs.txt"
    result = pytester_run(
        f"""
        import pytest

        def _record(network):
            with open({str(record)!r}, "a") as f:
                f.write(f"{{network.id}} {{network.run_dir}} {{network.name}}\\n")

        def test_passes(network):
            network.start(2)
            _record(network)

        def test_fails(network):
            network.start(2)
            _record(network)
            assert False, "failing on purpose"

        def test_raises(network):
            network.start(1)
            _record(network)
            raise RuntimeError("boom")
        """,
        f"--netdriver-manifest={manifest}",
    )
    assert result.returncode == 1, result.stdout
    assert "2 failed, 1 passed" in result.stdout, result.stdout
    runs = [line.split() for line in record.read_text().splitlines()]
    assert len(runs) == 3
    by_name = {name: (run_id, run_dir) for run_id, run_dir, name in runs}
    assert set(by_name) == {"test_passes", "test_fails", "test_raises"}
    for run_id, run_dir in by_name.values():
        assert leftovers(run_id) == [], run_id
    # Passing: its logs are gone. Failing: kept, and named in the report.
    assert not Path(by_name["test_passes"][1]).exists()
    for name in ("test_fails", "test_raises"):
        run_dir = by_name[name][1]
        assert Path(run_dir, "node0", "web", "stderr.log").is_file()
        assert f"run directory: {run_dir}" in result.stdout
    assert "netdriver logs (kept)" in result.stdout
    assert f"stderr: {by_name['test_fails'][1]}/node1/web/stderr.log" in result.stdout
    assert "| --- netdriver: web: running" in result.stdout
    # The timeline too: its file and its last events, the failing test's start among them.
    assert f"timeline: {by_name['test_fails'][1]}/events.jsonl (" in result.stdout
    picture = Path(by_name["test_fails"][1], "timeline.html")
    assert f"picture of the run: {picture}" in result.stdout and 'id="lane-node1"' in picture.read_text()
    assert re.search(r"\| +[0-9.]+s  node1/web +ready .*\(by python\)", result.stdout), result.stdout
    for name in ("test_fails", "test_raises"):
        shutil.rmtree(by_name[name][1])


def test_plugin_keep_logs(pytester_run, manifest, tmp_path):
    record = tmp_path / "runs.txt"
    result = pytester_run(
        f"""
        def test_passes(network):
            network.start(1)
            open({str(record)!r}, "w").write(network.run_dir)
        """,
        f"--netdriver-manifest={manifest}", "--netdriver-keep-logs",
    )
    assert result.returncode == 0, result.stdout
    assert Path(record.read_text(), "node0", "web", "stdout.log").is_file()
    shutil.rmtree(record.read_text())


def test_network_name():
    from netdriver.pytest_plugin import network_name

    assert network_name("test_a[1-x y]", "gw0") == "gw0-test_a_1-x_y"
    assert network_name("test_" + "x" * 40) == "test_" + "x" * 27
    assert network_name("[]") == "test"


@pytest.fixture
def pytester_run(tmp_path):
    """Runs a test file in a fresh pytest process (the installed plugin loads by its entry
    point); the CompletedProcess, output in stdout."""

    def run(source, *args):
        test_dir = tmp_path / "inner"
        test_dir.mkdir(exist_ok=True)
        (test_dir / "test_inner.py").write_text(textwrap.dedent(source))
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-rA", *args, str(test_dir)],
            cwd=test_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )

    return run
