"""Instrumentation: the metrics collector, the node wrapper, `llm` capture, tracing, and the
library API (`instrument`, `record_llm_call`, `RunSession`)."""

from pflow_metrics.instrumentation.api import TrackedFlow, instrument, record_llm_call
from pflow_metrics.instrumentation.collector import MetricsCollector
from pflow_metrics.instrumentation.session import RunResult, RunSession
from pflow_metrics.instrumentation.wrapper import BudgetExceeded, InstrumentedNodeWrapper, MetricsWarning

__all__ = [
    "BudgetExceeded", "InstrumentedNodeWrapper", "MetricsCollector", "MetricsWarning", "RunResult",
    "RunSession", "TrackedFlow", "instrument", "record_llm_call",
]
