"""The package's structure: no import cycle, the layers, one delegation protocol for every node
wrapper, a summary made from the run's record, and explicit guards around the metrics' own side
tasks (a failing trace is switched off, a failing ledger journal is not)."""

from __future__ import annotations

import ast
import copy
import pickle
import warnings
from pathlib import Path

import pytest
from pocketflow import Flow, Node

import pflow_metrics
from pflow_metrics.delegation import DelegatingNode, find_in_chain, inner_of, innermost
from pflow_metrics.instrumentation import MetricsWarning, RunSession
from pflow_metrics.instrumentation.wrapper import InstrumentedNodeWrapper, instrument_graph
from pflow_metrics.runtime import wrappers
from pflow_metrics.runtime.compiler import compile_workflow

SRC = Path(pflow_metrics.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in SRC.rglob("*.py"):
        parts = ["pflow_metrics", *path.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, package: str):
    """Every module name an import names, at module level and inside functions (a lazy import is
    still a dependency); `if TYPE_CHECKING:` blocks are skipped (never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = _imports(ast.parse(path.read_text(encoding="utf-8")), package)
        graph[name] = {target for target in targets if target in modules and target != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for target in successors:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_of_the_package_imports_itself_through_others():
    assert _cycles(_import_graph()) == []


def test_instrumentation_depends_on_neither_the_runtime_nor_the_cli():
    graph = _import_graph()
    for module, targets in graph.items():
        if module.startswith("pflow_metrics.instrumentation"):
            wrong = sorted(t for t in targets if t.startswith(("pflow_metrics.runtime", "pflow_metrics.cli")))
            assert wrong == [], module


def test_the_delegation_protocol_depends_on_nothing_of_the_package():
    assert _import_graph()["pflow_metrics.delegation"] == set()


def test_the_wrappers_know_the_session_only_through_the_current_module():
    graph = _import_graph()
    assert "pflow_metrics.instrumentation.session" not in graph["pflow_metrics.instrumentation.wrapper"]
    assert graph["pflow_metrics.instrumentation.current"] == set()


# -- one delegation protocol ------------------------------------------------------------------


class Echo(Node):
    marker = "echo-attribute"

    def post(self, shared, prep_res, exec_res):
        shared["said"] = self.params.get("text")


def test_every_node_wrapper_is_one_delegating_node():
    for cls in (InstrumentedNodeWrapper, wrappers.NamespacedNodeWrapper, wrappers.TemplateAwareNodeWrapper,
                wrappers.ProgressNodeWrapper):
        assert issubclass(cls, DelegatingNode)
        assert "__getattr__" not in cls.__dict__  # the one in DelegatingNode


def test_the_chain_helpers_walk_inner_node():
    node = Echo()
    templated = wrappers.TemplateAwareNodeWrapper(node, "say", {"text": "${topic}"})
    outer = wrappers.NamespacedNodeWrapper(templated, "say")
    assert inner_of(outer) is templated and inner_of(node) is None
    assert innermost(outer) is node
    assert find_in_chain(outer, "template_params", dict) == {"text": "${topic}"}
    assert find_in_chain(outer, "no_such_attribute") is None
    assert outer.marker == "echo-attribute" and outer.node_id == "say"
    with pytest.raises(AttributeError):
        outer.no_such_attribute


def _compiled() -> Flow:
    return compile_workflow({"ir_version": "0.1.0", "nodes": [
        {"id": "say", "type": "echo", "params": {"text": "${topic}"}},
    ]})


@pytest.mark.parametrize("clone", [copy.copy, copy.deepcopy, lambda graph: pickle.loads(pickle.dumps(graph))],
                         ids=["copy", "deepcopy", "pickle"])
def test_an_instrumented_compiled_workflow_survives_copy_and_pickle_and_runs(clone):
    graph = clone(instrument_graph(_compiled(), "workflow"))
    wrapper = graph.start_node
    assert isinstance(wrapper, InstrumentedNodeWrapper) and wrapper.node_id == "say"
    assert isinstance(innermost(wrapper), Node) and not isinstance(innermost(wrapper), DelegatingNode)
    with RunSession("structure", ledger=False, trace=True) as session:
        session.run_instrumented(graph, {"topic": "owls"}, "workflow")
    assert [(n.node_id, n.status) for n in session.result.record.nodes] == [("say", "success")]
    assert session.result.trace_path is not None and "owls" in session.result.trace_path.read_text()


# -- the summary is made from the record --------------------------------------------------------


def test_the_collector_summarizes_the_session_record():
    first, second = Echo(), Echo()
    first >> second
    with RunSession("summary", ledger=False) as session:
        session.run_flow(Flow(start=first), {}, "workflow")
    collector = session.collector
    assert collector.record is session.record
    assert not hasattr(collector, "nodes") and not hasattr(collector, "calls")  # no second list
    summary = session.result.summary
    assert summary["num_nodes"] == 2 and summary["metrics"]["total"]["node_runs"] == len(session.record.nodes) == 2


# -- guarded side tasks ---------------------------------------------------------------------------


def _broken(*args, **kwargs):
    raise OSError("disk full")


def test_a_failing_trace_is_switched_off_and_the_run_goes_on():
    first, second = Echo(), Echo()
    first >> second
    session = RunSession("trace-off", ledger=False, trace=True)
    session.trace.node_finished = _broken
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session.run_flow(Flow(start=first), {}, "workflow")
        result = session.finish()
    assert session.trace is None and result.status == "success" and len(result.record.nodes) == 2
    problems = [str(w.message) for w in caught if issubclass(w.category, MetricsWarning)]
    assert problems == ["pflow-metrics: trace problem: disk full"]  # once: then the trace is off


def test_a_failing_ledger_journal_warns_at_every_node_and_leaves_the_trace_on(sqlite_url):
    first, second = Echo(), Echo()
    first >> second
    session = RunSession("journal", ledger=sqlite_url, trace=True)
    session.writer.progress = _broken
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session.run_flow(Flow(start=first), {}, "workflow")
        result = session.finish()
    assert session.trace is not None and result.trace_path is not None and result.status == "success"
    problems = [str(w.message) for w in caught if issubclass(w.category, MetricsWarning)]
    assert problems == ["pflow-metrics: ledger problem: disk full"] * 2
