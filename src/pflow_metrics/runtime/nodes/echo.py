"""`echo`: writes its params back to the shared store; deterministic, for tests and demos."""

from __future__ import annotations

from typing import Any

from pflow_metrics.runtime.nodes.base import WorkflowNode


class EchoNode(WorkflowNode):
    description = "Writes each of its params to the shared store unchanged. Param 'action' picks the next edge."
    params_doc = {"<any>": "any value; written under the same key", "action": "the action to return (default 'default')"}
    writes = {"<each param>": "the param's value"}

    def prep(self, shared: Any) -> dict[str, Any]:
        return dict(self.params)

    def exec(self, params: dict[str, Any]) -> dict[str, Any]:
        return params

    def post(self, shared: Any, prep_res: Any, exec_res: dict[str, Any]) -> str:
        for key, value in exec_res.items():
            shared[key] = value
        return str(exec_res.get("action") or "default")
