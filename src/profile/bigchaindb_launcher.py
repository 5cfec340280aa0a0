"""netdriver's launcher for BigchainDB: `bigchaindb start`, adapted to the database.

`bigchaindb start` creates the database schema first, including two text indexes (on assets
and metadata). Where the server refuses them (FerretDB has no text indexes), the launcher
skips them and says so on stderr: text search (GET /api/v1/assets?search=) then fails.

With NETDRIVER_DATABASE=ferretdb, the two queries that use `$elemMatch` with `$and`, which
FerretDB does not implement (finding what spends an output, needed by every TRANSFER), run as
a query on the dotted field plus the exact per-input match here, with the same results.
With a real mongod nothing is changed.

gunicorn's worker heartbeat compares a file's change time, which the kernel stamps on the
host's clock, with time.time(), which reads the node's (netdriver shifts the wall clock of every
program of a node, but not file timestamps): on a node whose clock is behind or ahead, every
worker would look stale and be killed over and over. The heartbeat is read on the node's clock
instead, with the offset measured at each check, since the node's clock can change while
gunicorn runs.
"""
import os
import sys
import tempfile
import time

import pymongo.collection
from pymongo.errors import OperationFailure

from bigchaindb.backend import query
from bigchaindb.backend.localmongodb.connection import LocalMongoDBConnection
from bigchaindb.commands import bigchaindb as commands

_create_index = pymongo.collection.Collection.create_index


def _create_index_or_skip_text(self, keys, **kwargs):
    try:
        return _create_index(self, keys, **kwargs)
    except OperationFailure as error:
        if kwargs.get("name") != "text":
            raise
        print(
            f"netdriver: the database refused the text index on {self.name} ({error}); "
            "text search on it will fail",
            file=sys.stderr,
            flush=True,
        )
        return None


def _spending(conn, transaction_ids, output_indexes):
    """The transactions with an input that spends one of `output_indexes` of one of
    `transaction_ids` (both in the same input, as `$elemMatch` means)."""
    cursor = conn.run(
        conn.collection("transactions").find(
            {"inputs.fulfills.transaction_id": {"$in": list(transaction_ids)}}, {"_id": False}
        )
    )
    return [
        tx
        for tx in cursor
        if any(
            (i.get("fulfills") or {}).get("transaction_id") in transaction_ids
            and (i.get("fulfills") or {}).get("output_index") in output_indexes
            for i in tx["inputs"]
        )
    ]


def _get_spent(conn, transaction_id, output):
    return _spending(conn, {transaction_id}, {output})


def _get_spending_transactions(conn, inputs):
    return _spending(conn, {i["transaction_id"] for i in inputs}, {i["output_index"] for i in inputs})


def _file_clock_offset():
    """How far time.time() is from the clock the kernel stamps files with."""
    with tempfile.TemporaryFile() as probe:
        return time.time() - os.fstat(probe.fileno()).st_ctime


def _read_heartbeats_on_the_shifted_clock():
    from gunicorn.workers import workertmp

    last_update = workertmp.WorkerTmp.last_update
    workertmp.WorkerTmp.last_update = lambda self: last_update(self) + _file_clock_offset()


pymongo.collection.Collection.create_index = _create_index_or_skip_text
_read_heartbeats_on_the_shifted_clock()
if os.environ.get("NETDRIVER_DATABASE") == "ferretdb":
    query.get_spent.register(LocalMongoDBConnection)(_get_spent)
    query.get_spending_transactions.register(LocalMongoDBConnection)(_get_spending_transactions)
sys.argv = ["bigchaindb", "start"]
sys.exit(commands.main())
