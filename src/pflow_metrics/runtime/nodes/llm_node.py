"""`llm`: one prompt through the `llm` library (any model its plugins provide)."""

from __future__ import annotations

from typing import Any

from pflow_metrics.runtime.nodes.base import WorkflowNode


class LLMNode(WorkflowNode):
    description = "Sends a prompt to a language model through the llm library."
    params_doc = {
        "prompt": "the prompt text",
        "system": "a system prompt (optional)",
        "model": "an llm model id or alias (default: llm's default model)",
        "temperature": "sampling temperature, for models that accept it (optional)",
        "max_tokens": "output token limit, for models that accept it (optional)",
    }
    writes = {"response": "the model's answer as text", "llm_usage": "model and token counts of the call"}
    required = ("prompt",)

    def prep(self, shared: Any) -> dict[str, Any]:
        options = {name: self.params[name] for name in ("temperature", "max_tokens") if self.params.get(name) is not None}
        return {
            "prompt": str(self.param("prompt")),
            "system": self.param("system"),
            "model": self.param("model"),
            "options": options,
        }

    def exec(self, prep_res: dict[str, Any]) -> dict[str, Any]:
        import llm

        model = llm.get_model(prep_res["model"])
        response = model.prompt(prep_res["prompt"], system=prep_res["system"], **prep_res["options"])
        text = response.text()
        return {"response": text, "llm_usage": usage_of(model, response)}

    def post(self, shared: Any, prep_res: Any, exec_res: dict[str, Any]) -> str:
        shared["response"] = exec_res["response"]
        shared["llm_usage"] = exec_res["llm_usage"]
        return "default"


def usage_of(model: Any, response: Any) -> dict[str, Any]:
    """A consumed `llm` response's usage in the `llm_usage` shape (raw counts and details; the
    instrumentation normalizes the token buckets)."""
    usage = response.usage()
    return {
        "model": model.model_id,
        "resolved_model": response.resolved_model,
        "input_tokens": usage.input or 0,
        "output_tokens": usage.output or 0,
        "details": usage.details or {},
    }
