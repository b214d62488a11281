"""pflow's `enable_namespacing`: on (the default), each node writes under its own id; off,
nodes share the root of the shared store, and `llm_usage` written there by one LLM node is
overwritten by the next, yet `__llm_calls__` and the metrics count every call exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pflow_metrics.instrumentation.trace import read_trace
from pflow_metrics.instrumentation.trace_export import export_trace


def _workflow(namespacing: bool | None) -> dict:
    """Two LLM calls with equal prompts (so equal token counts), then a node that writes nothing
    about LLMs: the same workflow whatever the namespacing."""
    ir = {
        "ir_version": "0.1.0",
        "inputs": {"topic": {"type": "string"}},
        "nodes": [
            {"id": "first", "type": "llm", "params": {"model": "echo", "prompt": "tell me about ${topic}"}},
            {"id": "second", "type": "llm", "params": {"model": "echo", "prompt": "tell me about ${topic}"}},
            {"id": "note", "type": "echo", "params": {"text": "done"}},
        ],
    }
    if namespacing is not None:
        ir["enable_namespacing"] = namespacing
    return ir


@pytest.fixture
def run_traced(cli, tmp_path):
    def run(ir: dict) -> tuple[dict, dict]:
        path = tmp_path / "flow.json"
        path.write_text(json.dumps(ir))
        code, out, err = cli("run", path, "topic=owls", "--trace", "--no-ledger", "--output-format", "json")
        assert code == 0, err
        body = json.loads(out)
        return body, export_trace(read_trace(Path(body["trace_path"])))

    return run


@pytest.mark.parametrize("namespacing", [True, None, False], ids=["on", "default", "off"])
def test_every_llm_call_counts_once_with_namespacing_on_or_off(run_traced, namespacing):
    body, trace = run_traced(_workflow(namespacing))
    workflow = body["metrics"]["workflow"]
    assert workflow["llm_calls"] == 2 and workflow["nodes_executed"] == 3
    assert workflow["tokens_input"] > 0 and workflow["tokens_total"] == 2 * (workflow["tokens_total"] // 2)
    final = trace["nodes"][-1]["shared_after"]
    assert [call["node_id"] for call in final["__llm_calls__"]] == ["first", "second"]
    assert [call["is_planner"] for call in final["__llm_calls__"]] == [False, False]
    assert trace["llm_summary"]["total_calls"] == 2


def test_namespacing_on_keeps_each_nodes_writes_under_its_id(run_traced):
    _, trace = run_traced(_workflow(True))
    final = trace["nodes"][-1]["shared_after"]
    assert {"first", "second", "note"} <= set(final)
    assert "response" not in final and "llm_usage" not in final and "text" not in final
    assert "llm_usage" in final["first"] and "llm_usage" in final["second"]
    assert final["note"] == {"text": "done"}


def test_namespacing_off_makes_nodes_share_root_keys(run_traced):
    ir = _workflow(False)
    ir["nodes"][1]["params"]["prompt"] = "and now something else entirely about ${topic}"
    body, trace = run_traced(ir)
    first, second, note = trace["nodes"]
    assert {"llm_usage", "response"} <= set(first["mutations"]["added"])
    # the second LLM node overwrites what the first wrote at the root, and both calls count
    assert {"llm_usage", "response"} <= set(second["mutations"]["modified"])
    assert "first" not in second["shared_after"] and "second" not in second["shared_after"]
    assert note["shared_after"]["text"] == "done" and "note" not in note["shared_after"]
    assert body["metrics"]["workflow"]["llm_calls"] == 2
    assert [call["node_id"] for call in note["shared_after"]["__llm_calls__"]] == ["first", "second"]


def test_namespacing_off_lets_templates_name_root_keys_written_by_nodes(cli, tmp_path):
    ir = {
        "ir_version": "0.1.0",
        "enable_namespacing": False,
        "outputs": {"said": {"source": "${text}"}, "answer": {"source": "${response}"}},
        "nodes": [
            {"id": "greet", "type": "echo", "params": {"text": "about owls"}},
            {"id": "ask", "type": "llm", "params": {"model": "echo", "prompt": "Explain ${text}"}},
        ],
    }
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(ir))
    code, out, err = cli("run", path, "--no-ledger", "--output-format", "json")
    assert code == 0, err
    result = json.loads(out)["result"]
    assert result["said"] == "about owls" and "Explain about owls" in result["answer"]


def test_namespacing_on_still_refuses_templates_naming_no_input_or_node(cli, tmp_path):
    ir = {
        "ir_version": "0.1.0",
        "nodes": [{"id": "ask", "type": "llm", "params": {"model": "echo", "prompt": "Explain ${text}"}}],
    }
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(ir))
    code, _, err = cli("run", path, "--no-ledger")
    assert code == 2
    assert "nodes[0].params.prompt: ${text} names no input or node" in err
