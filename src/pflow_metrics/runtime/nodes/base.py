"""What every workflow node type shares: its catalogue entry, checked params, pflow-style inputs
(shared store first, then params) and failure as the `error` action."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pocketflow import Node


class NodeParamError(ValueError):
    """A node was run without a param it needs, or with one of the wrong kind."""


class UnhandledErrorAction(RuntimeError):
    """A workflow ended on a node's `error` action with no `error` edge to follow.

    `node_id` names the node (None when unknown); the message is the `error` it wrote."""

    def __init__(self, message: str, node_id: str | None = None):
        super().__init__(message)
        self.node_id = node_id


_MISSING = object()


class Verbatim:
    """A param value the compiler hands to the node untouched: templates inside it are not
    resolved (a nested workflow's IR, whose templates name the child's inputs and nodes)."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __repr__(self) -> str:
        return f"Verbatim({self.value!r})"

    @staticmethod
    def unwrap(value: Any) -> Any:
        return value.value if isinstance(value, Verbatim) else value


class WorkflowNode(Node):
    """A PocketFlow node with a catalogue entry: the planner shows `description`, `params`
    and `writes` to the LLM, and `required` params are checked when the node runs."""

    description: ClassVar[str] = ""
    params_doc: ClassVar[dict[str, str]] = {}
    writes: ClassVar[dict[str, str]] = {}
    required: ClassVar[tuple[str, ...]] = ()
    verbatim_params: ClassVar[tuple[str, ...]] = ()  # handed over with templates unresolved

    def param(self, name: str, default: Any = None) -> Any:
        value = self.params.get(name)
        if value is None and name in self.required:
            raise NodeParamError(f"param '{name}' is required")
        return default if value is None else value

    def read(self, shared: Any, names: tuple[str, ...] | str, *, aliases: tuple[str, ...] = (),
             default: Any = None, required: bool = False, falsy: bool = False) -> Any:
        """A pflow-style input: each of `names` in the shared store, then each in the params, then
        each of our own `aliases` in the params (aliases are never read from the store, so a
        workflow input that happens to share an alias's name changes nothing). A store key that
        names a declared workflow input counts only when no param gives the value.

        Empty values (None, and "" unless `falsy`) do not count as given; with `falsy`, False and
        0 given in the store win over the params, as they do in pflow for flags like `overwrite`."""
        names = (names,) if isinstance(names, str) else names
        from_params = _MISSING
        for name in (*names, *aliases):
            value = self.params.get(name)
            if _given(value, falsy):
                from_params = value
                break
        inputs = getattr(self, "workflow_inputs", None) or ()
        for name in names:
            # pflow keeps workflow inputs out of the shared store (they reach nodes through
            # templates); ours sit at its root, so a key that names an input yields to an
            # explicit param: an input `file_path` must not redirect every file node.
            if name in inputs and from_params is not _MISSING:
                continue
            value = _get(shared, name)
            if _given(value, falsy):
                return value
        if from_params is not _MISSING:
            return from_params
        if required:
            shown = " or ".join(f"'{name}'" for name in (*names, *aliases))
            raise NodeParamError(f"param {shown} is required (in the shared store or the params)")
        return default


def _get(shared: Any, key: str) -> Any:
    if not isinstance(shared, Mapping):
        return None
    try:
        return shared.get(key)
    except Exception:
        return None


def _given(value: Any, falsy: bool) -> bool:
    if value is None or value is _MISSING:
        return False
    return falsy or not (isinstance(value, str) and value == "")


class NodeFailed(RuntimeError):
    """A built-in node failed and its workflow has no `error` edge from it."""


def routes_errors(node: Any, action: str = "error") -> bool:
    """Whether `node` has an edge for `action` (by default: for its failures) to follow. The compiler sets
    `edge_actions` on every node it builds; a node wired by hand in a plain PocketFlow flow is
    asked directly."""
    declared = getattr(node, "edge_actions", None)
    if declared is not None:
        return action in declared
    return action in (getattr(node, "successors", None) or {})


def fail(node: Any, shared: Any, message: str, exc: BaseException | None = None, action: str = "error") -> str:
    """A failed node: write `error` (pflow's key), then return `action` when an edge for it
    leaves the node, or raise (`exc`, else NodeFailed(message)) when none does, so the node is
    recorded as failed and the run fails with its message."""
    shared["error"] = message
    if routes_errors(node, action):
        return action
    raise exc if exc is not None else NodeFailed(message)


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
