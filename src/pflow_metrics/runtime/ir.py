"""Workflow IR 0.1.0: loading, validation and input binding, before anything runs.

Every problem is reported, one line each, with the path of the offending field
(`nodes[2].type: unknown node type 'lm' (did you mean 'llm'?)`).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from pflow_metrics.errors import UsageError
from pflow_metrics.runtime import templates

IR_VERSION = "0.1.0"
NODE_ID = re.compile(r"[A-Za-z_][\w-]*\Z")
INPUT_TYPES = ("string", "number", "integer", "boolean", "object", "array")


class WorkflowInvalid(UsageError):
    """The workflow (or its inputs) cannot run; `errors` holds one line per problem."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


def load_workflow(path: str | Path) -> dict[str, Any]:
    """The parsed JSON of a workflow file; unreadable files and bad JSON raise WorkflowInvalid."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowInvalid([f"{file}: cannot read: {getattr(exc, 'strerror', None) or exc}"]) from None
    return parse_workflow(text, source=str(file))


def parse_workflow(text: str, source: str = "workflow") -> dict[str, Any]:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowInvalid(
            [f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"]
        ) from None


def suggestion(name: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def validate_workflow(ir: Any, node_types: Collection[str]) -> list[str]:
    """Every structural problem of `ir`, one line each; empty when it can be compiled."""
    if not isinstance(ir, dict):
        return [f"(root): a workflow must be a JSON object, got {_kind(ir)}"]
    errors: list[str] = []
    version = ir.get("ir_version")
    if version is None:
        errors.append(f"ir_version: required (use \"{IR_VERSION}\")")
    elif version != IR_VERSION:
        errors.append(f"ir_version: unsupported version {version!r} (expected \"{IR_VERSION}\")")
    inputs = _mapping_field(ir, "inputs", errors)
    for name, spec in inputs.items():
        errors.extend(_input_errors(name, spec))
    node_ids = _node_errors(ir, inputs, node_types, errors)
    _edge_errors(ir, node_ids, errors)
    start = ir.get("start_node")
    if start is not None and start not in node_ids:
        errors.append(f"start_node: no node with id {start!r}{suggestion(str(start), node_ids)}")
    names = set(inputs) | set(node_ids)
    for name, spec in _mapping_field(ir, "outputs", errors).items():
        if not isinstance(spec, dict):
            errors.append(f"outputs.{name}: must be an object, got {_kind(spec)}")
            continue
        errors.extend(_template_errors(f"outputs.{name}.source", spec.get("source"), names))
    return errors


def bind_inputs(ir: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The workflow's input values: given ones converted to their declared type, then defaults.

    Raises WorkflowInvalid for missing required inputs, unknown names and bad values.
    """
    declared = ir.get("inputs") or {}
    errors: list[str] = []
    values: dict[str, Any] = {}
    for name in given:
        if name not in declared:
            errors.append(f"inputs.{name}: not an input of this workflow{suggestion(name, declared)}")
    for name, spec in declared.items():
        if name in given:
            try:
                values[name] = coerce(given[name], spec.get("type", "string"))
            except ValueError as exc:
                errors.append(f"inputs.{name}: {exc}")
        elif spec.get("default") is not None:
            values[name] = spec["default"]
        elif spec.get("required", True):
            errors.append(f"inputs.{name}: required input not given (pass {name}=VALUE)")
    if errors:
        raise WorkflowInvalid(errors)
    return values


def coerce(value: Any, kind: str) -> Any:
    """A command-line string turned into the declared input type; other values are checked."""
    if not isinstance(value, str) or kind == "string":
        return value
    try:
        parsed = json.loads(value) if kind in ("object", "array", "number", "integer", "boolean") else value
    except json.JSONDecodeError:
        parsed = None
    expected = {"object": dict, "array": list, "boolean": bool, "integer": int, "number": (int, float)}
    if isinstance(parsed, expected[kind]) and not (kind in ("integer", "number") and isinstance(parsed, bool)):
        return parsed
    raise ValueError(f"expected {kind}, got {value!r}")


def _node_errors(ir: dict, inputs: dict, node_types: Collection[str], errors: list[str]) -> list[str]:
    nodes = ir.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        errors.append("nodes: required, a non-empty list of nodes")
        return []
    first_use: dict[str, int] = {}
    for index, node in enumerate(nodes):
        where = f"nodes[{index}]"
        if not isinstance(node, dict):
            errors.append(f"{where}: must be an object, got {_kind(node)}")
            continue
        node_id = node.get("id")
        if not isinstance(node_id, str) or not NODE_ID.match(node_id):
            errors.append(f"{where}.id: required, letters, digits, '_' or '-', got {node_id!r}")
        elif node_id in first_use:
            errors.append(f"{where}.id: duplicate id {node_id!r} (first used by nodes[{first_use[node_id]}])")
        elif node_id in inputs:
            errors.append(f"{where}.id: {node_id!r} is also the name of an input")
        else:
            first_use[node_id] = index
        node_type = node.get("type")
        if not isinstance(node_type, str) or not node_type:
            errors.append(f"{where}.type: required, one of {', '.join(sorted(node_types))}")
        elif node_type not in node_types:
            errors.append(f"{where}.type: unknown node type {node_type!r}{suggestion(node_type, node_types)}")
        if not isinstance(node.get("params", {}), dict):
            errors.append(f"{where}.params: must be an object, got {_kind(node['params'])}")
    names = set(inputs) | set(first_use)
    for index, node in enumerate(nodes):
        if isinstance(node, dict) and isinstance(node.get("params"), dict):
            errors.extend(_template_errors(f"nodes[{index}].params", node["params"], names))
    return list(first_use)


def _edge_errors(ir: dict, node_ids: list[str], errors: list[str]) -> None:
    edges = ir.get("edges", [])
    if not isinstance(edges, list):
        errors.append(f"edges: must be a list, got {_kind(edges)}")
        return
    for index, edge in enumerate(edges):
        where = f"edges[{index}]"
        if not isinstance(edge, dict):
            errors.append(f"{where}: must be an object, got {_kind(edge)}")
            continue
        for end in ("from", "to"):
            target = edge.get(end)
            if target is None:
                errors.append(f"{where}.{end}: required, a node id")
            elif target not in node_ids:
                errors.append(f"{where}.{end}: no node with id {target!r}{suggestion(str(target), node_ids)}")
        if not isinstance(edge.get("action", "default"), str):
            errors.append(f"{where}.action: must be a string, got {_kind(edge['action'])}")


def _input_errors(name: str, spec: Any) -> list[str]:
    if not NODE_ID.match(name):
        return [f"inputs.{name}: input names use letters, digits, '_' or '-'"]
    if not isinstance(spec, dict):
        return [f"inputs.{name}: must be an object, got {_kind(spec)}"]
    kind = spec.get("type", "string")
    if kind not in INPUT_TYPES:
        return [f"inputs.{name}.type: unknown type {kind!r}{suggestion(str(kind), INPUT_TYPES)}"]
    return []


def _template_errors(where: str, value: Any, names: Collection[str]) -> list[str]:
    errors = []
    for suffix, path in templates.references(value):
        head = path.split(".", 1)[0]
        if head not in names and not _is_root_key(head):
            errors.append(
                f"{where}{suffix}: ${{{path}}} names no input or node{suggestion(head, names)}"
            )
    return errors


def _is_root_key(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _mapping_field(ir: dict, key: str, errors: list[str]) -> dict:
    value = ir.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(f"{key}: must be an object, got {_kind(value)}")
        return {}
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )
