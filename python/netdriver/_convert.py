"""Values as the core reads them: durations, offsets, percentages, rates and counts as text."""

import datetime
import numbers
from os import PathLike, fspath
from typing import Any, Dict, Mapping, Tuple, Union

from . import _netdriver
from ._netdriver import InvalidError

#: The keys :meth:`Node.configure_qos` takes.
QOS_SETTINGS: Tuple[str, ...] = tuple(_netdriver.Network.qos_settings())

#: A duration: text such as "50ms" or "1.5s", a timedelta, or a number of seconds.
Duration = Union[str, datetime.timedelta, float, int]


def _decimal(x: float) -> str:
    """A number as plain decimal text (no exponent), e.g. 0.05 -> "0.05"."""
    text = format(x, ".9f").rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _duration(key: str, value: Any) -> str:
    """A duration value as the core reads it: "50ms" stays, 0.05 and timedelta become "0.05s"."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime.timedelta):
        return _decimal(value / datetime.timedelta(microseconds=1) / 1e6) + "s"
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return _decimal(float(value)) + "s"
    raise InvalidError(f"invalid {key}: {value!r} (use text like '50ms', a datetime.timedelta, or seconds as a number)")


def _offset(key: str, value: Any) -> str:
    """A signed clock offset: "+1h"/"-30s" stay, timedelta and seconds become "+3600s"/"-30s"."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime.timedelta):
        seconds = value / datetime.timedelta(microseconds=1) / 1e6
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise InvalidError(
            f"invalid clock {key}: {value!r} (use text like '+1h' or '-30s', a datetime.timedelta, or seconds as a number)"
        )
    return ("-" if seconds < 0 else "+") + _decimal(abs(seconds)) + "s"


def _percent(key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return _decimal(float(value)) + "%"
    raise InvalidError(f"invalid qos {key}: {value!r} (use text like '1%' or a number meaning percent)")


def _count(key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    raise InvalidError(f"invalid qos {key}: {value!r} (use a whole number of packets)")


def _rate(key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return f"{int(value)}bit"
    raise InvalidError(f"invalid qos {key}: {value!r} (use text like '10mbit' or an int of bits per second)")


def _qos_settings(settings: Mapping[str, Any]) -> Dict[str, str]:
    """QoS settings as text, by kind of key; unknown keys are left to the core to reject."""
    out = {}
    for key, value in settings.items():
        if value is None:
            continue
        if key in ("delay", "jitter"):
            out[key] = _duration(key, value)
        elif key == "rate":
            out[key] = _rate(key, value)
        elif key in ("gap", "limit"):
            out[key] = _count(key, value)
        elif key == "distribution":
            out[key] = value if isinstance(value, str) else str(value)
        elif key in QOS_SETTINGS:
            out[key] = _percent(key, value)
        else:
            out[key] = str(value)
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.timedelta):
        return _duration("setting", value)
    if isinstance(value, PathLike):
        return fspath(value)
    raise TypeError(f"{value!r} is not a JSON value")
