"""What every workflow node type shares: its catalogue entry and checked params."""

from __future__ import annotations

from typing import Any, ClassVar

from pocketflow import Node


class NodeParamError(ValueError):
    """A node was run without a param it needs, or with one of the wrong kind."""


class WorkflowNode(Node):
    """A PocketFlow node with a catalogue entry: the planner shows `description`, `params`
    and `writes` to the LLM, and `required` params are checked when the node runs."""

    description: ClassVar[str] = ""
    params_doc: ClassVar[dict[str, str]] = {}
    writes: ClassVar[dict[str, str]] = {}
    required: ClassVar[tuple[str, ...]] = ()

    def param(self, name: str, default: Any = None) -> Any:
        value = self.params.get(name)
        if value is None and name in self.required:
            raise NodeParamError(f"param '{name}' is required")
        return default if value is None else value
