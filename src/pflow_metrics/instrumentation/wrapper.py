"""InstrumentedNodeWrapper: the outermost wrapper of every node of an instrumented flow.

`instrument_graph` builds an instrumented copy of a flow once: every node reachable from the
start node (nested flows too, their ids prefixed `parent/child`) is wrapped, and the caller's
flow and nodes are never modified. Each run of a wrapper works on a fresh copy of the node chain
inside it, as PocketFlow does with `copy.copy` at every step, so per-run state (params, the
attempt counter) never leaks between steps or concurrent runs.

Wrappers hold no session: one graph serves every run, and a wrapper records into the session of
the run it executes in (`current.current_session`, a ContextVar that asyncio tasks inherit), so
copies and pickles of wrappers need nothing special. A wrapper outside any run runs its node
uninstrumented. The wrapper is a DelegatingNode: it finds the runtime's wrappers inside it
through the protocol of `pflow_metrics.delegation`.
"""

from __future__ import annotations

import copy
import functools
import re
import time
import warnings
from collections import deque
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from pocketflow import AsyncNode, BaseNode, BatchNode, Flow

from pflow_metrics.delegation import INNER_NODE, DelegatingNode
from pflow_metrics.instrumentation import llm_capture
from pflow_metrics.instrumentation.current import LLM_CALLS_KEY, PLANNER_FLAG, current_session
from pflow_metrics.instrumentation.errors import MetricsWarning
from pflow_metrics.record import NodeRecord

if TYPE_CHECKING:
    from pflow_metrics.instrumentation.session import RunSession


class InstrumentedNodeWrapper(DelegatingNode):
    def __init__(self, inner_node: BaseNode, node_id: str, phase: str):
        super().__init__(inner_node, node_id)
        self.node_type = getattr(inner_node, "node_type", None) or type(inner_node).__name__
        self.phase = phase
        # A flow, or a node that runs child nodes (a nested workflow): its children report usage.
        self.is_flow = isinstance(inner_node, Flow) or getattr(inner_node, "runs_child_nodes", False)
        # Where the runtime's namespacing puts this node's llm_usage: its own (unprefixed) id.
        self.local_id = getattr(inner_node, "node_id", None) or node_id

    # Flow copies every node at every step: keep that copy cheap.
    def __copy__(self) -> InstrumentedNodeWrapper:
        clone = object.__new__(type(self))
        clone.__dict__ = self.__dict__.copy()
        return clone

    def _start(self, shared: MutableMapping) -> tuple[BaseNode, _Observation | None]:
        node = _copy_chain(self.inner_node)
        node.set_params(self.params)
        session = current_session.get()
        if session is None:
            return node, None
        session.check_budget()  # BudgetExceeded: this node does not start
        try:
            observation = _Observation(self, session, shared, node)
            _count_attempts(node, observation)
            session.node_started(observation, shared)
        except Exception as exc:  # metrics never break the workflow they observe
            warnings.warn(f"pflow-metrics: node {self.node_id} not observed: {exc}", MetricsWarning, stacklevel=3)
            return node, None
        return node, observation

    def _run(self, shared: MutableMapping) -> Any:
        node, observation = self._start(shared)
        if observation is None:
            return node._run(shared)
        token = llm_capture.current_sink.set(observation.captured)
        try:
            action = node._run(shared)
        except BaseException as exc:
            observation.finish(shared, error=exc)
            raise
        finally:
            llm_capture.current_sink.reset(token)
        observation.finish(shared, action=action)
        return action


class AsyncInstrumentedNodeWrapper(InstrumentedNodeWrapper, AsyncNode):
    """The same for AsyncNode and AsyncFlow: AsyncFlow awaits `_run_async` of AsyncNodes."""

    def __init__(self, inner_node: BaseNode, node_id: str, phase: str):
        super().__init__(inner_node, node_id, phase)
        del self.max_retries, self.wait  # set by Node.__init__; the inner node's values apply

    async def _run_async(self, shared: MutableMapping) -> Any:
        node, observation = self._start(shared)
        if observation is None:
            return await node._run_async(shared)
        token = llm_capture.current_sink.set(observation.captured)
        try:
            action = await node._run_async(shared)
        except BaseException as exc:
            observation.finish(shared, error=exc)
            raise
        finally:
            llm_capture.current_sink.reset(token)
        observation.finish(shared, action=action)
        return action


class _Observation:
    """What one run of one node did: timing, attempts, items, usage written during it."""

    __slots__ = ("wrapper", "node", "session", "attempts", "items", "captured", "root_before",
                 "namespaced_before", "calls_before", "started")

    def __init__(self, wrapper: InstrumentedNodeWrapper, session: RunSession, shared: MutableMapping,
                 node: BaseNode):
        self.wrapper = wrapper
        self.node = node
        self.session = session
        self.attempts = 0
        self.items: int | None = None
        self.captured: list[dict[str, Any]] = []
        # Usage present before the node ran is stale: only usage written during it counts.
        root, namespaced, self.calls_before = _self_reported(shared, wrapper.local_id)
        self.root_before = None if root is None else _Seen(root)
        self.namespaced_before = None if namespaced is None else _Seen(namespaced)
        self.started = time.perf_counter()

    def finish(self, shared: MutableMapping, action: Any = None, error: BaseException | None = None) -> None:
        duration_ms = (time.perf_counter() - self.started) * 1000
        wrapper, session, items = self.wrapper, self.session, self.items
        try:
            phase = _phase(shared, wrapper.phase)
            status = "success" if error is None else "failed"
            # exec ran once per item and once more per retry; nothing counted reads as one attempt.
            attempts = max(self.attempts - items + 1, 1) if items else max(self.attempts, 1)
            action_name = action if isinstance(action, str) else None
            error_text = None if error is None else f"{type(error).__name__}: {error}"[:2000]
            start_offset_ms = session.collector.offset_ms(self.started)
            # Positional, in field order: keywords make this dataclass __init__ three times as
            # slow, on every node of every run.
            record = NodeRecord(wrapper.node_id, wrapper.node_type, phase, duration_ms, status, attempts,
                                action_name, error_text, start_offset_ms, items)
            session.node_finished(self, record, self.usage_entries(shared), shared, error)
        except Exception as exc:  # metrics never break the workflow they observe
            warnings.warn(f"pflow-metrics: node {wrapper.node_id} not recorded: {exc}", MetricsWarning,
                          stacklevel=2)

    def usage_entries(self, shared: MutableMapping) -> list[Any]:
        """Captured `llm` calls, plus usage the node reported itself (llm_usage at the root or in
        its namespace, or entries appended to `__llm_calls__`) that repeats none of them."""
        entries: list[Any] = list(self.captured)
        if self.wrapper.is_flow:  # its nodes reported their own usage
            return entries
        root, namespaced, calls = _self_reported(shared, self.wrapper.local_id)
        if root is None and namespaced is None and calls <= self.calls_before:
            return entries  # the common case: the node reported nothing itself
        reported = []
        for seen, now in ((self.root_before, root), (self.namespaced_before, namespaced)):
            # `{}` is pflow's "the model reported no usage": nothing to count, nothing to warn about.
            if now is not None and now != {} and (seen is None or seen.changed(now)) \
                    and not any(now is r for r in reported):
                reported.append(now)
        if calls > self.calls_before:
            reported += _claim_unattributed_calls(shared, self.calls_before)
        return entries + _without_duplicates(reported, entries) if reported else entries


class _Seen:
    """A usage value as it was before the node ran: the same object, equal contents."""

    __slots__ = ("value", "contents")

    def __init__(self, value: Any):
        self.value = value
        self.contents = dict(value) if type(value) is dict else value

    def changed(self, now: Any) -> bool:
        return now is not self.value or (isinstance(now, dict) and now != self.contents)


def _without_duplicates(reported: list[Any], captured: list[dict[str, Any]]) -> list[Any]:
    """Drop reported usage that repeats a captured `llm` call (same token counts); a cost the
    provider reported moves onto the captured call."""
    remaining = list(captured)
    kept = []
    for entry in reported:
        twin = next((c for c in remaining if isinstance(entry, dict) and _same_counts(c, entry)), None)
        if twin is None:
            kept.append(entry)
            continue
        remaining.remove(twin)
        if entry.get("cost_usd") is not None:
            twin["cost_usd"] = entry["cost_usd"]
    return kept


def _same_counts(captured: dict[str, Any], reported: dict[str, Any]) -> bool:
    return (captured.get("input_tokens"), captured.get("output_tokens")) == (
        reported.get("input_tokens", reported.get("prompt_tokens")),
        reported.get("output_tokens", reported.get("completion_tokens")),
    )


def _phase(shared: MutableMapping, phase: str) -> str:
    """The node's phase: "planner" when `__is_planner__` is set in the shared store (as pflow
    marks planner calls), else the phase its flow runs in."""
    if phase == "planner":
        return phase
    try:
        return "planner" if shared.get(PLANNER_FLAG) else phase
    except Exception:
        return phase


def _self_reported(shared: MutableMapping, local_id: str) -> tuple[Any, Any, int]:
    """What a node can report itself: llm_usage at the root, llm_usage in its namespace, and
    the length of `__llm_calls__`. A store that fails to answer reports nothing."""
    try:
        root = shared.get("llm_usage")
    except Exception:
        root = None
    try:
        space = shared.get(local_id)
        namespaced = space.get("llm_usage") if isinstance(space, dict) else None
    except Exception:
        namespaced = None
    try:
        calls = shared.get(LLM_CALLS_KEY)
        count = len(calls) if isinstance(calls, list) else 0
    except Exception:
        count = 0
    return root, namespaced, count


def _claim_unattributed_calls(shared: MutableMapping, start: int) -> list[Any]:
    """Entries appended to `__llm_calls__` during the node by other code (no node_id yet):
    taken out, to be recorded (and appended back, normalized) as this node's."""
    try:
        calls = shared.get(LLM_CALLS_KEY)
    except Exception:
        return []
    if not isinstance(calls, list):
        return []
    claimed = [i for i in range(min(start, len(calls)), len(calls))
               if not (isinstance(calls[i], dict) and "node_id" in calls[i])]
    entries = [calls[i] for i in claimed]
    for index in reversed(claimed):
        del calls[index]
    return entries


def _copy_chain(node: BaseNode) -> BaseNode:
    """Copy a node and every runtime wrapper inside it, so that a run owns what it changes."""
    node = _shallow_copy(node)
    inner = node.__dict__.get(INNER_NODE)  # `inner_of`, inlined: on every node of every run
    if isinstance(inner, BaseNode):
        node.inner_node = _copy_chain(inner)
    return node


_plain_types: dict[type, bool] = {}


def _shallow_copy(node: BaseNode) -> BaseNode:
    """`copy.copy`, without its generic protocol for plain classes (most nodes): the same result,
    a few microseconds sooner on every node of every run."""
    cls = type(node)
    plain = _plain_types.get(cls)
    if plain is None:
        plain = _plain_types[cls] = (
            cls.__reduce_ex__ is object.__reduce_ex__ and cls.__reduce__ is object.__reduce__
            and cls.__getstate__ is object.__getstate__ and not hasattr(cls, "__setstate__")
            and not hasattr(cls, "__copy__") and "__slots__" not in cls.__dict__
        )
    if not plain:
        return copy.copy(node)
    clone = object.__new__(cls)
    clone.__dict__ = node.__dict__.copy()
    return clone


def _count_attempts(node: BaseNode, observation: _Observation) -> None:
    """Count exec calls on this run's own copy of the innermost node: PocketFlow retries inside
    `_exec`, and `cur_retry` races under AsyncParallelBatchNode. For a BatchNode, also count the
    items prep returned. Attempts are then 1 + the retries (summed over a batch's items)."""
    while isinstance(inner := node.__dict__.get(INNER_NODE), BaseNode):  # `innermost`, inlined (speed)
        node = inner
    if (getattr(node, "max_retries", 1) <= 1 and not isinstance(node, BatchNode)) or isinstance(node, Flow):
        return  # nothing to count: `finish` reads no counted attempts as one
    if isinstance(node, AsyncNode):
        exec_async, prep_async = node.exec_async, node.prep_async

        async def counted_exec_async(prep_res):
            observation.attempts += 1
            return await exec_async(prep_res)

        async def counted_prep_async(shared):
            result = await prep_async(shared)
            observation.items = _length(result)
            return result

        node.exec_async = counted_exec_async
        if isinstance(node, BatchNode):
            node.prep_async = counted_prep_async
        return
    exec_sync, prep_sync = node.exec, node.prep

    def counted_exec(prep_res):
        observation.attempts += 1
        return exec_sync(prep_res)

    def counted_prep(shared):
        result = prep_sync(shared)
        observation.items = _length(result)
        return result

    node.exec = counted_exec
    if isinstance(node, BatchNode):
        node.prep = counted_prep


def _length(value: Any) -> int | None:
    try:
        return len(value) if value is not None else 0
    except TypeError:
        return None


@functools.lru_cache(maxsize=512)
def snake_case(name: str) -> str:
    """`SummarizeNode` -> `summarize_node`, `LLMNode` -> `llm_node`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def instrument_graph(flow: Flow, phase: str, prefix: str = "") -> Flow:
    """A copy of `flow` whose every node (nested flows too) is wrapped; the original is untouched."""
    instrumented = copy.copy(flow)
    instrumented.successors = dict(flow.successors)
    if flow.start_node is not None:
        instrumented.start_node = _Wrapping(phase, prefix).wrap(flow.start_node)
    return instrumented


class _Wrapping:
    """Wraps one flow level: every node once (graphs may loop), ids unique within the level."""

    def __init__(self, phase: str, prefix: str):
        self.phase, self.prefix = phase, prefix
        self.wrapped: dict[int, InstrumentedNodeWrapper] = {}
        self.seen_ids: dict[str, int] = {}

    def wrap(self, start: BaseNode) -> InstrumentedNodeWrapper:
        # Breadth first and without recursion: a flow may hold thousands of nodes in a chain.
        order, queue = [], deque([start])
        while queue:
            node = queue.popleft()
            if id(node) in self.wrapped:
                continue
            self.wrapped[id(node)] = self._wrapper(node)
            order.append(node)
            queue.extend(node.successors.values())
        for node in order:
            self.wrapped[id(node)].successors = {
                action: self.wrapped[id(target)] for action, target in node.successors.items()
            }
        return self.wrapped[id(start)]

    def _wrapper(self, node: BaseNode) -> InstrumentedNodeWrapper:
        node_id = self.prefix + self._local_id(node)
        inner = node
        if isinstance(node, Flow):
            inner = instrument_graph(node, self.phase, prefix=f"{node_id}/")
            inner.successors = {}  # the wrapper follows the edges
        cls = AsyncInstrumentedNodeWrapper if isinstance(node, AsyncNode) else InstrumentedNodeWrapper
        wrapper = cls(inner, node_id, self.phase)
        wrapper.node_type = getattr(node, "node_type", None) or type(node).__name__
        return wrapper

    def _local_id(self, node: BaseNode) -> str:
        given = getattr(node, "node_id", None)
        if isinstance(given, str) and given:
            return given
        base = snake_case(type(node).__name__)
        self.seen_ids[base] = count = self.seen_ids.get(base, 0) + 1
        return base if count == 1 else f"{base}-{count}"
