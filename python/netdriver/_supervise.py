"""A network's clock supervisor, when netdriver is driven from Python: netdriver starts it as
``python -m netdriver._supervise`` (the package points ``NETDRIVER_SUPERVISOR`` here), with the
supervisor's socket on descriptor 3. It puts every program of a node under the node's wall
clock; see the README's section on clocks."""

from ._netdriver import _supervise

_supervise()
