"""Hostile or odd workflow files are refused quickly and in one line per problem: huge graphs
validate in linear time, only the first problems are listed (then how many more there are),
and JSON nested beyond what the runtime walks is refused before anything else reads it."""

from __future__ import annotations

import json
import re

import pytest

from pflow_metrics.runtime.ir import (
    MAX_DEPTH, MAX_SHOWN_ERRORS, WorkflowInvalid, bind_inputs, load_workflow, parse_workflow, validate_workflow,
)

TYPES = ("llm", "shell", "echo", "read-file")
DEEP = 100_000


def chain(count: int) -> dict:
    return {
        "ir_version": "0.1.0",
        "nodes": [{"id": f"step_{i}", "type": "echo", "params": {"text": f"${{step_{i - 1}.text}}" if i else "go"}}
                  for i in range(count)],
        "edges": [{"from": f"step_{i}", "to": f"step_{i + 1}"} for i in range(count - 1)],
    }


def test_a_valid_chain_of_20000_nodes_has_no_errors():
    assert validate_workflow(chain(20_000), TYPES) == []


def test_20000_nodes_and_5000_bad_edges_list_the_first_problems_then_count_the_rest():
    ir = chain(20_000)
    bad = [{"from": f"step_{i}", "to": f"step_{i}x"} for i in range(5_000)]
    ir["edges"] = ir["edges"][:100] + bad
    errors = validate_workflow(ir, TYPES)
    assert len(errors) == MAX_SHOWN_ERRORS + 1
    assert errors[:3] == [
        "edges[100].to: no node with id 'step_0x' (did you mean 'step_0'?)",
        "edges[101].to: no node with id 'step_1x' (did you mean 'step_1'?)",
        "edges[102].to: no node with id 'step_2x' (did you mean 'step_2'?)",
    ]
    assert [error.split(":")[0] for error in errors[:MAX_SHOWN_ERRORS]] == [
        f"edges[{100 + i}].to" for i in range(MAX_SHOWN_ERRORS)]
    assert errors[-1] == f"and {5_000 - MAX_SHOWN_ERRORS} more problems"


def test_the_run_command_prints_one_line_per_shown_problem_and_exits_2(cli, tmp_path):
    ir = chain(300)
    ir["edges"] = [{"from": "nowhere", "to": f"step_{i}"} for i in range(300)]
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(ir))
    code, out, err = cli("run", str(path))
    lines = err.splitlines()
    assert code == 2 and out == ""
    assert len(lines) == MAX_SHOWN_ERRORS + 1
    assert all(line.startswith("pflow-metrics: error: edges[") for line in lines[:-1])
    assert lines[-1] == f"pflow-metrics: error: and {300 - MAX_SHOWN_ERRORS} more problems"


def test_suggestions_among_many_names_still_find_a_typo():
    ir = chain(5_000)
    ir["edges"] = [{"from": "step_1234", "to": "stpe_4321"}, {"from": "step_1", "to": "zzzzzzzzzzzz"}]
    assert validate_workflow(ir, TYPES) == [
        "edges[0].to: no node with id 'stpe_4321' (did you mean 'step_4321'?)",
        "edges[1].to: no node with id 'zzzzzzzzzzzz'",
    ]


@pytest.mark.parametrize("target", [[1, 2], {"a": 1}, 7, True, "x" * 100_000])
def test_edges_and_start_node_of_any_json_type_are_one_line_each(target):
    ir = chain(3)
    ir["edges"].append({"from": target, "to": "step_0"})
    ir["start_node"] = target
    errors = validate_workflow(ir, TYPES)
    assert len(errors) == 2
    assert errors[0].startswith("edges[2].from: ") and errors[1].startswith("start_node: ")
    assert all(len(error) < 200 for error in errors)


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("text", [
    _deep(DEEP),
    '{"ir_version": "0.1.0", "nodes": [{"id": "a", "type": "echo", "params": {"text": ' + _deep(DEEP) + "}}]}",
    '{"nodes": ' + "{\"a\": " * DEEP + "1" + "}" * DEEP + "}",
])
def test_json_nested_100k_deep_is_one_line_not_a_recursion_error(text):
    with pytest.raises(WorkflowInvalid) as caught:
        parse_workflow(text, source="flow.json")
    assert caught.value.errors == [f"flow.json: JSON nested deeper than {MAX_DEPTH} levels"]


def test_json_nested_just_past_the_limit_is_refused_and_at_the_limit_is_read():
    param = lambda depth: json.dumps(  # noqa: E731 - the workflow with a param of this depth
        {"ir_version": "0.1.0", "nodes": [{"id": "a", "type": "echo", "params": {"text": "x"}}]}
    ).replace('"x"', _deep(depth))
    assert validate_workflow(parse_workflow(param(MAX_DEPTH - 4)), TYPES) == []  # root, nodes, node, params
    with pytest.raises(WorkflowInvalid):
        parse_workflow(param(MAX_DEPTH - 3))


def test_a_deep_workflow_given_as_a_value_is_one_error_with_its_path():
    value: list = []
    for _ in range(5_000):
        value = [value]
    ir = chain(2)
    ir["nodes"][0]["params"]["deep"] = value
    assert validate_workflow(ir, TYPES) == [f"nodes[0].params.deep: nested deeper than {MAX_DEPTH} levels"]


def test_huge_numbers_in_a_workflow_file_are_one_line(tmp_path):
    path = tmp_path / "flow.json"
    path.write_text('{"ir_version": "0.1.0", "nodes": [{"id": "a", "type": "echo", "params": {"n": ' + "9" * 5_000
                    + "}}]}")
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow(path)
    assert len(caught.value.errors) == 1 and caught.value.errors[0].startswith(f"{path}: invalid JSON")


@pytest.mark.parametrize("value", ["[" * DEEP, _deep(5_000), _deep(MAX_DEPTH + 1), "9" * 5_000])
def test_hostile_input_values_are_an_error_of_that_input(value):
    ir = {"inputs": {"data": {"type": "array"}}}
    with pytest.raises(WorkflowInvalid) as caught:
        bind_inputs(ir, {"data": value})
    assert len(caught.value.errors) == 1 and caught.value.errors[0].startswith("inputs.data: ")
    assert len(caught.value.errors[0]) < 200


@pytest.mark.parametrize("body", [
    _deep(DEEP),
    '{"ir_version": "0.1.0", "nodes": [{"id": "a", "type": "echo", "params": {"text": ' + _deep(DEEP) + "}}]}",
])
def test_the_run_command_refuses_a_deep_workflow_in_one_line_with_exit_2(cli, tmp_path, body):
    path = tmp_path / "deep.json"
    path.write_text(body)
    code, out, err = cli("run", str(path))
    assert code == 2 and out == ""
    assert re.fullmatch(rf"pflow-metrics: error: {re.escape(str(path))}: JSON nested deeper than \d+ levels\n", err)
