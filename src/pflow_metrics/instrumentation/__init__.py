"""Instrumentation for any PocketFlow flow: metrics, LLM usage capture, tracing, the ledger.

`import pflow_metrics.instrumentation` loads neither `llm` nor genai-prices; pocketflow is
loaded when a flow is instrumented. Public names load lazily.
"""

_LAZY = {
    "RunSession": "pflow_metrics.instrumentation.session",
    "RunResult": "pflow_metrics.instrumentation.session",
    "MetricsCollector": "pflow_metrics.instrumentation.collector",
    "InstrumentedNodeWrapper": "pflow_metrics.instrumentation.wrapper",
    "WorkflowTraceCollector": "pflow_metrics.instrumentation.trace",
    "BudgetExceeded": "pflow_metrics.instrumentation.errors",
    "MetricsWarning": "pflow_metrics.instrumentation.errors",
    "TrackedFlow": "pflow_metrics.instrumentation.api",
    "instrument": "pflow_metrics.instrumentation.api",
    "record_llm_call": "pflow_metrics.instrumentation.api",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pflow_metrics.instrumentation' has no attribute {name!r}")
