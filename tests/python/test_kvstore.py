"""A Tendermint kvstore network driven through the `network` fixture of netdriver's plugin.

Needs root and Tendermint (on PATH or in /opt/netdriver/bin, see scripts/install-stack).
Also run under pytest-xdist (`pytest -n 2`), which test_xdist does.
"""

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.netdriver(profile="kvstore")

# No proxy for the nodes' private addresses, whatever the environment says.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def rpc(node, path, timeout=10.0):
    """GET a Tendermint RPC path on a node; the parsed JSON answer."""
    with _opener.open(node.url + path, timeout=timeout) as response:
        return json.load(response)


def put(node, key, value, timeout=10.0):
    """Commits key=value through `node` (broadcast_tx_commit); raises if it did not commit."""
    answer = rpc(node, f'broadcast_tx_commit?tx="{key}={value}"', timeout=timeout)
    assert "error" not in answer, answer
    result = answer["result"]
    assert result["check_tx"].get("code", 0) == 0, result
    assert result["deliver_tx"].get("code", 0) == 0, result
    return int(result["height"])


def get(node, key):
    """The value of `key` on `node`'s copy of the store, or None."""
    response = rpc(node, f'abci_query?data="{key}"')["result"]["response"]
    value = response.get("value")
    return None if value is None else base64.b64decode(value).decode()


def eventually(check, timeout=30.0, interval=0.2):
    """Calls `check` until it returns a truthy value (returned) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (OSError, KeyError, AssertionError):
            if time.monotonic() >= deadline:
                raise
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true after {timeout}s: {check}")
        time.sleep(interval)


def test_replicates_to_every_node(network):
    network.start(4)
    assert len(network.nodes) == 4
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        assert network.name.startswith(f"{worker}-")
    node0 = network.nodes[0]
    assert node0.url == f"http://{node0.ip}:26657/"
    put(node0, "k", "v")
    for node in network.nodes:
        assert eventually(lambda: get(node, "k") == "v", timeout=10), node


def test_stopped_node_catches_up(network):
    network.start(4)
    node0, node1 = network.nodes[0], network.nodes[1]
    put(node0, "first", "1")
    node0.stop_tendermint()
    assert node0.tendermint.state == "stopped"
    node0.stop_tendermint()  # a no-op
    # Three of four validators (30 of 40 power) still make blocks.
    put(node1, "second", "2")
    node0.start_tendermint()
    assert node0.tendermint.state == "running"
    assert eventually(lambda: get(node0, "second") == "2", timeout=60)
    assert get(node0, "first") == "1"


def test_partition_stalls_commits_and_heal_resumes_them(network):
    network.start(4)
    nodes = network.nodes
    put(nodes[0], "before", "1")
    network.partition([0, 1], [2, 3])
    assert network.cuts == [(("node0", "node1"), ("node2", "node3")), (("node2", "node3"), ("node0", "node1"))]
    assert network.is_cut(0, 2) and network.is_cut("node3", "node1") and not network.is_cut(0, 1)
    # Neither half has more than 2/3 of the power: nothing commits.
    started = time.monotonic()
    with pytest.raises((OSError, AssertionError)):
        put(nodes[0], "during", "1", timeout=5)
    assert time.monotonic() - started >= 4
    assert get(nodes[2], "during") is None
    network.heal()
    assert network.cuts == []
    # The transaction waiting in the mempool commits, and new ones do again.
    assert eventually(lambda: get(nodes[3], "during") == "1", timeout=90)
    put(nodes[2], "after", "1", timeout=30)
    for node in nodes:
        assert eventually(lambda: get(node, "after") == "1", timeout=30), node


def test_xdist(network, tmp_path):
    """The tests above under pytest-xdist, two workers at once, each with its own networks.
    When this file already runs under xdist, this test is one more worker's network."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        network.start(2)
        assert network.name == f"{worker}-test_xdist"
        put(network.nodes[1], worker, "here")
        assert eventually(lambda: get(network.nodes[0], worker) == "here", timeout=10)
        return
    pytest.importorskip("xdist")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-q", "-p", "no:cacheprovider", "-k", "not xdist", __file__],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout
    assert "3 passed" in run.stdout, run.stdout
    print(f"xdist run: {time.monotonic() - started:.1f}s\n{run.stdout}")
