"""pflow-metrics: run history and LLM cost ledger for PocketFlow workflows.

The public names are loaded lazily so that `import pflow_metrics` (and the report
commands) stay fast: instrumentation pulls in pocketflow only when it is asked for.
"""

__version__ = "0.1.0"

_LAZY = {
    "instrument": "pflow_metrics.instrumentation.api",
    "record_llm_call": "pflow_metrics.instrumentation.api",
    "Ledger": "pflow_metrics.ledger.store",
    "RunRecord": "pflow_metrics.record",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pflow_metrics' has no attribute {name!r}")
