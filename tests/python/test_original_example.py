"""The original usage example of BigchainDB's integration-testing design, run for real:
four nodes, node 0 stops, a signed CREATE transaction goes to node 1, node 0 starts again,
and every node returns the transaction by its id.

The `network` fixture comes from netdriver's pytest plugin: a stopped network of BigchainDB
nodes (a database, BigchainDB 2.2.2 and Tendermint 0.31.5 in each), torn down after the test.
"""
import requests
from bigchaindb.common.crypto import generate_key_pair
from bigchaindb.common.transaction import Transaction

from chain import wait_for_transaction


def test_a_stopped_node_catches_up(network):
    network.start(4)
    node0, node1 = network.nodes[0], network.nodes[1]

    node0.stop()

    alice = generate_key_pair()
    tx = Transaction.create(
        [alice.public_key],
        [([alice.public_key], 1)],
        asset={'message': 'Hello BigchainDB from netdriver'},
    ).sign([alice.private_key])
    response = requests.post(node1.url + 'transactions?mode=commit', json=tx.to_dict())
    assert response.status_code == 202, response.text

    node0.start()

    for node in network.nodes:
        assert wait_for_transaction(node, tx.id)['id'] == tx.id
