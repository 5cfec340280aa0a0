"""Helpers for BigchainDB networks in tests: signed transactions, posting, and waiting
until a node has a transaction."""
import time

import requests
from bigchaindb.common.crypto import generate_key_pair
from bigchaindb.common.transaction import Transaction


def signed_create(message, owner=None):
    """A CREATE transaction of one asset, signed by `owner` (a new key pair if None)."""
    owner = owner or generate_key_pair()
    return Transaction.create(
        [owner.public_key],
        [([owner.public_key], 1)],
        asset={'message': message},
    ).sign([owner.private_key])


def signed_transfer(tx, owner, recipient):
    """A TRANSFER of the first output of `tx` from `owner` to `recipient`."""
    asset_id = tx.id if tx.operation == Transaction.CREATE else tx.asset['id']
    return Transaction.transfer(
        tx.to_inputs()[:1], [([recipient.public_key], 1)], asset_id=asset_id
    ).sign([owner.private_key])


def post(node, tx, mode='commit', timeout=30):
    """Posts `tx` to `node` (mode: async, sync or commit) and returns the response."""
    return requests.post(node.url + f'transactions?mode={mode}', json=tx.to_dict(), timeout=timeout)


def has_transaction(node, tx_id):
    """Whether `node` returns the transaction."""
    try:
        return requests.get(node.url + 'transactions/' + tx_id, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def wait_for_transaction(node, tx_id, timeout=60):
    """The transaction as `node` returns it, once it has it."""
    deadline = time.monotonic() + timeout
    while True:
        response = None
        try:
            response = requests.get(node.url + 'transactions/' + tx_id, timeout=5)
            if response.status_code == 200:
                return response.json()
        except requests.RequestException:
            pass
        status = response.status_code if response is not None else 'no answer'
        assert time.monotonic() < deadline, f'{node.name} lacks {tx_id} after {timeout} s ({status})'
        time.sleep(0.5)


def assert_everywhere(network, tx, timeout=60):
    """Every node of `network` returns `tx`."""
    for node in network.nodes:
        assert wait_for_transaction(node, tx.id, timeout)['id'] == tx.id
