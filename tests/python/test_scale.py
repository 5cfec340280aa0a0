"""BigchainDB at scale: sixteen nodes, each with its own database, BigchainDB server and
Tendermint validator, come up on one host and agree on a transaction posted to one of them."""
import time

from chain import assert_everywhere, post, signed_create


def memory_in_use_mib():
    with open('/proc/meminfo') as f:
        info = {line.split(':')[0]: int(line.split()[1]) for line in f}
    return (info['MemTotal'] - info['MemAvailable']) // 1024


def test_sixteen_nodes_agree_on_a_transaction(network):
    before = memory_in_use_mib()
    began = time.monotonic()
    network.start(16)
    ready = time.monotonic() - began
    tx = signed_create('sixteen nodes')
    sent = time.monotonic()
    response = post(network.nodes[5], tx)
    assert response.status_code == 202, response.text
    committed = time.monotonic() - sent
    assert_everywhere(network, tx, timeout=120)
    everywhere = time.monotonic() - sent
    with open('/proc/loadavg') as f:
        load = f.read().split()[0]
    node_mib = (memory_in_use_mib() - before) / 16
    print(f'bigchaindb N=16: ready in {ready:.1f} s, committed through node5 in {committed:.1f} s, '
          f'on every node after {everywhere:.1f} s (load {load}, {node_mib:.0f} MiB a node)')
