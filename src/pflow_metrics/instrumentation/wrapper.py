"""InstrumentedNodeWrapper: the outermost wrapper of every node of an instrumented flow.

`instrument_graph` builds an instrumented copy of a flow: every node reachable from the start
node (nested flows included, their ids prefixed `parent/child`) is wrapped, and the caller's
flow and nodes are never modified. Each run of a wrapper works on fresh copies of the node it
wraps, as PocketFlow does, so per-run state (attempt counting, params) never leaks.
"""

from __future__ import annotations

import copy
import re
import time
import warnings
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from pocketflow import AsyncNode, BaseNode, BatchNode, Flow

from pflow_metrics.instrumentation import llm_capture
from pflow_metrics.instrumentation.usage import RejectedUsage, call_from_usage
from pflow_metrics.record import NodeRecord

if TYPE_CHECKING:
    from pflow_metrics.instrumentation.session import RunSession

_PICKLE_HOOKS = ("__setstate__", "__getstate__", "__getnewargs__", "__getnewargs_ex__")


class BudgetExceeded(Exception):
    """The run's cost passed its budget; no further node was started."""


class MetricsWarning(UserWarning):
    """Something in the metrics went wrong; the workflow went on."""


class InstrumentedNodeWrapper(BaseNode):
    def __init__(self, inner_node: BaseNode, node_id: str, session: RunSession, phase: str):
        super().__init__()
        self.inner_node = inner_node
        self.node_id = node_id
        self.node_type = getattr(inner_node, "node_type", None) or _class_name(inner_node)
        self.session = session
        self.phase = phase

    def __getattr__(self, name: str) -> Any:
        # Only for attributes the wrapper lacks. Pickle probes these hooks on a half-built
        # object whose inner_node is not set yet: delegating would recurse forever.
        if name in _PICKLE_HOOKS or name == "inner_node":
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        return getattr(object.__getattribute__(self, "inner_node"), name)

    def set_params(self, params: dict) -> None:
        self.params = params

    def _prepare(self, shared: MutableMapping) -> tuple[BaseNode, _Observation]:
        self.session.check_budget()
        llm_capture.install_if_loaded()
        node = _copy_chain(self.inner_node)
        node.set_params(self.params)
        observation = _Observation(self, node, shared)
        _count_attempts(_innermost(node), observation)
        self.session.node_started(self, shared)
        return node, observation

    def _run(self, shared: MutableMapping) -> Any:
        node, observation = self._prepare(shared)
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

    async def _run_async(self, shared: MutableMapping) -> Any:
        node, observation = self._prepare(shared)
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

    def __init__(self, wrapper: InstrumentedNodeWrapper, node: BaseNode, shared: MutableMapping):
        self.wrapper = wrapper
        self.node = node  # this run's copy of the wrapped chain
        self.session = wrapper.session
        self.attempts = 0
        self.items: int | None = None
        self.captured: list[dict[str, Any]] = []
        self.local_id = getattr(wrapper.inner_node, "node_id", None) or wrapper.node_id
        # Usage objects present before the node ran are stale: only new ones count.
        self.usage_before = (_root_usage(shared), _namespaced_usage(shared, self.local_id))
        self.offset_ms = self.session.collector.elapsed_ms()
        self.started = time.perf_counter()

    def finish(self, shared: MutableMapping, action: Any = None, error: BaseException | None = None) -> None:
        duration_ms = (time.perf_counter() - self.started) * 1000
        try:
            node = NodeRecord(
                node_id=self.wrapper.node_id,
                node_type=self.wrapper.node_type,
                phase=self.wrapper.phase,
                duration_ms=duration_ms,
                status="failed" if error is not None else "success",
                attempts=max(self.attempts, 1),
                action=action if isinstance(action, str) else None,
                error=None if error is None else f"{type(error).__name__}: {error}",
                start_offset_ms=self.offset_ms,
                items=self.items,
            )
            calls = self._calls(shared, duration_ms)
            resolutions = getattr(self.node, "template_resolutions", None)
            self.session.node_finished(self.wrapper, node, calls, shared, error, resolutions)
        except Exception as exc:  # metrics never break the workflow they observe
            warnings.warn(f"pflow-metrics: node {self.wrapper.node_id} not recorded: {exc}", MetricsWarning,
                          stacklevel=2)

    def _calls(self, shared: MutableMapping, duration_ms: float) -> list:
        reported = []
        for before, now in zip(self.usage_before, (_root_usage(shared), _namespaced_usage(shared, self.local_id))):
            if now is not None and now is not before:
                reported.append(now)
        entries = list(self.captured) + _without_duplicates(reported, self.captured)
        calls = []
        for entry in entries:
            try:
                call = call_from_usage(entry, self.wrapper.node_id, self.wrapper.phase)
            except RejectedUsage as exc:
                self.session.reject_usage(self.wrapper.node_id, exc)
                continue
            if call.duration_ms is None:
                call.duration_ms = duration_ms
            if isinstance(entry, dict):
                call.started_at = entry.get("started_at") if hasattr(entry.get("started_at"), "tzinfo") else None
                call.prompt, call.response = entry.get("prompt"), entry.get("response")
            calls.append(call)
        return calls


def _without_duplicates(reported: list, captured: list[dict[str, Any]]) -> list:
    """Drop reported usage that repeats a captured `llm` call (same model family and counts)."""
    remaining = [(c.get("input_tokens"), c.get("output_tokens")) for c in captured]
    kept = []
    for entry in reported:
        key = (entry.get("input_tokens"), entry.get("output_tokens")) if isinstance(entry, dict) else None
        if key is not None and key in remaining:
            remaining.remove(key)
            continue
        kept.append(entry)
    return kept


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


def _copy_chain(node: BaseNode) -> BaseNode:
    """Copy a node and every runtime wrapper inside it, so that a run owns what it changes."""
    node = copy.copy(node)
    inner = node.__dict__.get("inner_node")
    if isinstance(inner, BaseNode):
        node.inner_node = _copy_chain(inner)
    return node


def _innermost(node: BaseNode) -> BaseNode:
    while isinstance(node.__dict__.get("inner_node"), BaseNode):
        node = node.inner_node
    return node


def _count_attempts(node: BaseNode, observation: _Observation) -> None:
    """Count exec calls on this run's own copy (PocketFlow retries inside _exec; cur_retry races
    under AsyncParallelBatchNode). For a BatchNode, also count the items prep returned."""
    if isinstance(node, Flow):
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


def _class_name(node: Any) -> str:
    return type(node).__name__


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def instrument_graph(flow: Flow, session: RunSession, phase: str, prefix: str = "") -> Flow:
    """A copy of `flow` whose every node (nested flows too) is wrapped; the original is untouched."""
    wrapped: dict[int, InstrumentedNodeWrapper] = {}
    seen_ids: dict[str, int] = {}
    instrumented = copy.copy(flow)
    instrumented.successors = dict(flow.successors)
    instrumented.start_node = _wrap(flow.start_node, session, phase, prefix, wrapped, seen_ids) if flow.start_node else None
    return instrumented


def _wrap(node, session, phase, prefix, wrapped, seen_ids):
    if id(node) in wrapped:
        return wrapped[id(node)]
    local = getattr(node, "node_id", None) or snake_case(_class_name(node))
    seen_ids[local] = seen_ids.get(local, 0) + 1
    if seen_ids[local] > 1 and getattr(node, "node_id", None) is None:
        local = f"{local}-{seen_ids[local]}"
    node_id = f"{prefix}{local}"
    inner = node
    if isinstance(node, Flow):
        inner = instrument_graph(node, session, phase, prefix=f"{node_id}/")
        inner.successors = {}
    cls = AsyncInstrumentedNodeWrapper if isinstance(node, AsyncNode) else InstrumentedNodeWrapper
    wrapper = cls(inner, node_id, session, phase)
    wrapper.node_type = getattr(node, "node_type", None) or _class_name(node)
    wrapped[id(node)] = wrapper
    wrapper.successors = {
        action: _wrap(target, session, phase, prefix, wrapped, seen_ids)
        for action, target in node.successors.items()
    }
    return wrapper
