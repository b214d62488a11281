"""DelegatingNode: the one base of every node wrapper, and the protocol between wrappers.

A node of a compiled or instrumented flow is a chain of wrappers around the user's node:
`InstrumentedNodeWrapper -> [ProgressNodeWrapper ->] NamespacedNodeWrapper ->
TemplateAwareNodeWrapper -> node`. Each link is a PocketFlow node itself (so `>>` and Flow's
`copy.copy` at every step work on it) and answers every attribute it lacks from the node it
wraps. The links know each other only through these instance attributes:

`inner_node`
    The wrapped node (a BaseNode), in the wrapper's own `__dict__`. Walking `inner_node` from
    the outermost wrapper reaches the user's node (`innermost`); a node without it ends the
    chain. The instrumentation copies every link of the chain at every run.
`node_id`
    The node's id in its workflow (the instrumentation prefixes it `parent/child` in nested
    flows). Read through the chain, so the instrumentation sees the runtime's id.
`template_resolutions`
    Set by the runtime's TemplateAwareNodeWrapper at every run: each template path resolved
    for this run and the value it had. The instrumentation's trace reads the first one found
    in the chain (`find_in_chain`).
`node_type`, `runs_child_nodes`
    Read through the chain from the user's node: the type the ledger names (the IR type for
    the runtime's nodes, else the class name), and True on a node that runs child nodes itself
    (a nested workflow), whose children report their own usage.

This module depends on pocketflow alone, so the runtime and the instrumentation both import it
without depending on each other.
"""

from __future__ import annotations

from typing import Any

from pocketflow import BaseNode

INNER_NODE = "inner_node"

# Pickle and copy probe these hooks on a half-built object whose `inner_node` is not set yet:
# delegating them would recurse forever.
_NOT_DELEGATED = frozenset(("__setstate__", "__getstate__", "__getnewargs__", "__getnewargs_ex__", INNER_NODE))


class DelegatingNode(BaseNode):
    """A PocketFlow node that wraps `inner_node` and answers every attribute it lacks from it."""

    def __init__(self, inner_node: BaseNode, node_id: str):
        super().__init__()
        self.inner_node = inner_node
        self.node_id = node_id

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes the wrapper lacks.
        if name in _NOT_DELEGATED:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        return getattr(object.__getattribute__(self, INNER_NODE), name)


def inner_of(node: BaseNode) -> BaseNode | None:
    """The node `node` wraps, or None at the end of a chain."""
    inner = node.__dict__.get(INNER_NODE)
    return inner if isinstance(inner, BaseNode) else None


def innermost(node: BaseNode) -> BaseNode:
    """The node at the end of the chain: the user's node."""
    while (inner := inner_of(node)) is not None:
        node = inner
    return node


def find_in_chain(node: Any, name: str, kind: type = object) -> Any:
    """The first value of instance attribute `name` that is a `kind`, along the chain from
    `node` inwards, or None."""
    while isinstance(node, BaseNode):
        found = node.__dict__.get(name)
        if found is not None and isinstance(found, kind):
            return found
        node = inner_of(node)
    return None
