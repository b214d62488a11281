"""`llm`: one prompt through the `llm` library (any model its plugins provide), with pflow's
interface: `prompt` and `system` from the shared store first, then the params; `model`,
`temperature` and `max_tokens` from the params. Writes `response` and `llm_usage` (pflow's keys;
`{}` when the model reports no usage). A failed call writes `error` and returns `error`.
"""

from __future__ import annotations

from typing import Any

from pflow_metrics.runtime.nodes.base import WorkflowNode, describe, fail

OPTIONS = ("temperature", "max_tokens")


class LLMNode(WorkflowNode):
    description = "Sends a prompt to a language model through the llm library."
    params_doc = {
        "prompt": "the prompt text (shared store first, then params)",
        "system": "a system prompt (optional; shared store first, then params)",
        "model": "an llm model id or alias (default: llm's default model)",
        "temperature": "sampling temperature 0-2, passed only to models that accept it (optional)",
        "max_tokens": "output token limit, passed only to models that accept it (optional)",
    }
    writes = {
        "response": "the model's answer as text",
        "llm_usage": "model, input_tokens, output_tokens, total_tokens, cache_creation_input_tokens, "
                     "cache_read_input_tokens ({} when the model reports none)",
        "error": "why the call failed (action 'error')",
    }

    def prep(self, shared: Any) -> dict[str, Any]:
        options = {name: self.params[name] for name in OPTIONS if self.params.get(name) is not None}
        if "temperature" in options:
            try:
                options["temperature"] = max(0.0, min(2.0, float(options["temperature"])))
            except (TypeError, ValueError):
                pass  # the model's own validation names the problem
        prompt = self.read(shared, "prompt", required=True)
        system = self.read(shared, "system")
        return {
            "prompt": prompt if isinstance(prompt, str) else str(prompt),
            "system": None if system is None else str(system),
            "model": self.params.get("model") or None,
            "options": options,
        }

    def exec(self, prep_res: dict[str, Any]) -> dict[str, Any]:
        import llm

        model = llm.get_model(prep_res["model"])
        options = accepted_options(model, prep_res["options"])
        response = model.prompt(prep_res["prompt"], system=prep_res["system"], **options)
        text = response.text()
        return {"response": text, "llm_usage": usage_of(model, response)}

    def exec_fallback(self, prep_res: dict[str, Any], exc: Exception) -> dict[str, Any]:
        model = prep_res.get("model") or "the default model"
        return {"error": f"LLM call to {model} failed: {describe(exc)}", "exception": exc}

    def post(self, shared: Any, prep_res: Any, exec_res: dict[str, Any]) -> str:
        if "error" in exec_res:
            return fail(self, shared, exec_res["error"], exec_res["exception"])
        shared["response"] = exec_res["response"]
        shared["llm_usage"] = exec_res["llm_usage"]
        return "default"


def accepted_options(model: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The options the model's Options declare (others are dropped: the offline `echo` model
    takes neither temperature nor max_tokens)."""
    fields = getattr(getattr(model, "Options", None), "model_fields", None)
    if not isinstance(fields, dict):
        return dict(options)
    return {name: value for name, value in options.items() if name in fields}


def usage_of(model: Any, response: Any) -> dict[str, Any]:
    """A consumed `llm` response's usage in pflow's `llm_usage` shape, plus `resolved_model` and
    the provider's raw `details` (the instrumentation normalizes the token buckets); {} when the
    model reported no token counts."""
    usage = response.usage()
    if usage is None or (usage.input is None and usage.output is None):
        return {}
    details = usage.details or {}
    input_tokens, output_tokens = usage.input or 0, usage.output or 0
    return {
        "model": model.model_id,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "cache_creation_input_tokens": _count(details.get("cache_creation_input_tokens")),
        "cache_read_input_tokens": _count(details.get("cache_read_input_tokens")),
        "resolved_model": response.resolved_model,
        "details": details,
    }


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
