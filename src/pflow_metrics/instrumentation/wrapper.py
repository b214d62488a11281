"""InstrumentedNodeWrapper: the outermost wrapper of every node of an instrumented flow.

`instrument_graph` builds an instrumented copy of a flow: every node reachable from the start
node (nested flows too, their ids prefixed `parent/child`) is wrapped, and the caller's flow and
nodes are never modified. Each run of a wrapper works on a fresh copy of the node chain inside
it, as PocketFlow does with `copy.copy` at every step, so per-run state (params, the attempt
counter) never leaks between steps or concurrent runs.

A wrapper finds its RunSession through `session.live_session(run_id)` after pickling; a wrapper
without a live session runs its node uninstrumented.
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

from pflow_metrics.instrumentation import llm_capture
from pflow_metrics.instrumentation.errors import MetricsWarning
from pflow_metrics.record import NodeRecord

if TYPE_CHECKING:
    from pflow_metrics.instrumentation.session import RunSession

_PICKLE_HOOKS = ("__setstate__", "__getstate__", "__getnewargs__", "__getnewargs_ex__")
LLM_CALLS_KEY = "__llm_calls__"


class InstrumentedNodeWrapper(BaseNode):
    def __init__(self, inner_node: BaseNode, node_id: str, session: RunSession | None, phase: str):
        super().__init__()
        self.inner_node = inner_node
        self.node_id = node_id
        self.node_type = getattr(inner_node, "node_type", None) or type(inner_node).__name__
        self.session = session
        self.phase = phase
        self.is_flow = isinstance(inner_node, Flow)
        # Where the runtime's namespacing puts this node's llm_usage: its own (unprefixed) id.
        self.local_id = getattr(inner_node, "node_id", None) or node_id

    def __getattr__(self, name: str) -> Any:
        # Only for attributes the wrapper lacks. Pickle probes these hooks on a half-built
        # object whose inner_node is not set yet: delegating would recurse forever.
        if name in _PICKLE_HOOKS or name == "inner_node":
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        return getattr(object.__getattribute__(self, "inner_node"), name)

    # Flow copies every node at every step: keep that copy cheap and the session shared.
    def __copy__(self) -> InstrumentedNodeWrapper:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __deepcopy__(self, memo: dict) -> InstrumentedNodeWrapper:
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            clone.__dict__[key] = value if key == "session" else copy.deepcopy(value, memo)
        return clone

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        session = state.pop("session", None)
        state["run_id"] = getattr(session, "run_id", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        from pflow_metrics.instrumentation.session import live_session

        state = dict(state)
        run_id = state.pop("run_id", None)
        self.__dict__.update(state)
        self.session = live_session(run_id)

    def _start(self, shared: MutableMapping) -> tuple[BaseNode, _Observation | None]:
        node = _copy_chain(self.inner_node)
        node.set_params(self.params)
        session = self.session
        if session is None:
            return node, None
        session.check_budget()  # BudgetExceeded: this node does not start
        try:
            llm_capture.watch()
            observation = _Observation(self, shared, node)
            _count_attempts(_innermost(node), observation)
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

    def __init__(self, inner_node: BaseNode, node_id: str, session: RunSession | None, phase: str):
        super().__init__(inner_node, node_id, session, phase)
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

    __slots__ = ("wrapper", "node", "session", "attempts", "items", "captured", "is_flow", "local_id",
                 "root_before", "namespaced_before", "calls_before", "offset_ms", "started")

    def __init__(self, wrapper: InstrumentedNodeWrapper, shared: MutableMapping, node: BaseNode):
        self.wrapper = wrapper
        self.node = node
        self.session = wrapper.session
        self.attempts = 0
        self.items: int | None = None
        self.captured: list[dict[str, Any]] = []
        self.is_flow = wrapper.is_flow
        self.local_id = wrapper.local_id
        # Usage present before the node ran is stale: only usage written during it counts.
        self.root_before = _Seen(_root_usage(shared))
        self.namespaced_before = _Seen(_namespaced_usage(shared, self.local_id))
        self.calls_before = _calls_length(shared)
        self.offset_ms = self.session.collector.elapsed_ms()
        self.started = time.perf_counter()

    def finish(self, shared: MutableMapping, action: Any = None, error: BaseException | None = None) -> None:
        duration_ms = (time.perf_counter() - self.started) * 1000
        try:
            record = NodeRecord(
                node_id=self.wrapper.node_id,
                node_type=self.wrapper.node_type,
                phase=self.wrapper.phase,
                duration_ms=duration_ms,
                status="failed" if error is not None else "success",
                attempts=max(self.attempts - (self.items or 0) + 1, 1) if self.items else max(self.attempts, 1),
                action=action if isinstance(action, str) else None,
                error=None if error is None else f"{type(error).__name__}: {error}"[:2000],
                start_offset_ms=self.offset_ms,
                items=self.items,
            )
            self.session.node_finished(self, record, self.usage_entries(shared), shared, error)
        except Exception as exc:  # metrics never break the workflow they observe
            warnings.warn(f"pflow-metrics: node {self.wrapper.node_id} not recorded: {exc}", MetricsWarning,
                          stacklevel=2)

    def usage_entries(self, shared: MutableMapping) -> list[Any]:
        """Captured `llm` calls, plus usage the node reported itself (llm_usage at the root or in
        its namespace, or entries appended to `__llm_calls__`) that repeats none of them."""
        entries: list[Any] = list(self.captured)
        if self.is_flow:  # its nodes reported their own usage
            return entries
        reported = []
        for seen, now in ((self.root_before, _root_usage(shared)),
                          (self.namespaced_before, _namespaced_usage(shared, self.local_id))):
            if now is not None and seen.changed(now) and not any(now is r for r in reported):
                reported.append(now)
        if _calls_length(shared) > self.calls_before:
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


def _root_usage(shared: MutableMapping) -> Any:
    try:
        return shared.get("llm_usage")
    except Exception:
        return None


def _namespaced_usage(shared: MutableMapping, node_id: str) -> Any:
    try:
        space = shared.get(node_id)
    except Exception:
        return None
    return space.get("llm_usage") if isinstance(space, dict) else None


def _calls_length(shared: MutableMapping) -> int:
    try:
        calls = shared.get(LLM_CALLS_KEY)
    except Exception:
        return 0
    return len(calls) if isinstance(calls, list) else 0


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
    inner = node.__dict__.get("inner_node")
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
    clone.__dict__.update(node.__dict__)
    return clone


def _innermost(node: BaseNode) -> BaseNode:
    while isinstance(node.__dict__.get("inner_node"), BaseNode):
        node = node.inner_node
    return node


def _count_attempts(node: BaseNode, observation: _Observation) -> None:
    """Count exec calls on this run's own copy: PocketFlow retries inside `_exec`, and
    `cur_retry` races under AsyncParallelBatchNode. For a BatchNode, also count the items prep
    returned. Attempts are then 1 + the retries (summed over a batch's items)."""
    if isinstance(node, Flow):
        return
    if getattr(node, "max_retries", 1) <= 1 and not isinstance(node, BatchNode):
        observation.attempts = 1  # no retry possible: nothing to count
        return
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


def instrument_graph(flow: Flow, session: RunSession, phase: str, prefix: str = "") -> Flow:
    """A copy of `flow` whose every node (nested flows too) is wrapped; the original is untouched."""
    instrumented = copy.copy(flow)
    instrumented.successors = dict(flow.successors)
    if flow.start_node is not None:
        instrumented.start_node = _Wrapping(session, phase, prefix).wrap(flow.start_node)
    return instrumented


class _Wrapping:
    """Wraps one flow level: every node once (graphs may loop), ids unique within the level."""

    def __init__(self, session: RunSession, phase: str, prefix: str):
        self.session, self.phase, self.prefix = session, phase, prefix
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
            inner = instrument_graph(node, self.session, self.phase, prefix=f"{node_id}/")
            inner.successors = {}  # the wrapper follows the edges
        cls = AsyncInstrumentedNodeWrapper if isinstance(node, AsyncNode) else InstrumentedNodeWrapper
        wrapper = cls(inner, node_id, self.session, self.phase)
        wrapper.node_type = getattr(node, "node_type", None) or type(node).__name__
        return wrapper

    def _local_id(self, node: BaseNode) -> str:
        given = getattr(node, "node_id", None)
        if isinstance(given, str) and given:
            return given
        base = snake_case(type(node).__name__)
        self.seen_ids[base] = count = self.seen_ids.get(base, 0) + 1
        return base if count == 1 else f"{base}-{count}"
