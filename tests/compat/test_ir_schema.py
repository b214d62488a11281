"""pflow's IR schema is closed: a key it does not know is refused, naming the key; what pflow
accepts (`purpose`, `mappings`, `enable_namespacing`, descriptions) is accepted."""

from __future__ import annotations

import copy
import json

import pytest

from pflow_metrics.runtime.ir import MAX_SHOWN_ERRORS, validate_workflow

NODE_TYPES = ("echo", "llm", "shell")
BASE = {
    "ir_version": "0.1.0",
    "inputs": {"topic": {"type": "string", "description": "a topic", "required": False, "default": "owls"}},
    "outputs": {"said": {"source": "${greet.text}", "description": "what greet said", "type": "string"}},
    "nodes": [
        {"id": "greet", "type": "echo", "purpose": "say something", "params": {"text": "${topic}"}},
        {"id": "ask", "type": "llm", "params": {"model": "echo", "prompt": "${greet.text}"}},
    ],
    "edges": [{"from": "greet", "to": "ask", "action": "default"}],
    "start_node": "greet",
    "mappings": {"ask": {"input_mappings": {"prompt": "question"}, "output_mappings": {"response": "answer"}}},
    "enable_namespacing": True,
}


def _with(change) -> dict:
    ir = copy.deepcopy(BASE)
    change(ir)
    return ir


def test_every_key_pflows_schema_allows_is_accepted():
    assert validate_workflow(BASE, NODE_TYPES) == []


@pytest.mark.parametrize(("change", "line"), [
    (lambda ir: ir.update(description="top"),
     "description: unknown key (allowed: ir_version, nodes, edges, start_node, mappings, inputs, outputs, "
     "enable_namespacing)"),
    (lambda ir: ir.update(enable_namespaces=False),
     "enable_namespaces: unknown key (did you mean 'enable_namespacing'?)"),
    (lambda ir: ir["nodes"][1].update(parameters={}),
     "nodes[1].parameters: unknown key (did you mean 'params'?) (allowed: id, type, purpose, params)"),
    (lambda ir: ir["edges"][0].update(label="x"), "edges[0].label: unknown key (allowed: from, to, action)"),
    (lambda ir: ir["inputs"]["topic"].update(kind="string"),
     "inputs.topic.kind: unknown key (allowed: description, required, type, default)"),
    (lambda ir: ir["outputs"]["said"].update(value="x"),
     "outputs.said.value: unknown key (allowed: description, type, source)"),
    (lambda ir: ir["mappings"]["ask"].update(proxy={}),
     "mappings.ask.proxy: unknown key (allowed: input_mappings, output_mappings)"),
])
def test_an_unknown_key_is_refused_naming_it(change, line):
    errors = validate_workflow(_with(change), NODE_TYPES)
    assert len(errors) == 1 and errors[0].startswith(line), errors


@pytest.mark.parametrize(("change", "line"), [
    (lambda ir: ir.update(enable_namespacing="no"), "enable_namespacing: must be true or false, got a string"),
    (lambda ir: ir["nodes"][0].update(purpose=3), "nodes[0].purpose: must be a string, got a number"),
    (lambda ir: ir["mappings"].update(nobody={}), "mappings.nobody: no node with id 'nobody'"),
    (lambda ir: ir["mappings"]["ask"].update(input_mappings={"x": 1}),
     "mappings.ask.input_mappings: every value must be a string"),
    (lambda ir: ir["inputs"]["topic"].update(required="yes"), "inputs.topic.required: must be true or false"),
    (lambda ir: ir["outputs"]["said"].update(source=["${greet.text}"]), "outputs.said.source: must be a template"),
])
def test_a_known_key_of_the_wrong_type_is_refused(change, line):
    errors = validate_workflow(_with(change), NODE_TYPES)
    assert any(error.startswith(line) for error in errors), errors


def test_unknown_keys_in_many_nodes_are_counted_past_the_shown_ones():
    ir = {"ir_version": "0.1.0",
          "nodes": [{"id": f"n{i}", "type": "echo", "colour": i} for i in range(5_000)]}
    errors = validate_workflow(ir, NODE_TYPES)
    assert len(errors) == MAX_SHOWN_ERRORS + 1
    assert errors[0].startswith("nodes[0].colour: unknown key")
    assert errors[-1] == f"and {5_000 - MAX_SHOWN_ERRORS} more problems"


def test_the_cli_refuses_an_unknown_key_with_exit_2_naming_it(cli, tmp_path):
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(_with(lambda ir: ir["nodes"][0].update(retries=3))))
    code, out, err = cli("run", path, "--no-ledger")
    assert code == 2 and out == ""
    assert err.strip() == ("pflow-metrics: error: nodes[0].retries: unknown key (allowed: id, type, purpose, "
                           "params)")


def test_a_workflow_with_purpose_and_mappings_runs(cli, tmp_path):
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(BASE))
    code, out, err = cli("run", path, "--no-ledger", "--output-format", "json")
    assert code == 0, err
    assert json.loads(out)["result"] == {"said": "owls"}
