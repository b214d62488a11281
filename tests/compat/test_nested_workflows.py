"""The `workflow` node: nested workflows from a file or inline, with pflow's mappings and storage
modes, instrumented in the parent's run as `parent/child` nodes."""

from __future__ import annotations

import json

from pflow_metrics.ledger.store import Ledger
from pflow_metrics.runtime.compiler import compile_workflow
from pflow_metrics.runtime.runner import run_workflow

CHILD = {
    "ir_version": "0.1.0",
    "inputs": {"topic": {"type": "string", "required": True}},
    "outputs": {"answer": {"source": "${ask.response}"}},
    "nodes": [
        {"id": "greet", "type": "echo", "params": {"text": "about ${topic}"}},
        {"id": "ask", "type": "llm", "params": {"model": "echo", "prompt": "Explain ${greet.text}"}},
    ],
}


def parent(params, more_nodes=(), edges=None):
    ir = {"ir_version": "0.1.0", "inputs": {"subject": {"type": "string", "required": False, "default": "dogs"}},
          "nodes": [{"id": "sub", "type": "workflow", "params": params}, *more_nodes]}
    if edges is not None:
        ir["edges"] = edges
    return ir


def test_a_workflow_file_runs_with_mapped_params_and_outputs(tmp_path, sqlite_url):
    (tmp_path / "child.json").write_text(json.dumps(CHILD))
    ir = parent({"workflow_ref": str(tmp_path / "child.json"), "param_mapping": {"topic": "${subject}"},
                 "output_mapping": {"answer": "answer", "ask.llm_usage.model": "model"}},
                more_nodes=[{"id": "after", "type": "echo", "params": {"got": "${sub.answer}"}}])
    ir["outputs"] = {"answer": {"source": "${sub.answer}"}, "model": {"source": "${sub.model}"}}
    outcome = run_workflow(ir, {}, workflow="nested", ledger=sqlite_url)
    assert outcome.ok, outcome.error
    assert json.loads(outcome.outputs["answer"])["prompt"] == "Explain about dogs"
    assert outcome.outputs["model"] == "echo"


def test_child_nodes_appear_as_parent_slash_child_with_calls_counted_once(tmp_path, ledger_url):
    (tmp_path / "child.json").write_text(json.dumps(CHILD))
    ir = parent({"workflow_ref": str(tmp_path / "child.json"), "param_mapping": {"topic": "${subject}"},
                 "output_mapping": {"answer": "answer"}})
    outcome = run_workflow(ir, {}, workflow="nested", ledger=ledger_url)
    assert outcome.ok, outcome.error
    assert [call.node_id for call in outcome.result.record.llm_calls] == ["sub/ask"]
    with Ledger.open(ledger_url) as ledger:
        record = ledger.get_run(outcome.result.run_id)
    assert [node.node_id for node in record.nodes] == ["sub/greet", "sub/ask", "sub"]
    assert [(call.node_id, call.model) for call in record.llm_calls] == [("sub/ask", "echo")]


def test_inline_workflow_ir_keeps_its_own_templates_and_nests_two_levels(sqlite_url):
    inner = {"ir_version": "0.1.0", "inputs": {"word": {"type": "string"}},
             "nodes": [{"id": "say", "type": "llm", "params": {"model": "echo", "prompt": "say ${word}"}}]}
    middle = {"ir_version": "0.1.0", "inputs": {"word": {"type": "string"}},
              "nodes": [{"id": "deeper", "type": "workflow",
                         "params": {"workflow_ir": inner, "param_mapping": {"word": "${word}"},
                                    "output_mapping": {"say.response": "said"}}}]}
    flow = compile_workflow(parent({"workflow_ir": middle, "param_mapping": {"word": "hi"},
                                    "output_mapping": {"deeper.said": "said"}}))
    from pflow_metrics.instrumentation import RunSession

    session = RunSession("inline", ledger=sqlite_url)
    shared = {"subject": "dogs"}
    session.run_flow(flow, shared)
    result = session.finish()
    assert json.loads(shared["sub"]["said"])["prompt"] == "say hi"
    assert [node.node_id for node in result.record.nodes] == ["sub/deeper/say", "sub/deeper", "sub"]
    assert [call.node_id for call in result.record.llm_calls] == ["sub/deeper/say"]
    with Ledger.open(sqlite_url) as ledger:
        assert [n.node_id for n in ledger.get_run(result.run_id).nodes] == ["sub/deeper/say", "sub/deeper", "sub"]


def test_isolated_mode_hides_the_parent_store_and_shared_mode_writes_into_it():
    child = {"ir_version": "0.1.0", "nodes": [{"id": "peek", "type": "echo", "params": {"message": "m"}}]}
    shared = {"message": "from parent"}
    compile_workflow(parent({"workflow_ir": child, "storage_mode": "isolated",
                             "output_mapping": {"peek.echo": "seen"}})).run(shared)
    assert shared["sub"]["seen"] == "m"
    shared = {"message": "from parent"}
    compile_workflow(parent({"workflow_ir": child, "storage_mode": "shared"})).run(shared)
    assert shared["sub"]["peek"]["echo"] == "from parent"


def test_scoped_mode_passes_prefixed_keys_without_their_prefix():
    child = {"ir_version": "0.1.0", "nodes": [{"id": "peek", "type": "echo", "params": {"x": 1}}]}
    shared = {"child_message": "scoped", "message": "root"}
    compile_workflow(parent({"workflow_ir": child, "storage_mode": "scoped",
                             "output_mapping": {"peek.echo": "seen"}})).run(shared)
    assert shared["sub"]["seen"] == "scoped"


def test_a_failing_child_takes_the_parents_error_edge(tmp_path):
    child = {"ir_version": "0.1.0", "nodes": [{"id": "boom", "type": "shell", "params": {"command": "exit 5"}}]}
    shared = {}
    compile_workflow(parent({"workflow_ir": child},
                            more_nodes=[{"id": "handled", "type": "echo", "params": {"why": "${sub.error}"}}],
                            edges=[{"from": "sub", "to": "handled", "action": "error"}])).run(shared)
    assert "command exited with 5" in shared["handled"]["why"]


def test_a_failing_child_without_an_error_edge_fails_the_run(sqlite_url):
    child = {"ir_version": "0.1.0", "nodes": [{"id": "boom", "type": "shell", "params": {"command": "exit 5"}}]}
    outcome = run_workflow(parent({"workflow_ir": child}), {}, workflow="nested", ledger=sqlite_url)
    assert not outcome.ok and outcome.failed_node == "sub"
    with Ledger.open(sqlite_url) as ledger:
        record = ledger.get_run(outcome.result.run_id)
    assert [(n.node_id, n.status) for n in record.nodes] == [("sub/boom", "failed"), ("sub", "failed")]


def test_a_workflow_that_runs_itself_stops_at_the_depth_limit(tmp_path):
    path = tmp_path / "loop.json"
    path.write_text(json.dumps({"ir_version": "0.1.0", "nodes": [
        {"id": "again", "type": "workflow", "params": {"workflow_ref": str(path), "storage_mode": "shared"}}]}))
    shared = {}
    flow = compile_workflow({"ir_version": "0.1.0", "nodes": [
        {"id": "sub", "type": "workflow", "params": {"workflow_ref": str(path)}},
        {"id": "handled", "type": "echo", "params": {"why": "${sub.error}"}}],
        "edges": [{"from": "sub", "to": "handled", "action": "error"}]})
    flow.run(shared)
    assert "circular workflow reference" in shared["handled"]["why"]


def test_nesting_deeper_than_max_depth_fails_the_node():
    leaf = {"ir_version": "0.1.0", "nodes": [{"id": "x", "type": "echo", "params": {"x": 1}}]}
    middle = {"ir_version": "0.1.0", "nodes": [{"id": "m", "type": "workflow", "params": {"workflow_ir": leaf,
                                                                                        "max_depth": 1}}]}
    shared = {}
    compile_workflow(parent({"workflow_ir": middle}, more_nodes=[{"id": "h", "type": "echo", "params": {"e": "${sub.error}"}}],
                            edges=[{"from": "sub", "to": "h", "action": "error"}])).run(shared)
    assert "maximum workflow nesting depth (1)" in shared["h"]["e"]


def test_shared_mode_gives_the_parent_its_own_nesting_context_back():
    child = {"ir_version": "0.1.0", "nodes": [{"id": "peek", "type": "echo", "params": {"x": 1}}]}
    shared = {}
    compile_workflow(parent({"workflow_ir": child, "storage_mode": "shared"})).run(shared)
    assert shared["sub"]["peek"] == {"x": 1}
    assert not any(key.startswith("_pflow_") for key in shared["sub"]) and "_pflow_depth" not in shared


def test_a_custom_error_action_routes_a_failing_child():
    child = {"ir_version": "0.1.0", "nodes": [{"id": "boom", "type": "shell", "params": {"command": "exit 7"}}]}
    shared = {}
    compile_workflow(parent({"workflow_ir": child, "error_action": "child_failed"},
                            more_nodes=[{"id": "handled", "type": "echo", "params": {"why": "${sub.error}"}}],
                            edges=[{"from": "sub", "to": "handled", "action": "child_failed"}])).run(shared)
    assert "command exited with 7" in shared["handled"]["why"]


def test_a_child_may_use_mapped_params_it_does_not_declare_and_relative_refs_follow_its_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "leaf.json").write_text(json.dumps({"ir_version": "0.1.0", "nodes": [
        {"id": "say", "type": "echo", "params": {"said": "${word}"}}]}))
    (tmp_path / "sub" / "middle.json").write_text(json.dumps({"ir_version": "0.1.0", "nodes": [
        {"id": "leaf", "type": "workflow", "params": {"workflow_ref": "leaf.json", "param_mapping": {"word": "${word}"},
                                                      "output_mapping": {"say.said": "said"}}}]}))
    shared = {}
    compile_workflow(parent({"workflow_ref": str(tmp_path / "sub" / "middle.json"), "param_mapping": {"word": "hey"},
                             "output_mapping": {"leaf.said": "said"}})).run(shared)
    assert shared["sub"]["said"] == "hey"


def test_a_saved_workflow_runs_by_name(pflow_home):
    (pflow_home / "workflows").mkdir(parents=True)
    saved = {"name": "greeter", "description": "says hi", "ir": {"ir_version": "0.1.0", "nodes": [
        {"id": "say", "type": "echo", "params": {"said": "hi ${who}"}}]}}
    (pflow_home / "workflows" / "greeter.json").write_text(json.dumps(saved))
    shared = {}
    compile_workflow(parent({"workflow_name": "greeter", "param_mapping": {"who": "you"},
                             "output_mapping": {"say.said": "said"}})).run(shared)
    assert shared["sub"]["said"] == "hi you"


def test_an_inline_child_with_its_own_templates_runs_through_run_workflow(sqlite_url):
    inline = {"ir_version": "0.1.0", "inputs": {"word": {"type": "string"}},
              "outputs": {"said": {"source": "${say.response}"}},
              "nodes": [{"id": "say", "type": "llm", "params": {"model": "echo", "prompt": "say ${word}"}}]}
    ir = parent({"workflow_ir": inline, "param_mapping": {"word": "${subject}"}, "output_mapping": {"said": "said"}})
    ir["outputs"] = {"said": {"source": "${sub.said}"}}
    outcome = run_workflow(ir, {}, workflow="inline", ledger=sqlite_url)
    assert outcome.ok, outcome.error
    assert json.loads(outcome.outputs["said"])["prompt"] == "say dogs"


def test_a_child_llm_usage_mapped_into_the_parent_is_counted_once(tmp_path, sqlite_url):
    (tmp_path / "child.json").write_text(json.dumps(CHILD))
    ir = parent({"workflow_ref": str(tmp_path / "child.json"), "param_mapping": {"topic": "${subject}"},
                 "output_mapping": {"ask.llm_usage": "llm_usage"}})
    outcome = run_workflow(ir, {}, workflow="nested", ledger=sqlite_url)
    assert outcome.ok, outcome.error
    assert [call.node_id for call in outcome.result.record.llm_calls] == ["sub/ask"]
