"""Node types, found through the `pflow_metrics.node_types` entry-point group.

Another installed package adds a type by declaring an entry point in that group
(`name = "package.module:NodeClass"`); classes load only when a workflow uses them.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from pflow_metrics.errors import UsageError

GROUP = "pflow_metrics.node_types"


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {point.name: point for point in entry_points(group=GROUP)}


def node_type_names() -> list[str]:
    return sorted(_entry_points())


def load_node_class(name: str) -> type:
    point = _entry_points().get(name)
    if point is None:
        raise UsageError(f"unknown node type {name!r}")
    try:
        return point.load()
    except Exception as exc:  # a broken plugin is the user's to fix, not a traceback
        raise UsageError(f"node type {name!r} cannot be loaded from {point.value}: {exc}") from None


def catalogue() -> list[dict[str, object]]:
    """Each node type with what it does, its params and what it writes (for the planner)."""
    entries = []
    for name in node_type_names():
        node_class = load_node_class(name)
        entries.append({
            "type": name,
            "description": getattr(node_class, "description", "") or (node_class.__doc__ or "").strip(),
            "params": dict(getattr(node_class, "params_doc", {})),
            "writes": dict(getattr(node_class, "writes", {})),
        })
    return entries
