"""Validated IR -> a PocketFlow Flow whose nodes are [ProgressNodeWrapper ->] NamespacedNodeWrapper ->
TemplateAwareNodeWrapper -> node (RunSession adds InstrumentedNodeWrapper outside them).

Edges connect nodes by action; a workflow without an `edges` list runs its nodes in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pocketflow import Flow

from pflow_metrics.delegation import innermost
from pflow_metrics.runtime.nodes.base import Verbatim
from pflow_metrics.runtime.registry import load_node_class
from pflow_metrics.runtime.wrappers import NamespacedNodeWrapper, ProgressNodeWrapper, TemplateAwareNodeWrapper


def compile_workflow(ir: dict[str, Any], progress: Callable[[str, str, float], None] | None = None) -> Flow:
    """`progress(node_id, "start"|"done"|"failed", seconds)` is told about each node, if given."""
    nodes = {spec["id"]: _build_node(spec, progress) for spec in ir["nodes"]}
    ids = list(nodes)
    edges = ir.get("edges")
    if edges is None:
        edges = [{"from": a, "to": b} for a, b in zip(ids, ids[1:])]
    actions: dict[str, set[str]] = {node_id: set() for node_id in nodes}
    for edge in edges:
        action = edge.get("action", "default")
        nodes[edge["from"]] - action >> nodes[edge["to"]]
        actions[edge["from"]].add(action)
    inputs = frozenset(ir.get("inputs") or ())
    for node_id, node in nodes.items():
        inner = innermost(node)
        # A built-in node that fails returns the `error` action when an edge takes it, and
        # raises (failing the node and the run) when none does.
        inner.edge_actions = frozenset(actions[node_id])
        # Store keys that are the workflow's inputs yield to explicit params (see WorkflowNode.read).
        inner.workflow_inputs = inputs
    return Flow(start=nodes[ir.get("start_node") or ids[0]])


def _build_node(spec: dict[str, Any], progress: Callable[[str, str, float], None] | None):
    node_id = spec["id"]
    node = load_node_class(spec["type"])()
    node.node_id = node_id
    node.node_type = spec["type"]  # the ledger names the IR type, not the class
    params = dict(spec.get("params") or {})
    for name in getattr(node, "verbatim_params", ()):
        if name in params:
            params[name] = Verbatim(params[name])
    templated = TemplateAwareNodeWrapper(node, node_id, params)
    namespaced = NamespacedNodeWrapper(templated, node_id)
    return ProgressNodeWrapper(namespaced, node_id, progress) if progress else namespaced
