"""Capture calls made through Simon Willison's `llm` library while an instrumented node runs.

Responses are lazy: usage exists only once a response is consumed, by text(), iteration or
usage(). `llm` runs `done_callbacks` at that moment, sync and async alike, so every response
created while a node runs gets a callback that reports its usage to that node's sink. The sink
lives in a ContextVar, so concurrent async nodes each see their own.

The hook is installed once, and only when `llm` is already imported: an instrumented run that
never uses `llm` never imports it.
"""

from __future__ import annotations

import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# The current node's list of captured usage dicts (see InstrumentedNodeWrapper).
current_sink: ContextVar[list[dict[str, Any]] | None] = ContextVar("pflow_metrics_llm_sink", default=None)

_installed = False


def install_if_loaded() -> None:
    """Hook `llm` responses if the library is loaded (cheap to call before every node)."""
    global _installed
    if _installed or "llm" not in sys.modules:
        return
    from llm import models

    original_init = models._BaseResponse.__init__

    def init_and_watch(response, *args, **kwargs):
        original_init(response, *args, **kwargs)
        sink = current_sink.get()
        if sink is not None:
            started = time.perf_counter()
            started_at = datetime.now(UTC)
            response.done_callbacks.append(lambda done: sink.append(_usage_of(done, started, started_at)))

    models._BaseResponse.__init__ = init_and_watch
    _installed = True


def _usage_of(response: Any, started: float, started_at: datetime) -> dict[str, Any]:
    model = response.model
    prompt = getattr(response, "prompt", None)
    return {
        "model": model.model_id,
        "resolved_model": getattr(response, "resolved_model", None),
        "provider": _provider_of(model),
        "input_tokens": response.input_tokens or 0,
        "output_tokens": response.output_tokens or 0,
        "details": response.token_details or {},
        "duration_ms": (time.perf_counter() - started) * 1000,
        "started_at": started_at,
        "prompt": getattr(prompt, "prompt", None),
        "system": getattr(prompt, "system", None),
        "response": "".join(getattr(response, "_chunks", [])),
        "source": "llm",
    }


def _provider_of(model: Any) -> str:
    """The plugin that serves the model: `llm_anthropic` -> anthropic, `llm.default_plugins.openai_models` -> openai."""
    module = type(model).__module__
    if module.startswith("llm.default_plugins.openai"):
        return "openai"
    name = module.split(".")[0]
    return name.removeprefix("llm_").removeprefix("llm-").replace("_", "-")
