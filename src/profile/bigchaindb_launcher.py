"""netdriver's launcher for BigchainDB: `bigchaindb start`, tolerating a database without
text indexes.

`bigchaindb start` creates the database schema first, including two text indexes (on assets
and metadata) that FerretDB does not have. Where the server refuses them, the launcher skips
them and says so on stderr: text search (GET /api/v1/assets?search=) then fails, and
everything else works. With a real mongod nothing is skipped.
"""
import sys

import pymongo.collection
from pymongo.errors import OperationFailure

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


pymongo.collection.Collection.create_index = _create_index_or_skip_text
sys.argv = ["bigchaindb", "start"]
sys.exit(commands.main())
