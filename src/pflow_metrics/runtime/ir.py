"""Workflow IR 0.1.0: loading, validation and input binding, before anything runs.

Every problem is reported, one line each, with the path of the offending field
(`nodes[2].type: unknown node type 'lm' (did you mean 'llm'?)`): the first MAX_SHOWN_ERRORS of
them, then one line that counts the rest. Validation takes time linear in the size of the
workflow, however many nodes and problems it has; JSON nested deeper than MAX_DEPTH levels
(containers within containers, the workflow object being level 1) is refused before anything
walks it, since templates, traces and the ledger walk values recursively.
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
MAX_SHOWN_ERRORS = 20
MAX_DEPTH = 100
NODE_ID = re.compile(r"[A-Za-z_][\w-]*\Z")
INPUT_TYPES = ("string", "number", "integer", "boolean", "object", "array")
# pflow's IR schema is closed: these are the only keys each object may hold.
WORKFLOW_KEYS = ("ir_version", "nodes", "edges", "start_node", "mappings", "inputs", "outputs", "enable_namespacing")
NODE_KEYS = ("id", "type", "purpose", "params")
EDGE_KEYS = ("from", "to", "action")
INPUT_KEYS = ("description", "required", "type", "default")
OUTPUT_KEYS = ("description", "type", "source")
MAPPING_KEYS = ("input_mappings", "output_mappings")


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
    """The parsed JSON of a workflow; bad JSON and JSON nested past MAX_DEPTH raise WorkflowInvalid."""
    try:
        ir = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowInvalid(
            [f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"]
        ) from None
    except RecursionError:
        raise WorkflowInvalid([f"{source}: JSON nested deeper than {MAX_DEPTH} levels"]) from None
    except ValueError as exc:  # a number of more than 4,300 digits
        raise WorkflowInvalid([f"{source}: invalid JSON: {_shown(str(exc), 120, quote=False)}"]) from None
    if too_deep(ir) is not None:
        raise WorkflowInvalid([f"{source}: JSON nested deeper than {MAX_DEPTH} levels"])
    return ir


def too_deep(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """Where (`.nodes[0].params.x`: the path of the value at level 5 that holds it) a container
    is nested deeper than `limit` levels in `value` (itself level 1), or None. Iterative: it
    never recurses, whatever the depth."""
    if not isinstance(value, (dict, list)):
        return None
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        item, depth, path = stack.pop()
        if depth > limit:
            return path
        named = depth < _PATH_LEVELS
        if isinstance(item, dict):
            stack.extend((child, depth + 1, f"{path}.{key}" if named else path)
                         for key, child in item.items() if isinstance(child, (dict, list)))
        else:
            stack.extend((child, depth + 1, f"{path}[{index}]" if named else path)
                         for index, child in enumerate(item) if isinstance(child, (dict, list)))
    return None


_PATH_LEVELS = 5  # too_deep names the path down to this level


def suggestion(name: str, choices: Collection[str]) -> str:
    return _Suggester(choices)(name)


class _Suggester:
    """`(did you mean 'x'?)` for a name among `choices`, in bounded time per name: small sets go
    straight to difflib; large ones (a generated 20,000-node workflow) first narrow the choices
    to names within a deletion or two of the name (an index built once, on first use)."""

    DIRECT = 200  # difflib compares every choice: fine for this many
    LONGEST = 64  # names longer than this get no suggestion

    def __init__(self, choices: Collection[str]):
        self.choices = [choice for choice in choices if isinstance(choice, str)]
        self._index: dict[str, list[str]] | None = None

    def __call__(self, name: str) -> str:
        if not isinstance(name, str) or not name or len(name) > self.LONGEST:
            return ""
        candidates = self.choices if len(self.choices) <= self.DIRECT else self._near(name)
        close = difflib.get_close_matches(name, candidates, n=1)
        return f" (did you mean '{close[0]}'?)" if close else ""

    def _near(self, name: str) -> list[str]:
        if self._index is None:
            self._index = {}
            for choice in self.choices:
                if len(choice) <= self.LONGEST:
                    for variant in _deletions(choice):
                        self._index.setdefault(variant, []).append(choice)
        near = {choice for variant in _deletions(name) for choice in self._index.get(variant, ())}
        return sorted(near)


def _deletions(word: str) -> set[str]:
    return {word, *(word[:i] + word[i + 1:] for i in range(len(word)))}


def validate_workflow(ir: Any, node_types: Collection[str]) -> list[str]:
    """The structural problems of `ir`, one line each (the first MAX_SHOWN_ERRORS, then a line
    that counts the rest); empty when it can be compiled."""
    if not isinstance(ir, dict):
        return [f"(root): a workflow must be a JSON object, got {_kind(ir)}"]
    deep = too_deep(ir)
    if deep is not None:
        return [f"{deep.lstrip('.') or '(root)'}: nested deeper than {MAX_DEPTH} levels"]
    errors = _Problems()
    _unknown_keys("", ir, WORKFLOW_KEYS, errors)
    version = ir.get("ir_version")
    if version is None:
        errors.append(f"ir_version: required (use \"{IR_VERSION}\")")
    elif version != IR_VERSION:
        errors.append(f"ir_version: unsupported version {_shown(version)} (expected \"{IR_VERSION}\")")
    inputs = _mapping_field(ir, "inputs", errors)
    for name, spec in inputs.items():
        if isinstance(spec, dict) and isinstance(name, str) and NODE_ID.match(name):
            _unknown_keys(f"inputs.{name}", spec, INPUT_KEYS, errors)
        errors.extend(_input_errors(name, spec))
    namespacing = ir.get("enable_namespacing", True)
    if not isinstance(namespacing, bool):
        errors.append(f"enable_namespacing: must be true or false, got {_kind(namespacing)}")
    node_ids = _node_errors(ir, inputs, node_types, errors, namespaced=namespacing is not False)
    suggest = errors.suggester(node_ids)
    _edge_errors(ir, node_ids, suggest, errors)
    start = ir.get("start_node")
    if start is not None:
        if not isinstance(start, str):
            errors.append(f"start_node: must be a node id (a string), got {_kind(start)}")
        elif start not in node_ids:
            errors.append(f"start_node: no node with id {_shown(start)}{suggest(start)}")
    _mappings_errors(ir, node_ids, suggest, errors)
    names = set(inputs) | node_ids if namespacing is not False else _ANY_NAME
    suggest_name = errors.suggester(names)
    for name, spec in _mapping_field(ir, "outputs", errors).items():
        if not isinstance(spec, dict):
            errors.append(f"outputs.{name}: must be an object, got {_kind(spec)}")
            continue
        _unknown_keys(f"outputs.{name}", spec, OUTPUT_KEYS, errors)
        if "source" in spec and not isinstance(spec["source"], str):
            errors.append(f"outputs.{name}.source: must be a template (a string), got {_kind(spec['source'])}")
        for field in ("description", "type"):
            if field in spec and not isinstance(spec[field], str):
                errors.append(f"outputs.{name}.{field}: must be a string, got {_kind(spec[field])}")
        _template_errors(f"outputs.{name}.source", spec.get("source"), names, suggest_name, errors)
    return errors.lines()


def _unknown_keys(where: str, value: dict, allowed: tuple[str, ...], errors: _Problems) -> None:
    """One line per key of `value` that pflow's closed schema does not allow there, naming it."""
    if len(value) <= len(allowed) and all(key in allowed for key in value):
        return  # the common case, without building a suggester
    suggest = errors.suggester(allowed)
    for key in value:
        if key not in allowed:
            shown = _shown(key, 60, quote=False) if isinstance(key, str) else _shown(key)
            errors.append(f"{where + '.' if where else ''}{shown}: unknown key{suggest(key)} "
                          f"(allowed: {', '.join(allowed)})")


def _mappings_errors(ir: dict, node_ids: set[str], suggest, errors: _Problems) -> None:
    """pflow's `mappings`: node id -> {"input_mappings": {...}, "output_mappings": {...}}, each
    mapping names to names. Accepted and checked; this runtime does not apply them."""
    for node_id, spec in _mapping_field(ir, "mappings", errors).items():
        where = f"mappings.{_shown(node_id, 60, quote=False)}"
        if node_id not in node_ids:
            errors.append(f"{where}: no node with id {_shown(node_id)}{suggest(node_id)}")
        if not isinstance(spec, dict):
            errors.append(f"{where}: must be an object, got {_kind(spec)}")
            continue
        _unknown_keys(where, spec, MAPPING_KEYS, errors)
        for field in MAPPING_KEYS:
            table = spec.get(field, {})
            if not isinstance(table, dict):
                errors.append(f"{where}.{field}: must be an object, got {_kind(table)}")
            elif not all(isinstance(target, str) for target in table.values()):
                errors.append(f"{where}.{field}: every value must be a string")


class _Problems(list):
    """The problems found: the first MAX_SHOWN_ERRORS kept, the rest only counted. Suggestions
    (the costly part of a message) are only looked for while messages are still kept."""

    def __init__(self, limit: int = MAX_SHOWN_ERRORS):
        super().__init__()
        self.limit = limit
        self.more = 0

    @property
    def full(self) -> bool:
        return len(self) >= self.limit

    def append(self, message: str) -> None:
        if self.full:
            self.more += 1
        else:
            super().append(message)

    def extend(self, messages) -> None:
        for message in messages:
            self.append(message)

    def suggester(self, choices: Collection[str]):
        suggest = _Suggester(choices)
        return lambda name: "" if self.full else suggest(name)

    def lines(self) -> list[str]:
        return [*self, *([f"and {self.more} more problems"] if self.more else [])]


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
                continue
            if too_deep(values[name]) is not None:
                errors.append(f"inputs.{name}: nested deeper than {MAX_DEPTH} levels")
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
    except (ValueError, RecursionError):  # not JSON, a 5,000-digit number, nesting past the stack
        parsed = None
    expected = {"object": dict, "array": list, "boolean": bool, "integer": int, "number": (int, float)}
    if isinstance(parsed, expected[kind]) and not (kind in ("integer", "number") and isinstance(parsed, bool)):
        return parsed
    raise ValueError(f"expected {kind}, got {_shown(value)}")


class _AnyName(frozenset):
    """The names a template may start with when namespacing is off: nodes write at the root
    of the shared store, under keys no validation can know, so any (checked when it runs)."""

    def __contains__(self, name: object) -> bool:
        return True


_ANY_NAME = _AnyName()


def _node_errors(ir: dict, inputs: dict, node_types: Collection[str], errors: _Problems,
                 namespaced: bool = True) -> set[str]:
    nodes = ir.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        errors.append("nodes: required, a non-empty list of nodes")
        return set()
    first_use: dict[str, int] = {}
    suggest_type = errors.suggester(node_types)
    for index, node in enumerate(nodes):
        where = f"nodes[{index}]"
        if not isinstance(node, dict):
            errors.append(f"{where}: must be an object, got {_kind(node)}")
            continue
        _unknown_keys(where, node, NODE_KEYS, errors)
        if "purpose" in node and not isinstance(node["purpose"], str):
            errors.append(f"{where}.purpose: must be a string, got {_kind(node['purpose'])}")
        node_id = node.get("id")
        if not isinstance(node_id, str) or not NODE_ID.match(node_id):
            errors.append(f"{where}.id: required, letters, digits, '_' or '-', got {_shown(node_id)}")
        elif node_id in first_use:
            errors.append(f"{where}.id: duplicate id {_shown(node_id)} (first used by nodes[{first_use[node_id]}])")
        elif node_id in inputs:
            errors.append(f"{where}.id: {_shown(node_id)} is also the name of an input")
        else:
            first_use[node_id] = index
        node_type = node.get("type")
        if not isinstance(node_type, str) or not node_type:
            errors.append(f"{where}.type: required, one of {', '.join(sorted(node_types))}")
        elif node_type not in node_types:
            errors.append(f"{where}.type: unknown node type {_shown(node_type)}{suggest_type(node_type)}")
        if not isinstance(node.get("params", {}), dict):
            errors.append(f"{where}.params: must be an object, got {_kind(node['params'])}")
    names = set(inputs) | set(first_use) if namespaced else _ANY_NAME
    suggest_name = errors.suggester(names)
    for index, node in enumerate(nodes):
        if isinstance(node, dict) and isinstance(node.get("params"), dict):
            params = node["params"]
            if node.get("type") == "workflow":  # an inline child's templates are its own, checked when it runs
                params = {key: value for key, value in params.items() if key != "workflow_ir"}
            _template_errors(f"nodes[{index}].params", params, names, suggest_name, errors)
    return set(first_use)


def _edge_errors(ir: dict, node_ids: set[str], suggest, errors: _Problems) -> None:
    edges = ir.get("edges", [])
    if not isinstance(edges, list):
        errors.append(f"edges: must be a list, got {_kind(edges)}")
        return
    for index, edge in enumerate(edges):
        where = f"edges[{index}]"
        if not isinstance(edge, dict):
            errors.append(f"{where}: must be an object, got {_kind(edge)}")
            continue
        _unknown_keys(where, edge, EDGE_KEYS, errors)
        for end in ("from", "to"):
            target = edge.get(end)
            if target is None:
                errors.append(f"{where}.{end}: required, a node id")
            elif not isinstance(target, str):
                errors.append(f"{where}.{end}: must be a node id (a string), got {_kind(target)}")
            elif target not in node_ids:
                errors.append(f"{where}.{end}: no node with id {_shown(target)}{suggest(target)}")
        if not isinstance(edge.get("action", "default"), str):
            errors.append(f"{where}.action: must be a string, got {_kind(edge['action'])}")


def _input_errors(name: str, spec: Any) -> list[str]:
    if not NODE_ID.match(name):
        return [f"inputs.{_shown(name, 60, quote=False)}: input names use letters, digits, '_' or '-'"]
    if not isinstance(spec, dict):
        return [f"inputs.{name}: must be an object, got {_kind(spec)}"]
    if not isinstance(spec.get("required", True), bool):
        return [f"inputs.{name}.required: must be true or false, got {_kind(spec['required'])}"]
    kind = spec.get("type", "string")
    if not isinstance(kind, str) or kind not in INPUT_TYPES:
        return [f"inputs.{name}.type: unknown type {_shown(kind)}{suggestion(kind, INPUT_TYPES)}"]
    return []


def _template_errors(where: str, value: Any, names: Collection[str], suggest, errors: _Problems) -> None:
    for suffix, path in templates.references(value):
        head = path.split(".", 1)[0]
        if head not in names and not _is_root_key(head):
            errors.append(f"{where}{suffix}: ${{{_shown(path, 80, quote=False)}}} names no input or node{suggest(head)}")


def _is_root_key(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _mapping_field(ir: dict, key: str, errors: _Problems) -> dict:
    value = ir.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(f"{key}: must be an object, got {_kind(value)}")
        return {}
    return value


def _shown(value: Any, limit: int = 60, quote: bool = True) -> str:
    """A value for an error line: its repr (or text), cut to `limit` characters."""
    if type(value) is int and value.bit_length() > 200:
        return f"a {value.bit_length()}-bit number"
    text = repr(value) if quote else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )
