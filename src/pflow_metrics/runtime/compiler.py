"""Validated IR -> a PocketFlow Flow whose nodes are [ProgressNodeWrapper ->] NamespacedNodeWrapper ->
TemplateAwareNodeWrapper -> node (RunSession adds InstrumentedNodeWrapper outside them).

Edges connect nodes by action; a workflow without an `edges` list runs its nodes in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pocketflow import Flow

from pflow_metrics.runtime.registry import load_node_class
from pflow_metrics.runtime.wrappers import NamespacedNodeWrapper, ProgressNodeWrapper, TemplateAwareNodeWrapper


def compile_workflow(ir: dict[str, Any], progress: Callable[[str, str, float], None] | None = None) -> Flow:
    """`progress(node_id, "start"|"done"|"failed", seconds)` is told about each node, if given."""
    nodes = {spec["id"]: _build_node(spec, progress) for spec in ir["nodes"]}
    ids = list(nodes)
    edges = ir.get("edges")
    if edges is None:
        edges = [{"from": a, "to": b} for a, b in zip(ids, ids[1:])]
    for edge in edges:
        nodes[edge["from"]] - edge.get("action", "default") >> nodes[edge["to"]]
    return Flow(start=nodes[ir.get("start_node") or ids[0]])


def _build_node(spec: dict[str, Any], progress: Callable[[str, str, float], None] | None):
    node_id = spec["id"]
    node = load_node_class(spec["type"])()
    node.node_id = node_id
    node.node_type = spec["type"]  # the ledger names the IR type, not the class
    templated = TemplateAwareNodeWrapper(node, node_id, dict(spec.get("params") or {}))
    namespaced = NamespacedNodeWrapper(templated, node_id)
    return ProgressNodeWrapper(namespaced, node_id, progress) if progress else namespaced
