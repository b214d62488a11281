"""The run being executed, and the shared-store keys the instrumentation reads and writes.

A leaf module: the session sets `current_session`, the wrappers (and the runtime's nested
workflows) read it, and neither imports the other for it.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pflow_metrics.instrumentation.session import RunSession

# pflow's marker of planner calls in the shared store: nodes run while it is set count as planner.
PLANNER_FLAG = "__is_planner__"
# pflow's accumulation list in the shared store: every LLM call of the run, with node_id and
# is_planner; entries appended by other code without a node_id are claimed by the next node.
LLM_CALLS_KEY = "__llm_calls__"

# The session of the run being executed. Wrappers look it up at every node, so one instrumented
# graph serves every run; asyncio tasks (concurrent batch items, concurrent runs) inherit it.
current_session: ContextVar[RunSession | None] = ContextVar("pflow_metrics_session", default=None)
