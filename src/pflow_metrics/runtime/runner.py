"""Run a workflow (from IR, or planned from a request) as one metered, recorded run.

Validation and input binding happen before the run starts: a WorkflowInvalid then means
nothing was recorded. Once the run has started, run_workflow never raises for a failure
(not even an interrupt): the outcome carries the error and the recorded RunResult.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pflow_metrics.runtime import templates
from pflow_metrics.runtime.ir import WorkflowInvalid, bind_inputs, validate_workflow


@dataclass
class Plan:
    request: str
    model: str | None = None
    trace: bool = False  # --trace-planner
    save_to: Path | None = None


@dataclass
class WorkflowRun:
    result: Any  # instrumentation RunResult: run_id, status, summary, trace_path, ledger_warning
    outputs: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    failed_node: str | None = None
    planner_trace_path: Path | None = None
    saved_workflow: Path | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def check_workflow(ir: Any, given: dict[str, Any]) -> dict[str, Any]:
    """The bound inputs of a valid workflow; WorkflowInvalid lists every problem otherwise."""
    from pflow_metrics.runtime.registry import node_type_names

    errors = validate_workflow(ir, node_type_names())
    if errors:
        raise WorkflowInvalid(errors)
    return bind_inputs(ir, given)


def run_workflow(
    ir: dict[str, Any] | None,
    given: dict[str, Any],
    *,
    workflow: str,
    plan: Plan | None = None,
    ledger: bool | str = True,
    trace: bool = False,
    budget_usd: float | None = None,
    tags: dict[str, str] | None = None,
    store_prompts: bool = False,
    progress: Callable[[str, str, float], None] | None = None,
    otel: bool | None = None,
) -> WorkflowRun:
    """Plan (when `plan` is given), then run `ir` with the `given` inputs in one RunSession."""
    from pflow_metrics.instrumentation import RunSession
    from pflow_metrics.runtime.compiler import compile_workflow
    from pflow_metrics.runtime.wrappers import set_namespacing

    inputs = check_workflow(ir, given) if plan is None else None
    session = RunSession(workflow, ledger=ledger, trace=trace, budget_usd=budget_usd, tags=tags,
                         store_prompts=store_prompts, otel=otel)
    outcome = WorkflowRun(result=None)
    shared: dict[str, Any] = {}
    try:
        if plan is not None:
            ir = _plan(session, plan, given, outcome)
            inputs = bind_inputs(ir, given)
        shared.update(inputs)
        flow = set_namespacing(compile_workflow(ir, progress), ir.get("enable_namespacing", True) is not False)
        action = session.run_flow(flow, shared, phase="workflow")
        if action == "error":  # the last node failed and no `error` edge took the failure
            raise _unhandled_error_action(session.record.nodes, shared)
    except BaseException as exc:  # interrupts too: the run is recorded as failed, then reported
        outcome.error = exc
        outcome.result = session.finish(error=exc)
        outcome.failed_node = _failed_node(outcome.result) or getattr(exc, "node_id", None)
        return outcome
    outcome.result = session.finish()
    outcome.outputs = collect_outputs(ir, shared)
    return outcome


def collect_outputs(ir: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """Each declared output from its `source` template (or the root key of its name); an
    output the run never produced (a branch that did not run) is left out, as in pflow."""
    outputs = {}
    for name, spec in (ir.get("outputs") or {}).items():
        source = spec.get("source") or f"${{{name}}}"
        try:
            outputs[name] = templates.resolve(source, shared)
        except templates.TemplateError:
            continue
    return outputs


def _plan(session: Any, plan: Plan, given: dict[str, Any], outcome: WorkflowRun) -> dict[str, Any]:
    from pflow_metrics.runtime.planner import build_planner, planned_workflow, planner_shared

    shared = planner_shared(plan.request, given)
    planned = False
    try:
        session.run_flow(build_planner(plan.model), shared, phase="planner")
        ir = planned_workflow(shared)
        planned = True
    finally:
        # As pflow: with --trace-planner, and whenever planning fails (then a trace that
        # cannot be written is a warning: the planning error is the one to report).
        if plan.trace:
            outcome.planner_trace_path = write_planner_trace(shared["attempts"], session.run_id)
        elif not planned:
            try:
                outcome.planner_trace_path = write_planner_trace(shared["attempts"], session.run_id)
            except OSError as exc:
                warnings.warn(f"pflow-metrics: planner trace not written: {exc}", stacklevel=2)
    if plan.save_to is not None:
        plan.save_to.write_text(json.dumps(ir, indent=2) + "\n", encoding="utf-8")
        outcome.saved_workflow = plan.save_to
    return ir


def write_planner_trace(attempts: list[dict[str, Any]], run_id: str) -> Path:
    """$PFLOW_HOME/debug/planner-trace-<UTC time>-<run id prefix>.jsonl, one line per LLM call."""
    from pflow_metrics.config import PRIVATE_FILE_MODE, home_subdir
    from pflow_metrics.record import utcnow

    path = home_subdir("debug") / f"planner-trace-{utcnow():%Y%m%dT%H%M%S%fZ}-{run_id[:8]}.jsonl"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        for number, attempt in enumerate(attempts, 1):
            out.write(json.dumps({"attempt": number, **attempt}, default=str) + "\n")
    return path


def _unhandled_error_action(nodes: list[Any], shared: dict[str, Any]) -> BaseException:
    """The run's error when its last node returned `error` with no edge to follow: the `error`
    that node wrote (pflow's key), in its namespace or at the root."""
    from pflow_metrics.runtime.nodes.base import UnhandledErrorAction

    last = next((node for node in reversed(nodes) if node.phase == "workflow" and "/" not in node.node_id), None)
    node_id = last.node_id if last is not None else None
    space = shared.get(node_id) if node_id is not None else None
    message = space.get("error") if isinstance(space, dict) else None
    if not isinstance(message, str) or not message:
        message = shared.get("error") if isinstance(shared.get("error"), str) else None
    where = f"node '{node_id}'" if node_id else "the last node"
    return UnhandledErrorAction(message or f"{where} returned the 'error' action and no edge takes it", node_id)


def _failed_node(result: Any) -> str | None:
    record = getattr(result, "record", None)
    failed = [node for node in getattr(record, "nodes", None) or [] if node.status == "failed"]
    return failed[-1].node_id if failed else None
