"""Seeded fault schedules on a live network, as a context manager."""
import json
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

Duration = Union[float, int, str]


def duration_text(value: Duration) -> str:
    """A duration as the library reads it: seconds (a number) or text such as "500ms"."""
    return f"{float(value)}s" if isinstance(value, (int, float)) else str(value)


def _range(value: Union[Duration, Sequence[Duration]]) -> str:
    if isinstance(value, (list, tuple)):
        low, high = value
        return f"{duration_text(low)}..{duration_text(high)}"
    return duration_text(value)


def spec_json(
    seed: int,
    faults: Iterable[str],
    interval: Union[Duration, Tuple[Duration, Duration]] = ("2s", "5s"),
    hold: Union[Duration, Tuple[Duration, Duration]] = ("1s", "3s"),
    length: Duration = "60s",
    services: Optional[Iterable[str]] = None,
    kill_services: Optional[Iterable[str]] = None,
) -> str:
    """The schedule as the library reads it."""
    spec: Dict[str, Any] = {
        "seed": int(seed),
        "faults": list(faults),
        "interval": _range(interval),
        "hold": _range(hold),
        "length": duration_text(length),
    }
    if services is not None:
        spec["services"] = list(services)
    if kill_services is not None:
        spec["kill_services"] = list(kill_services)
    return json.dumps(spec)


class Nemesis:
    """A fault schedule on a network: entering starts it in the background, leaving waits for
    its end (or, if the block raised, stops it at once); either way every fault is undone and
    the network healed. ``history`` tells what it did so far, ``plan`` what it will do."""

    def __init__(self, net: Any, spec: Optional[str]) -> None:
        self._net = net
        self._spec = spec
        self._running: Any = None
        self._history: Optional[Dict[str, Any]] = None

    def __enter__(self) -> "Nemesis":
        self._running = self._net.nemesis_start(self._spec)
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if self._running is None:
            return
        self._history = json.loads(self._running.stop() if exc_type is not None else self._running.wait())

    @property
    def plan(self) -> str:
        """The schedule, a line a fault: when it starts, how long it holds, what it does."""
        return self._running.plan() if self._running is not None else self._net.nemesis_plan(self._spec)

    @property
    def history(self) -> Dict[str, Any]:
        """What the schedule did so far: ``faults`` (each with ``planned``, ``started_at``,
        ``ended_at`` and ``error``), ``stopped`` and ``error``."""
        if self._history is not None:
            return self._history
        return json.loads(self._running.history()) if self._running is not None else {"faults": []}

    @property
    def faults(self) -> List[Dict[str, Any]]:
        """The faults applied so far (see ``history``)."""
        return list(self.history["faults"])

    def stop(self) -> Dict[str, Any]:
        """Stops the schedule now, every fault undone; returns the history."""
        if self._running is not None and self._history is None:
            self._history = json.loads(self._running.stop())
        return self.history
