"""Node types, found through the `pflow_metrics.node_types` entry-point group.

Another installed package adds a type by declaring an entry point in that group
(`name = "package.module:NodeClass"`); classes load only when a workflow uses them.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from pflow_metrics.errors import UsageError

GROUP = "pflow_metrics.node_types"

# The built-in types, as pyproject.toml declares them: found even when the installed metadata
# predates a type (an editable install not reinstalled); an installed entry point of the same
# name wins.
BUILTIN = {
    "llm": "pflow_metrics.runtime.nodes.llm_node:LLMNode",
    "shell": "pflow_metrics.runtime.nodes.shell:ShellNode",
    "read-file": "pflow_metrics.runtime.nodes.files:ReadFileNode",
    "write-file": "pflow_metrics.runtime.nodes.files:WriteFileNode",
    "copy-file": "pflow_metrics.runtime.nodes.files:CopyFileNode",
    "move-file": "pflow_metrics.runtime.nodes.files:MoveFileNode",
    "delete-file": "pflow_metrics.runtime.nodes.files:DeleteFileNode",
    "echo": "pflow_metrics.runtime.nodes.echo:EchoNode",
    "workflow": "pflow_metrics.runtime.nodes.workflow:WorkflowExecutorNode",
}


@cache
def _entry_points() -> dict[str, EntryPoint]:
    points = {name: EntryPoint(name=name, value=value, group=GROUP) for name, value in BUILTIN.items()}
    points.update((point.name, point) for point in entry_points(group=GROUP))
    return points


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
