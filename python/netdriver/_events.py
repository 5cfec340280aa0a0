"""A run's timeline (``<run_dir>/events.jsonl``) as Python dicts, and one line of text each."""
import json
from os import PathLike, fspath
from typing import Any, Dict, List, Union

from . import _netdriver


def read_events(run_dir: Union[str, "PathLike[str]"]) -> List[Dict[str, Any]]:
    """The events of the run in ``run_dir``, in order: dicts with ``t`` (seconds since the
    bring-up began), ``wall`` (UTC, RFC 3339), ``kind``, ``by`` (who did it), and where they
    apply ``node``, ``service`` and ``details``."""
    return [json.loads(line) for line in _netdriver.read_events(fspath(run_dir))]


def write_timeline(run_dir: Union[str, "PathLike[str]"], out: Union[str, "PathLike[str]"]) -> None:
    """Writes the picture of the run in ``run_dir`` to ``out``: one self-contained HTML page
    with a lane per node, its services' running, paused and down time, partitions, blocks,
    shaping, clock shifts and faults; hover for each event's details."""
    _netdriver.write_timeline(fspath(run_dir), fspath(out))


def format_event(event: Dict[str, Any]) -> str:
    """One event as a line: time, where, what, details, who."""
    place = "/".join(p for p in (event.get("node"), event.get("service")) if p) or "-"
    details = json.dumps(event["details"], separators=(",", ":")) if "details" in event else ""
    return f"{event['t']:9.3f}s  {place:<22} {event['kind']:<12} {details}  (by {event['by']})"
