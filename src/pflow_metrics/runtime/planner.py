"""The planner: a PocketFlow flow that turns a request into a workflow with an LLM.

generate-workflow -> validate-workflow -> (errors) -> generate-workflow again with the errors,
at most MAX_ATTEMPTS answers -> end-planning. The runner runs it in the same RunSession as the workflow that
follows, with phase="planner", so its LLM calls are metered and recorded as the planner's.
Every prompt, answer, usage and duration is kept in `shared["attempts"]` (for --trace-planner),
redacted: a request may carry a key, and the answers may repeat it. The planner itself works
on the answers as given, kept apart in `shared["answers"]` (response and errors).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Collection, Mapping
from typing import Any

from pocketflow import Flow, Node

from pflow_metrics.errors import PflowMetricsError
from pflow_metrics.redaction import redact
from pflow_metrics.runtime.ir import IR_VERSION, WorkflowInvalid, bind_inputs, parse_workflow, validate_workflow
from pflow_metrics.runtime.nodes.llm_node import usage_of

MAX_ATTEMPTS = 3
_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)

SYSTEM_PROMPT = f"""You write workflows for pflow-metrics as JSON (IR {IR_VERSION}).
Shape: {{"ir_version": "{IR_VERSION}",
 "inputs": {{"name": {{"description": "...", "type": "string", "required": true}}}},
 "outputs": {{"name": {{"description": "...", "source": "${{node_id.key}}"}}}},
 "nodes": [{{"id": "node_id", "type": "<node type>", "purpose": "...", "params": {{...}}}}],
 "edges": [{{"from": "node_id", "to": "other_id", "action": "default"}}]}}
Params may use templates: ${{input_name}} for an input, ${{node_id.key}} for what an earlier node wrote.
Use only the node types of the catalogue. Answer with the JSON object only."""


class PlanningFailed(PflowMetricsError):
    """The planner gave up: no valid workflow after MAX_ATTEMPTS answers."""

    exit_code = 1


class GenerateWorkflow(Node):
    node_id = "generate-workflow"

    def __init__(self, model_name: str | None):
        super().__init__()
        self.model_name = model_name

    def prep(self, shared: dict[str, Any]) -> str:
        return planner_prompt(shared["request"], shared["catalogue"], shared["inputs"], _answers(shared))

    def exec(self, prompt: str) -> dict[str, Any]:
        import llm

        model = llm.get_model(self.model_name)
        started = time.perf_counter()
        response = model.prompt(prompt, system=SYSTEM_PROMPT)
        text = response.text()
        return {
            "prompt": prompt,
            "system": SYSTEM_PROMPT,
            "response": text,
            "duration_ms": (time.perf_counter() - started) * 1000,
            "usage": usage_of(model, response),
        }

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: dict[str, Any]) -> str:
        shared.setdefault("answers", []).append({"response": exec_res["response"], "errors": []})
        shared["attempts"].append({**exec_res, **{key: redact(exec_res.get(key)) for key in _TEXTS}})
        shared["llm_usage"] = exec_res["usage"]
        return "validate"


class ValidateWorkflow(Node):
    node_id = "validate-workflow"

    def prep(self, shared: dict[str, Any]) -> tuple[str, Collection[str], Mapping[str, Any]]:
        return _answers(shared)[-1]["response"], shared["node_types"], shared["inputs"]

    def exec(self, prep_res: tuple[str, Collection[str], Mapping[str, Any]]) -> tuple[dict | None, list[str]]:
        answer, node_types, inputs = prep_res
        try:
            ir = parse_workflow(extract_json(answer), source="(answer)")
        except WorkflowInvalid as invalid:  # bad JSON, too deep, a 5,000-digit number: back to the model
            return None, invalid.errors
        errors = validate_workflow(ir, node_types)
        if not errors:
            try:
                bind_inputs(ir, inputs)
            except WorkflowInvalid as invalid:
                errors = invalid.errors
        return (None if errors else ir), errors

    def post(self, shared: dict[str, Any], prep_res: Any, exec_res: tuple[dict | None, list[str]]) -> str:
        ir, errors = exec_res
        _answers(shared)[-1]["errors"] = errors
        shared["attempts"][-1]["errors"] = [redact(error) for error in errors]
        if ir is not None:
            shared["workflow"] = ir
            return "done"
        return "retry" if len(shared["attempts"]) < MAX_ATTEMPTS else "give-up"


class EndPlanning(Node):
    """Where both "done" and "give-up" lead, so the flow ends on a known action."""

    node_id = "end-planning"


def build_planner(model_name: str | None) -> Flow:
    generate, validate, end = GenerateWorkflow(model_name), ValidateWorkflow(), EndPlanning()
    generate - "validate" >> validate
    validate - "retry" >> generate
    validate - "done" >> end
    validate - "give-up" >> end
    return Flow(start=generate)


def planner_shared(request: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    from pflow_metrics.runtime.registry import catalogue

    entries = catalogue()
    return {
        "request": request,
        "inputs": dict(inputs),
        "catalogue": entries,
        "node_types": [entry["type"] for entry in entries],
        "attempts": [],
        "answers": [],
        "__llm_calls__": [],
    }


_TEXTS = ("prompt", "system", "response")


def _answers(shared: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The answers as given (a store built without "answers" has only the attempts)."""
    return shared.get("answers") or shared["attempts"]


def planned_workflow(shared: Mapping[str, Any]) -> dict[str, Any]:
    """The workflow the planner produced; PlanningFailed with the last errors otherwise."""
    if "workflow" in shared:
        return shared["workflow"]
    last = shared["attempts"][-1]["errors"] if shared["attempts"] else []
    raise PlanningFailed(
        f"the planner found no valid workflow in {len(shared['attempts'])} attempts; last errors: "
        + "; ".join(last)
    )


def planner_prompt(request: str, catalogue: list[dict], inputs: Mapping[str, Any], attempts: list[dict]) -> str:
    parts = [
        f"Request: {request}",
        "Node types:\n" + json.dumps(catalogue, indent=1),
    ]
    if inputs:
        parts.append(
            "The user gives these inputs; declare each under \"inputs\" and use them: "
            + ", ".join(sorted(inputs))
        )
    if attempts:
        last = attempts[-1]
        parts.append(
            "Your previous answer was invalid:\n" + last["response"]
            + "\nFix these errors:\n" + "\n".join(last["errors"])
        )
    return "\n\n".join(parts)


def extract_json(answer: str) -> str:
    """The JSON object of an answer that may wrap it in a code fence or prose."""
    fenced = _FENCED.search(answer)
    text = fenced.group(1) if fenced else answer
    start, end = text.find("{"), text.rfind("}")
    return text[start:end + 1] if 0 <= start < end else text
