"""Transfers and double spends on a real BigchainDB network, whatever the database: the
network accepts one TRANSFER of an output and refuses a second one. Text search works on a
real mongod and fails on FerretDB, which has no text indexes."""
import shutil

import requests
from bigchaindb.common.crypto import generate_key_pair

from chain import assert_everywhere, post, signed_create, signed_transfer


def test_a_double_spend_is_refused_everywhere(network):
    network.start(4)
    alice, bob, carol = generate_key_pair(), generate_key_pair(), generate_key_pair()
    created = signed_create('a bicycle', alice)
    assert post(network.nodes[0], created).status_code == 202
    # Committed means committed on node0: node1 may apply the block a moment later, and
    # until then the transfer's input does not exist there.
    assert_everywhere(network, created)

    to_bob = signed_transfer(created, alice, bob)
    response = post(network.nodes[1], to_bob)
    assert response.status_code == 202, response.text
    assert_everywhere(network, to_bob)

    to_carol = signed_transfer(created, alice, carol)
    response = post(network.nodes[2], to_carol)
    assert response.status_code == 400, response.text
    assert 'DoubleSpend' in response.text, response.text

    unspent = requests.get(network.nodes[3].url + f'outputs?public_key={bob.public_key}&spent=false').json()
    assert [o['transaction_id'] for o in unspent] == [to_bob.id]


def test_text_search_needs_text_indexes(network):
    network.start(1)
    node = network.nodes[0]
    assert post(node, signed_create('findable words')).status_code == 202
    response = requests.get(node.url + 'assets?search=findable')
    if shutil.which('mongod'):  # the profile runs mongod when it is on PATH
        assert response.status_code == 200 and len(response.json()) == 1, response.text
    else:
        # FerretDB has no text indexes: the search fails instead of returning wrong results.
        assert response.status_code == 500, response.text
