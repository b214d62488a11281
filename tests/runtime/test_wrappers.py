import copy
import pickle

import pytest
from pocketflow import Flow, Node

from pflow_metrics.runtime.compiler import compile_workflow
from pflow_metrics.runtime.templates import TemplateError
from pflow_metrics.runtime.wrappers import NamespacedNodeWrapper, NamespacedStore, TemplateAwareNodeWrapper


class Writer(Node):
    marker = "writer-attribute"

    def post(self, shared, prep_res, exec_res):
        shared["result"] = self.params.get("value")
        shared["__flag__"] = True
        shared["seen_topic"] = shared.get("topic")
        return self.params.get("action", "default")


def wrapped(node_id, params):
    return NamespacedNodeWrapper(TemplateAwareNodeWrapper(Writer(), node_id, params), node_id)


def test_writes_go_to_the_node_namespace_and_dunder_keys_stay_at_root():
    shared = {"topic": "cats"}
    Flow(start=wrapped("a", {"value": 1})).run(shared)
    assert shared == {"topic": "cats", "__flag__": True, "a": {"result": 1, "seen_topic": "cats"}}


def test_later_nodes_read_earlier_namespaces_through_templates():
    first, second = wrapped("a", {"value": "${topic}!"}), wrapped("b", {"value": "${a.result} again"})
    first >> second
    shared = {"topic": "cats"}
    Flow(start=first).run(shared)
    assert shared["b"]["result"] == "cats! again"
    assert second.template_resolutions == {"a.result": "cats!"}


def test_conditional_actions_route_between_wrapped_nodes():
    start, left, right = wrapped("s", {"action": "right"}), wrapped("l", {"value": "L"}), wrapped("r", {"value": "R"})
    start - "left" >> left
    start - "right" >> right
    shared = {}
    Flow(start=start).run(shared)
    assert "r" in shared and "l" not in shared


def test_wrappers_delegate_attributes_and_survive_copy_and_pickle():
    node = wrapped("a", {"value": 1})
    for twin in (copy.copy(node), copy.deepcopy(node), pickle.loads(pickle.dumps(node))):
        assert twin.node_id == "a"
        assert twin.marker == "writer-attribute"
        assert twin.template_params == {"value": 1}


def test_unknown_attributes_still_raise_attribute_error():
    with pytest.raises(AttributeError):
        wrapped("a", {}).no_such_attribute


def test_resolved_params_do_not_leak_into_the_wrapped_node():
    node = wrapped("a", {"value": "${topic}"})
    Flow(start=node).run({"topic": "cats"})
    assert node.inner_node.inner_node.params == {}


def test_an_unresolvable_template_fails_the_node():
    with pytest.raises(TemplateError):
        Flow(start=wrapped("a", {"value": "${missing.key}"})).run({})


def test_namespaced_store_reads_own_keys_before_root_and_deletes_own_first():
    root = {"x": "root", "a": {"x": "own"}}
    view = NamespacedStore(root, "a")
    assert view["x"] == "own" and "x" in view and view.get("nope") is None
    del view["x"]
    assert view["x"] == "root"
    assert sorted(view) == ["a", "x"]


def test_compiler_follows_edges_and_start_node():
    ir = {
        "ir_version": "0.1.0",
        "nodes": [{"id": "a", "type": "echo", "params": {"v": 1}}, {"id": "b", "type": "echo", "params": {"v": "${a.v}"}}],
        "edges": [{"from": "b", "to": "a"}],
        "start_node": "b",
    }
    shared = {"a": {"v": 0}}
    compile_workflow(ir).run(shared)
    assert shared == {"a": {"v": 1}, "b": {"v": 0}}


def test_compiled_nodes_carry_id_and_ir_type():
    flow = compile_workflow({"ir_version": "0.1.0", "nodes": [{"id": "say", "type": "echo"}]})
    assert (flow.start_node.node_id, flow.start_node.node_type) == ("say", "echo")


def test_without_edges_nodes_run_in_listed_order():
    ir = {"ir_version": "0.1.0", "nodes": [{"id": "a", "type": "echo", "params": {"v": 1}},
                                            {"id": "b", "type": "echo", "params": {"v": "${a.v}"}}]}
    shared = {}
    compile_workflow(ir).run(shared)
    assert shared["b"] == {"v": 1}


def test_progress_is_reported_for_each_node_start_and_end():
    events = []
    ir = {"ir_version": "0.1.0", "nodes": [{"id": "a", "type": "echo"}, {"id": "b", "type": "shell",
                                                                         "params": {"command": "exit 1"}}]}
    with pytest.raises(Exception):
        compile_workflow(ir, lambda node_id, event, seconds: events.append((node_id, event))).run({})
    assert events == [("a", "start"), ("a", "done"), ("b", "start"), ("b", "failed")]
