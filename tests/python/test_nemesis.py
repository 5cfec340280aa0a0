"""A four-node BigchainDB network under a seeded fault schedule (kill, pause, partition) while a
client posts 100 transactions round robin to the nodes that answer: afterwards every accepted
transaction is on every node, a double spend posted during the schedule is refused everywhere,
and the timeline holds every fault with its end; its picture is rendered by headless Chromium."""
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
from bigchaindb.common.crypto import generate_key_pair

import netdriver
from chain import assert_everywhere, has_transaction, post, signed_create, signed_transfer

TRANSACTIONS = 100


def post_somewhere(network, tx, start):
    """Posts `tx` (mode=commit) to the nodes in turn from `start` until one answers; the answer,
    or None if none did."""
    nodes = network.nodes
    for i in range(len(nodes)):
        try:
            return post(nodes[(start + i) % len(nodes)], tx, timeout=15)
        except requests.RequestException:
            continue
    return None


def screenshot(page, png):
    """Renders `page` with headless Chromium into `png`."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: install Debian's chromium package (scripts/setup installs it)"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            ["timeout", "120", chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", "--force-device-scale-factor=1", f"--user-data-dir={profile}",
             "--window-size=1400,900", f"--screenshot={png}", f"file://{page}"],
            check=False, capture_output=True,
        )
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"chromium wrote no screenshot of {page}"


def test_accepted_transactions_survive_a_seeded_schedule(network, tmp_path):
    network.start(4)
    alice, bob, carol = generate_key_pair(), generate_key_pair(), generate_key_pair()
    asset = signed_create("spent once", alice)
    assert post(network.nodes[0], asset).status_code == 202
    assert_everywhere(network, asset)

    accepted, refused = [], []
    to_bob = signed_transfer(asset, alice, bob)
    to_carol = signed_transfer(asset, alice, carol)
    spend_answers = {}
    schedule = network.nemesis(seed=7, faults=["kill", "pause", "partition"], interval=("2s", "5s"),
                               hold=("1s", "3s"), length="60s")
    planned = schedule.plan
    assert planned.strip(), "an empty plan"
    # The profile's choice: any service may be paused, only the database killed (Tendermint
    # 0.31.5 cannot restart after some crashes of its own or of BigchainDB's).
    kills = [line.split()[-1] for line in planned.splitlines() if " kill " in line]
    assert kills and all(target.endswith("/db") for target in kills), planned
    began = time.monotonic()
    with schedule:
        for i in range(TRANSACTIONS):
            tx = signed_create(f"transaction {i}")
            answer = post_somewhere(network, tx, i)
            (accepted if answer is not None and answer.status_code == 202 else refused).append(tx)
            if i == TRANSACTIONS // 4:
                # The double spend, mid-schedule: the first transfer until one node takes it,
                # then the second one, which no node may accept.
                for attempt in range(20):
                    answer = post_somewhere(network, to_bob, attempt)
                    if answer is not None and answer.status_code == 202:
                        break
                spend_answers["bob"] = answer.status_code if answer is not None else None
                answer = post_somewhere(network, to_carol, 1)
                spend_answers["carol"] = answer.status_code if answer is not None else None
    took = time.monotonic() - began
    history = schedule.history
    assert history["faults"] and history.get("error") is None, history
    print(f"nemesis: {len(history['faults'])} faults; {len(accepted)} of {TRANSACTIONS} transactions accepted "
          f"in {took:.1f} s; double spend answers {spend_answers}")
    assert len(accepted) >= TRANSACTIONS // 2, f"only {len(accepted)} of {TRANSACTIONS} accepted"

    # Everything healed: the network converges and every accepted transaction is everywhere.
    assert network.cuts == []
    network.wait_converged(180)
    for tx in accepted:
        assert_everywhere(network, tx, timeout=120)
    assert spend_answers["bob"] == 202, spend_answers
    assert spend_answers["carol"] != 202, spend_answers
    assert_everywhere(network, to_bob)
    assert not any(has_transaction(node, to_carol.id) for node in network.nodes), "the double spend got in"

    # The timeline: every planned fault started and ended, by the nemesis, in order.
    events = network.events()
    starts = [e for e in events if e["kind"] == "fault_start"]
    ends = {e["details"]["id"] for e in events if e["kind"] == "fault_end"}
    assert len(starts) == len(history["faults"]) and starts, (starts, history)
    assert {e["details"]["id"] for e in starts} == ends
    assert all(e["by"] == "nemesis" for e in starts)
    assert [e["kind"] for e in events if e["kind"].startswith("nemesis")] == ["nemesis_start", "nemesis_end"]

    # Its picture, as headless Chromium renders it.
    page = tmp_path / "timeline.html"
    netdriver.write_timeline(network.run_dir, page)
    html = page.read_text()
    assert 'id="lane-nemesis"' in html and all(f'id="lane-node{i}"' in html for i in range(4))
    assert html.count('class="span fault') >= len(starts), "a fault is missing from the picture"
    png = tmp_path / "timeline.png"
    screenshot(page, png)
    if os.environ.get("NETDRIVER_TIMELINE_SHOT"):
        shutil.copy(png, os.environ["NETDRIVER_TIMELINE_SHOT"])


def test_a_bad_schedule_is_refused_and_nothing_is_applied(network):
    with pytest.raises(netdriver.StateError, match="not started"):
        network.nemesis(seed=1, faults=["kill"])
    network.start(1)
    with pytest.raises(netdriver.InvalidError, match="'boom'"):
        network.nemesis(seed=1, faults=["kill", "boom"])
    with pytest.raises(netdriver.InvalidError, match="'mongod', which the nodes do not run"):
        network.nemesis(seed=1, faults=["kill"], kill_services=["mongod"])
    with pytest.raises(netdriver.InvalidError, match="written backwards"):
        network.nemesis(seed=1, faults=["kill"], interval=("5s", "2s"))
    with pytest.raises(netdriver.KernelFeatureError, match="sch_netem"):
        network.nemesis(seed=1, faults=["qos"])
    with pytest.raises(netdriver.InvalidError, match="no \\[nemesis\\] table"):
        network.nemesis()
    assert not [e for e in network.events() if e["kind"] in ("nemesis_start", "fault_start")]
