"""`workflow`: runs another workflow as one node (pflow's nested workflows).

The child comes from `workflow_name` (a workflow saved in $PFLOW_HOME/workflows, as pflow saves
them), `workflow_ref` (a JSON file; a relative path is taken from the file of the workflow that
runs it, or the working directory at the top level) or inline `workflow_ir`. It is
compiled by the same compiler and, inside a metered run, instrumented under the same RunSession
with its node ids prefixed by this node's (`parent/child`, `grand/parent/child`): its nodes and
their LLM calls appear once each in the summary, the trace and the ledger.

Storage modes (pflow's): "mapped" (default; the child sees only `param_mapping`), "isolated" (an
empty store), "scoped" (the parent's keys starting with `scope_prefix`, default "child_", with the
prefix removed, plus `param_mapping`) and "shared" (the store as this node sees it: the child's
writes land under this node's namespace). `output_mapping` copies child values (a key, a dotted
path like `ask.response`, or a declared output of the child) to keys of this node, except in
"shared" mode. Nesting deeper than `max_depth` (default 10) or a workflow file that runs itself
fails the node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pflow_metrics.runtime.nodes.base import NodeFailed, NodeParamError, Verbatim, WorkflowNode, describe, fail

MAX_DEPTH_DEFAULT = 10
STORAGE_MODES = ("mapped", "isolated", "scoped", "shared")
DEPTH_KEY, STACK_KEY, FILE_KEY = "_pflow_depth", "_pflow_stack", "_pflow_workflow_file"
PREFIX_KEY = "_pflow_node_prefix"  # the full id of the workflow node running the child, plus "/"
LLM_CALLS_KEY = "__llm_calls__"


class WorkflowExecutorNode(WorkflowNode):
    description = "Runs another workflow (a file or inline IR) as one node, with mapped inputs and outputs."
    params_doc = {
        "workflow_name": "a saved workflow: $PFLOW_HOME/workflows/<name>.json (pflow's saved format or plain IR)",
        "workflow_ref": "path of the workflow JSON file to run",
        "workflow_ir": "the workflow to run, inline (instead of workflow_ref)",
        "param_mapping": "object: child input name -> value (templates allowed)",
        "output_mapping": "object: child key or dotted path or declared output -> key written by this node",
        "storage_mode": "mapped (default), isolated, scoped or shared",
        "scope_prefix": "scoped mode: which parent keys the child sees (default 'child_')",
        "max_depth": f"maximum nesting depth (default {MAX_DEPTH_DEFAULT})",
        "error_action": "the action returned when the child fails (default 'error')",
    }
    # Its child nodes record their own LLM usage: the instrumentation counts none for this node
    # itself, even when output_mapping copies a child's `llm_usage` into the parent's store.
    runs_child_nodes = True
    verbatim_params = ("workflow_ir",)  # the child's own templates: not resolved against the parent
    writes = {"<each output_mapping target>": "the mapped child value", "error": "why the child failed"}

    def prep(self, shared: Any) -> dict[str, Any]:
        name = self.params.get("workflow_name")
        ref, inline = self.params.get("workflow_ref"), Verbatim.unwrap(self.params.get("workflow_ir"))
        if sum(bool(source) for source in (name, ref, inline)) != 1:
            raise NodeParamError("exactly one of params 'workflow_name', 'workflow_ref' and 'workflow_ir' is required")
        if name:
            if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
                raise NodeParamError(f"param 'workflow_name' must be a saved workflow's name, got {name!r}")
            from pflow_metrics.config import pflow_home

            ref = str(pflow_home() / "workflows" / f"{name}.json")  # where pflow saves workflows
        mode = self.params.get("storage_mode") or "mapped"
        if mode not in STORAGE_MODES:
            raise NodeParamError(f"param 'storage_mode' must be one of {', '.join(STORAGE_MODES)}, got {mode!r}")
        for name in ("param_mapping", "output_mapping"):
            if not isinstance(self.params.get(name) or {}, dict):
                raise NodeParamError(f"param '{name}' must be an object")
        depth = _get(shared, DEPTH_KEY, 0)
        stack = list(_get(shared, STACK_KEY, None) or [])
        path = None
        if ref:
            path = Path(str(ref)).expanduser()
            parent_file = _get(shared, FILE_KEY, None)
            if not path.is_absolute() and isinstance(parent_file, str) and parent_file != "<inline>":
                path = Path(parent_file).parent / path
            path = path.resolve()
        return {
            "ref": ref, "inline": inline, "path": path, "mode": mode,
            "depth": depth if isinstance(depth, int) else 0, "stack": stack,
            "max_depth": int(self.params.get("max_depth") or MAX_DEPTH_DEFAULT),
            "child_params": dict(self.params.get("param_mapping") or {}),
            "shared": shared,
            "parent_file": _get(shared, FILE_KEY, None),
            "prefix": f"{_get(shared, PREFIX_KEY, '') or ''}{getattr(self, 'node_id', None) or 'workflow'}/",
        }

    def exec(self, prep_res: dict[str, Any]) -> dict[str, Any]:
        from pflow_metrics.runtime.ir import WorkflowInvalid, bind_inputs, load_workflow, validate_workflow
        from pflow_metrics.runtime.registry import node_type_names

        if prep_res["depth"] >= prep_res["max_depth"]:
            raise RecursionError(f"maximum workflow nesting depth ({prep_res['max_depth']}) exceeded")
        path = prep_res["path"]
        if path is not None:
            if str(path) in prep_res["stack"]:
                raise RecursionError("circular workflow reference: " + " -> ".join([*prep_res["stack"], str(path)]))
            ir = load_workflow(path)
            if isinstance(ir, dict) and "nodes" not in ir and isinstance(ir.get("ir"), dict):
                ir = ir["ir"]  # a workflow pflow saved: its metadata wraps the IR
        else:
            ir = prep_res["inline"]
            if isinstance(ir, str):
                from pflow_metrics.runtime.ir import parse_workflow

                ir = parse_workflow(ir, source="workflow_ir")
        ir = _with_mapped_inputs(ir, prep_res["child_params"])
        errors = validate_workflow(ir, node_type_names())
        if errors:
            raise WorkflowInvalid(errors)
        saved = _saved_context(prep_res["shared"]) if prep_res["mode"] == "shared" else None
        try:
            storage = self._child_storage(prep_res)
            declared = ir.get("inputs") or {}
            given = {name: storage[name] for name in declared if name in storage}
            storage.update(bind_inputs(ir, given))
            action = _run_child(ir, storage, prep_res["prefix"])
        finally:
            if saved is not None:  # the parent's own depth, stack, file and id prefix come back
                _restore_context(prep_res["shared"], saved)
        if action == "error":
            raise NodeFailed(_child_error(storage) or "the child workflow ended with the 'error' action")
        return {"action": action, "storage": storage, "ir": ir}

    def _child_storage(self, prep_res: dict[str, Any]) -> Any:
        parent, mode = prep_res["shared"], prep_res["mode"]
        if mode == "shared":
            storage = parent
        elif mode == "isolated":
            storage = {}
        elif mode == "scoped":
            prefix = str(self.params.get("scope_prefix") or "child_")
            storage = {key[len(prefix):]: value for key, value in _items(parent)
                       if isinstance(key, str) and key.startswith(prefix) and not key.startswith("_pflow_")}
            storage.update(prep_res["child_params"])
        else:
            storage = dict(prep_res["child_params"])
        storage[DEPTH_KEY] = prep_res["depth"] + 1
        storage[STACK_KEY] = [*prep_res["stack"], str(prep_res["path"] or "<inline>")]
        # Relative workflow_ref paths in the child: from its file, or (inline) from its parent's.
        storage[FILE_KEY] = str(prep_res["path"] or prep_res["parent_file"] or "<inline>")
        storage[PREFIX_KEY] = prep_res["prefix"]
        calls = _get(parent, LLM_CALLS_KEY, None)
        if isinstance(calls, list) and mode != "shared":
            storage[LLM_CALLS_KEY] = calls  # one list of the run's calls, as the runtime keeps it
        return storage

    def exec_fallback(self, prep_res: dict[str, Any], exc: Exception) -> dict[str, Any]:
        where = str(prep_res.get("path") or "<inline>")
        return {"error": f"workflow {where} failed: {describe(exc)}", "exception": exc}

    def post(self, shared: Any, prep_res: Any, exec_res: dict[str, Any]) -> str:
        if "error" in exec_res:
            if _is_budget(exec_res["exception"]):
                raise exec_res["exception"]
            return fail(self, shared, exec_res["error"], exec_res["exception"],
                        action=str(self.params.get("error_action") or "error"))
        if prep_res["mode"] != "shared":
            for child_key, parent_key in (self.params.get("output_mapping") or {}).items():
                found, value = _child_value(exec_res["storage"], exec_res["ir"], str(child_key))
                if found and not str(parent_key).startswith("_pflow_"):
                    shared[str(parent_key)] = value
        action = exec_res["action"]
        return action if isinstance(action, str) and action else "default"


def _with_mapped_inputs(ir: Any, child_params: dict[str, Any]) -> Any:
    """The child IR with each mapped param it does not declare added as an optional input, so
    its templates may name them (pflow resolves a child's templates against the mapped params)."""
    from pflow_metrics.runtime.ir import NODE_ID

    if not isinstance(ir, dict):
        return ir  # validation says what is wrong with it
    declared = ir.get("inputs") if isinstance(ir.get("inputs"), dict) else {}
    node_ids = {node.get("id") for node in ir.get("nodes") or [] if isinstance(node, dict)}
    extra = {name: {"type": "string", "required": False} for name in child_params
             if isinstance(name, str) and NODE_ID.match(name) and name not in declared and name not in node_ids}
    if not extra or not isinstance(ir.get("inputs", {}), dict):
        return ir
    return {**ir, "inputs": {**extra, **declared}}


_CONTEXT_KEYS = (DEPTH_KEY, STACK_KEY, FILE_KEY, PREFIX_KEY)


def _saved_context(store: Any) -> dict[str, Any]:
    missing = object()
    saved = {}
    for key in _CONTEXT_KEYS:
        try:
            saved[key] = store[key] if key in store else missing
        except Exception:
            saved[key] = missing
    saved["__missing__"] = missing
    return saved


def _restore_context(store: Any, saved: dict[str, Any]) -> None:
    missing = saved["__missing__"]
    for key in _CONTEXT_KEYS:
        try:
            if saved[key] is missing:
                if key in store:
                    del store[key]
            else:
                store[key] = saved[key]
        except Exception:
            pass


def _run_child(ir: dict[str, Any], storage: Any, prefix: str) -> Any:
    """Compile and run the child; inside a metered run its nodes are instrumented as `prefix` +
    their ids in the run's session (the parent's wrapper left the session current)."""
    from pflow_metrics.instrumentation.current import current_session
    from pflow_metrics.instrumentation.wrapper import instrument_graph
    from pflow_metrics.runtime.compiler import compile_workflow

    flow = compile_workflow(ir)
    from pflow_metrics.runtime import wrappers

    set_namespacing = getattr(wrappers, "set_namespacing", None)  # pflow's enable_namespacing
    if set_namespacing is not None:
        set_namespacing(flow, ir.get("enable_namespacing", True) is not False)
    if current_session.get() is not None:
        flow = instrument_graph(flow, "workflow", prefix=prefix)
    return flow._run(storage)


def _child_value(storage: Any, ir: dict[str, Any], key: str) -> tuple[bool, Any]:
    from pflow_metrics.runtime import templates

    try:
        return True, templates.lookup(key, storage)
    except templates.TemplateError:
        pass
    spec = (ir.get("outputs") or {}).get(key)
    if isinstance(spec, dict):
        try:
            return True, templates.resolve(spec.get("source") or f"${{{key}}}", storage)
        except templates.TemplateError:
            return False, None
    return False, None


def _child_error(storage: Any) -> str | None:
    """The `error` a child node wrote (in its namespace, or at the root)."""
    found = None
    for key, value in _items(storage):
        if isinstance(value, dict) and isinstance(value.get("error"), str):
            found = value["error"]  # the last node to write one
    return found or (_get(storage, "error", None) if isinstance(_get(storage, "error", None), str) else None)


def _items(store: Any) -> list[tuple[Any, Any]]:
    try:
        return [(key, store[key]) for key in list(store)]
    except Exception:
        return []


def _get(store: Any, key: str, default: Any) -> Any:
    try:
        value = store.get(key)
    except Exception:
        return default
    return default if value is None else value


def _is_budget(exc: BaseException) -> bool:
    from pflow_metrics.instrumentation.errors import BudgetExceeded

    return isinstance(exc, BudgetExceeded)

