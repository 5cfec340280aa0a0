"""The failure scenarios of BigchainDB's integration-testing design, on four real nodes:
one service crashing on one node while the others commit, a node reset, a 2|2 partition
and its heal, and a node with a shifted clock."""
import datetime
import re
import sys
import time

import pytest

import netdriver

from chain import assert_everywhere, has_transaction, post, signed_create, wait_for_transaction


# How a node comes back after one of its services crashed:
# - the database: BigchainDB's ABCI connection breaks on the failed block and Tendermint exits,
#   so the whole node restarts;
# - BigchainDB: starting it starts Tendermint again (Tendermint does not reconnect);
# - Tendermint: starting it again is enough.
RECOVERIES = {
    'db': lambda node: node.restart(),
    'bigchaindb': lambda node: node.start_bigchaindb(),
    'tendermint': lambda node: node.start_tendermint(),
}


@pytest.mark.parametrize('service', list(RECOVERIES))
def test_a_crashed_service_does_not_stop_the_others_and_recovers(network, service):
    network.start(4)
    crashed = network.nodes[3]
    crashed.service(service).kill()

    tx = signed_create(f'committed while {service} is down on node3')
    response = post(network.nodes[0], tx)
    assert response.status_code == 202, response.text
    for node in network.nodes[:3]:
        wait_for_transaction(node, tx.id, timeout=30)

    RECOVERIES[service](crashed)
    assert_everywhere(network, tx)
    after = signed_create(f'committed after {service} came back')
    assert post(crashed, after).status_code == 202
    assert_everywhere(network, after)


def test_a_reset_node_replays_the_chain(network):
    network.start(4)
    tx = signed_create('before the reset')
    assert post(network.nodes[0], tx).status_code == 202
    node = network.nodes[2]

    node.stop()
    with pytest.raises(netdriver.StateError, match="node2 at no answer"):
        network.wait_converged("2s")
    node.reset_db()
    node.reset_tendermint()
    node.start()

    # The replayed node agrees with the others on the chain, and serves the transaction.
    converged = network.wait_converged(90)
    assert converged["height"] >= 1 and len(converged["app_hash"]) > 0, converged
    assert_everywhere(network, tx)


def test_a_two_two_partition_stops_commits_until_healed(network):
    network.start(4)
    network.partition([0, 1], [2, 3])

    tx = signed_create('posted during the partition')
    response = post(network.nodes[0], tx, mode='sync')
    assert response.status_code == 202, response.text
    time.sleep(5)
    assert not any(has_transaction(node, tx.id) for node in network.nodes), 'a 2|2 split committed'

    network.heal()
    assert_everywhere(network, tx)
    after = signed_create('posted after the heal')
    assert post(network.nodes[3], after).status_code == 202
    assert_everywhere(network, after)


def _tendermint_log_times(node):
    """The times of Tendermint's log lines on `node` (`I[2026-12-01|11:39:17.835] ...`), in
    seconds since the epoch (Tendermint writes the node's local time)."""
    with open(node.service('tendermint').stdout_log) as log:
        stamps = re.findall(r'^[DIEW]\[(\d{4}-\d\d-\d\d\|\d\d:\d\d:\d\d\.\d+)\]', log.read(), re.M)
    return [datetime.datetime.strptime(s, '%Y-%m-%d|%H:%M:%S.%f').timestamp() for s in stamps]


def test_a_node_with_a_shifted_clock_keeps_up(network):
    network.start(4)
    node = network.nodes[1]
    logged = len(_tendermint_log_times(node))

    # The wall clock moves under every running program of the node: no restart.
    pids = {service: node.service(service).pid for service in ('db', 'bigchaindb', 'tendermint')}
    report = node.configure_clock(realtime='+1h')
    assert report.restart_needed == [] and report.unreached == [], report
    assert {service: node.service(service).pid for service in pids} == pids

    host = time.time()
    shifted = float(node.exec('date', '+%s.%N').stdout)
    assert abs(shifted - host - 3600) < 5, f'{node.name} reads {shifted}, the host {host}'
    python_time = node.exec(sys.executable, '-c', 'import time; print(time.time())')
    assert abs(float(python_time.stdout) - host - 3600) < 5
    # FerretDB (Go) answers with its own clock.
    hello = node.exec(sys.executable, '-c', 'import pymongo; '
                      'print(pymongo.MongoClient("127.0.0.1", 27017).admin.command("hello")["localTime"].timestamp())')
    assert abs(float(hello.stdout) - time.time() - 3600) < 5, hello

    tx = signed_create('posted to a node an hour ahead')
    assert post(node, tx).status_code == 202
    assert_everywhere(network, tx)
    # Tendermint (Go) logs the block it committed an hour ahead.
    times = _tendermint_log_times(node)[logged:]
    assert times and all(abs(t - time.time() - 3600) < 60 for t in times), times
