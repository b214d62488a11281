"""Capture calls made through Simon Willison's `llm` library while an instrumented node runs.

Responses are lazy: usage exists only once a response is consumed, by text(), iteration or
usage(). `llm` runs a response's `done_callbacks` at that moment, sync and async alike, so every
response created while a node runs gets a callback that reports to that node's sink. The sink
lives in a ContextVar, so concurrent async nodes each see their own.

`llm` is never imported here: the hook goes in when `llm` is already loaded, or the moment
something imports it during an instrumented run (a one-name import watcher). A process that
never uses `llm` never loads it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# The current node's list of usage entries (see InstrumentedNodeWrapper).
current_sink: ContextVar[list[dict[str, Any]] | None] = ContextVar("pflow_metrics_llm_sink", default=None)

_hooked = False
_watching = False


def watch() -> None:
    """Make sure `llm` responses are hooked, now or when `llm` gets imported (cheap, idempotent)."""
    global _watching
    if _watching:
        return
    _watching = True
    if "llm.models" in sys.modules:
        _hook(sys.modules["llm.models"])
    else:
        sys.meta_path.insert(0, _ImportWatcher())


class _ImportWatcher(importlib.abc.MetaPathFinder):
    """Hooks `llm.models` right after it is executed, whoever imports it."""

    def find_spec(self, name, path, target=None):
        if name != "llm.models":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        original_exec = spec.loader.exec_module

        def exec_and_hook(module):
            original_exec(module)
            _hook(module)

        spec.loader.exec_module = exec_and_hook
        return spec


def _hook(models: Any) -> None:
    global _hooked
    if _hooked:
        return
    _hooked = True
    original_init = models._BaseResponse.__init__

    def init_and_watch(response, *args, **kwargs):
        original_init(response, *args, **kwargs)
        sink = current_sink.get()
        if sink is not None:
            started, started_at = time.perf_counter(), datetime.now(UTC)
            response.done_callbacks.append(lambda done: _report(sink, done, started, started_at))

    models._BaseResponse.__init__ = init_and_watch
    for finder in [f for f in sys.meta_path if isinstance(f, _ImportWatcher)]:
        sys.meta_path.remove(finder)


def _report(sink: list[dict[str, Any]], response: Any, started: float, started_at: datetime) -> None:
    try:
        sink.append(usage_entry(response, started, started_at))
    except Exception:  # a response we cannot read is not worth breaking the node for
        pass


def usage_entry(response: Any, started: float, started_at: datetime) -> dict[str, Any]:
    """A usage dict (the shape `usage.call_from_usage` reads) for a finished `llm` response."""
    model = response.model
    prompt = getattr(response, "prompt", None)
    return {
        "model": model.model_id,
        "resolved_model": getattr(response, "resolved_model", None),
        "provider": provider_of(model),
        "input_tokens": response.input_tokens or 0,
        "output_tokens": response.output_tokens or 0,
        "details": response.token_details or {},
        "duration_ms": _duration_ms(response, started),
        "started_at": started_at,
        "prompt": getattr(prompt, "prompt", None),
        "system": getattr(prompt, "system", None),
        "response": "".join(getattr(response, "_chunks", None) or []),
        "source": "llm",
    }


def _duration_ms(response: Any, created: float) -> float:
    """From the start of consumption when `llm` timed it: a lazy response may wait before it runs."""
    start, end = getattr(response, "_start", None), getattr(response, "_end", None)
    if isinstance(start, float) and isinstance(end, float) and end >= start:
        return (end - start) * 1000
    return (time.perf_counter() - created) * 1000


def provider_of(model: Any) -> str:
    """The plugin that serves the model: `llm_anthropic` -> anthropic,
    `llm.default_plugins.openai_models` -> openai, `llm_echo` -> echo."""
    module = type(model).__module__
    if module.startswith("llm.default_plugins.openai"):
        return "openai"
    name = module.split(".")[0]
    return name.removeprefix("llm_").replace("_", "-")
