import json

import pytest

from pflow_metrics.runtime.ir import (
    WorkflowInvalid, bind_inputs, load_workflow, validate_workflow,
)

TYPES = ("llm", "shell", "echo", "read-file")


def workflow(**changes):
    ir = {
        "ir_version": "0.1.0",
        "inputs": {"topic": {"type": "string", "required": True}},
        "outputs": {"summary": {"source": "${summarize.response}"}},
        "nodes": [
            {"id": "summarize", "type": "llm", "params": {"prompt": "About ${topic}"}},
            {"id": "title", "type": "llm", "params": {"prompt": "Title for ${summarize.response}"}},
        ],
        "edges": [{"from": "summarize", "to": "title"}],
    }
    ir.update(changes)
    return ir


def test_a_valid_workflow_has_no_errors():
    assert validate_workflow(workflow(), TYPES) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"ir_version": None}, 'ir_version: required (use "0.1.0")'),
        ({"ir_version": "9.9"}, "ir_version: unsupported version '9.9' (expected \"0.1.0\")"),
        ({"nodes": []}, "nodes: required, a non-empty list of nodes"),
        ({"nodes": [{"id": "a", "type": "lm"}]}, "nodes[0].type: unknown node type 'lm' (did you mean 'llm'?)"),
        ({"nodes": [{"id": "a"}]}, "nodes[0].type: required, one of echo, llm, read-file, shell"),
        ({"nodes": [{"type": "llm"}]}, "nodes[0].id: required, letters, digits, '_' or '-', got None"),
        ({"nodes": [{"id": "a", "type": "echo"}, {"id": "a", "type": "echo"}], "edges": [],
          "outputs": {}}, "nodes[1].id: duplicate id 'a' (first used by nodes[0])"),
        ({"nodes": [{"id": "topic", "type": "echo"}], "edges": [], "outputs": {}},
         "nodes[0].id: 'topic' is also the name of an input"),
        ({"nodes": [{"id": "a", "type": "echo", "params": []}], "edges": [], "outputs": {}},
         "nodes[0].params: must be an object, got a list"),
        ({"edges": [{"from": "summarize", "to": "titel"}]},
         "edges[0].to: no node with id 'titel' (did you mean 'title'?)"),
        ({"edges": [{"to": "title"}]}, "edges[0].from: required, a node id"),
        ({"edges": [{"from": "summarize", "to": "title", "action": 3}]}, "edges[0].action: must be a string, got a number"),
        ({"start_node": "sumarize"}, "start_node: no node with id 'sumarize' (did you mean 'summarize'?)"),
        ({"inputs": {"topic": {"type": "text"}}}, "inputs.topic.type: unknown type 'text'"),
        ({"outputs": {"summary": {"source": "${sumarize.response}"}}},
         "outputs.summary.source: ${sumarize.response} names no input or node (did you mean 'summarize'?)"),
    ],
)
def test_each_problem_is_one_line_with_its_path(changes, expected):
    errors = validate_workflow(workflow(**changes), TYPES)
    assert any(error.startswith(expected) for error in errors), errors


def test_templates_in_nested_params_are_checked_with_their_path():
    ir = workflow(nodes=[{"id": "a", "type": "echo", "params": {"list": [{"x": "${tpoic}"}]}}], edges=[], outputs={})
    assert validate_workflow(ir, TYPES) == [
        "nodes[0].params.list[0].x: ${tpoic} names no input or node (did you mean 'topic'?)"
    ]


def test_all_problems_are_reported_at_once():
    ir = workflow(ir_version="2", nodes=[{"id": "a", "type": "lm"}, {"id": "a", "type": "echo"}], edges=[], outputs={})
    assert len(validate_workflow(ir, TYPES)) == 3


def test_a_workflow_that_is_not_an_object_is_one_error():
    assert validate_workflow([1], TYPES) == ["(root): a workflow must be a JSON object, got a list"]


def test_invalid_json_names_file_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"nodes": [\n  1,\n}')
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow(path)
    assert caught.value.errors[0].startswith(f"{path}: invalid JSON at line 3 column 1")


def test_a_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(WorkflowInvalid, match="cannot read"):
        load_workflow(tmp_path / "nope.json")


def test_required_inputs_must_be_given_and_defaults_fill_the_rest():
    ir = workflow(inputs={"topic": {"required": True}, "n": {"type": "integer", "default": 3}})
    with pytest.raises(WorkflowInvalid) as caught:
        bind_inputs(ir, {})
    assert caught.value.errors == ["inputs.topic: required input not given (pass topic=VALUE)"]
    assert bind_inputs(ir, {"topic": "cats"}) == {"topic": "cats", "n": 3}


def test_command_line_values_take_their_declared_type():
    ir = workflow(inputs={name: {"type": name} for name in ("integer", "number", "boolean", "object", "array")})
    given = {"integer": "3", "number": "2.5", "boolean": "true", "object": '{"a": 1}', "array": "[1]"}
    assert bind_inputs(ir, given) == {"integer": 3, "number": 2.5, "boolean": True, "object": {"a": 1}, "array": [1]}


def test_bad_values_and_unknown_inputs_are_errors():
    ir = workflow(inputs={"count": {"type": "integer", "required": True}})
    with pytest.raises(WorkflowInvalid) as caught:
        bind_inputs(ir, {"count": "many", "cuont": "1"})
    assert caught.value.errors == [
        "inputs.cuont: not an input of this workflow (did you mean 'count'?)",
        "inputs.count: expected integer, got 'many'",
    ]


def test_example_workflows_are_valid():
    from pathlib import Path

    from pflow_metrics.runtime.registry import node_type_names

    examples = sorted((Path(__file__).parents[2] / "examples").glob("*.json"))
    assert examples
    for path in examples:
        assert validate_workflow(json.loads(path.read_text()), node_type_names()) == [], path.name
