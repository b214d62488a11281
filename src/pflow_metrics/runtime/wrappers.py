"""The runtime's node wrappers: [ProgressNodeWrapper ->] NamespacedNodeWrapper ->
TemplateAwareNodeWrapper -> node.

All are DelegatingNodes (`pflow_metrics.delegation`): PocketFlow nodes themselves (so `>>` and
`- "action" >>` work on them and Flow's `copy.copy` at every step copies them like any node)
that delegate every other attribute to the node they wrap, so the instrumentation outside them
sees `node_id` and the node's own attributes. What the instrumentation reads of them
(`inner_node`, `node_id`, `template_resolutions`) is the protocol documented there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from pocketflow import BaseNode

from pflow_metrics.delegation import DelegatingNode, inner_of
from pflow_metrics.runtime import templates


def _is_root_key(key: object) -> bool:
    return isinstance(key, str) and key.startswith("__") and key.endswith("__")


class NamespacedStore(MutableMapping):
    """The shared store as one node sees it: writes go to `shared[node_id]`, `__x__` keys stay
    at the root, and reads look in the node's namespace first, then at the root."""

    def __init__(self, root: MutableMapping, namespace: str):
        self.root = root
        self.namespace = namespace

    def _own(self, create: bool = False) -> dict | None:
        own = self.root.get(self.namespace)
        if own is None and create:
            own = self.root[self.namespace] = {}
        return own if isinstance(own, dict) else None

    def __getitem__(self, key: str) -> Any:
        own = None if _is_root_key(key) else self._own()
        if own is not None and key in own:
            return own[key]
        return self.root[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if _is_root_key(key):
            self.root[key] = value
        else:
            self._own(create=True)[key] = value

    def __delitem__(self, key: str) -> None:
        own = None if _is_root_key(key) else self._own()
        if own is not None and key in own:
            del own[key]
        else:
            del self.root[key]

    def __iter__(self) -> Iterator[str]:
        own = self._own() or {}
        yield from own
        yield from (key for key in self.root if key not in own)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"NamespacedStore({self.namespace!r})"


class NamespacedNodeWrapper(DelegatingNode):
    """Runs the wrapped node against a NamespacedStore of the shared store; with `enabled`
    False (a workflow with `"enable_namespacing": false`), against the shared store itself."""

    enabled = True

    def set_params(self, params: dict) -> None:
        super().set_params(params)
        self.inner_node.set_params(params)

    def _run(self, shared: MutableMapping) -> Any:
        if not self.enabled:
            return self.inner_node._run(shared)
        return self.inner_node._run(NamespacedStore(shared, self.node_id))


def set_namespacing(flow: BaseNode, enabled: bool) -> BaseNode:
    """Turn the namespacing of every node of a compiled workflow on or off (pflow's
    `enable_namespacing`): off, nodes read and write the root of the shared store. Walks the
    graph without recursion; returns `flow`."""
    start = getattr(flow, "start_node", None)
    seen: set[int] = set()
    stack = [start] if start is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(node.successors.values())
        link: BaseNode | None = node
        while link is not None:
            if isinstance(link, NamespacedNodeWrapper):
                link.enabled = enabled
            link = inner_of(link)
    return flow


class TemplateAwareNodeWrapper(DelegatingNode):
    """Resolves the node's template params against the shared store just before it runs.

    `template_resolutions` maps each template path to the value it had at this run: the
    instrumentation's trace reads it (see `pflow_metrics.delegation`).
    """

    def __init__(self, inner_node: BaseNode, node_id: str, template_params: dict[str, Any]):
        super().__init__(inner_node, node_id)
        self.template_params = template_params
        self.template_resolutions: dict[str, Any] = {}

    def _run(self, shared: MutableMapping) -> Any:
        resolutions: dict[str, Any] = {}
        resolved = templates.resolve(self.template_params, shared, resolutions)
        self.template_resolutions = resolutions
        # Set on the node itself (not a copy: the instrumentation counts attempts on the node
        # it was given) and put back afterwards, so resolved params never leak into the next run.
        unresolved = self.inner_node.params
        self.inner_node.set_params({**self.params, **resolved})
        try:
            return self.inner_node._run(shared)
        finally:
            self.inner_node.set_params(unresolved)


class ProgressNodeWrapper(DelegatingNode):
    """Tells `report(node_id, event, seconds)` when the node starts ("start") and ends
    ("done" or "failed"); the CLI shows it on a terminal. Sits just inside the instrumentation."""

    def __init__(self, inner_node: BaseNode, node_id: str, report: Callable[[str, str, float], None]):
        super().__init__(inner_node, node_id)
        self.report = report

    def set_params(self, params: dict) -> None:
        super().set_params(params)
        self.inner_node.set_params(params)

    def _run(self, shared: MutableMapping) -> Any:
        self.report(self.node_id, "start", 0.0)
        started = time.perf_counter()
        try:
            action = self.inner_node._run(shared)
        except BaseException:
            self.report(self.node_id, "failed", time.perf_counter() - started)
            raise
        self.report(self.node_id, "done", time.perf_counter() - started)
        return action
