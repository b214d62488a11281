"""`pflow-metrics trace export FILE [-o OUT]`: our streaming JSON-lines trace as pflow's trace
document (pflow's runtime/workflow_trace.py, format 1.1.0), from real runs with the offline
`echo` model."""

from __future__ import annotations

import json
import stat
from datetime import datetime
from pathlib import Path

import pytest

from pflow_metrics.instrumentation.trace import read_trace
from pflow_metrics.instrumentation.trace_export import export_trace

PFLOW_TRACE_KEYS = {"format_version", "execution_id", "workflow_name", "start_time", "end_time", "duration_ms",
                    "final_status", "nodes_executed", "nodes_failed", "nodes"}
PFLOW_NODE_KEYS = {"node_id", "node_type", "duration_ms", "success", "shared_before", "shared_after", "mutations",
                   "timestamp"}
PIPELINE = {
    "ir_version": "0.1.0",
    "inputs": {"topic": {"type": "string"}},
    "outputs": {"answer": {"source": "${ask.response}"}},
    "nodes": [
        {"id": "greet", "type": "echo", "params": {"text": "about ${topic}"}},
        {"id": "ask", "type": "llm", "params": {"model": "echo", "prompt": "Explain ${greet.text}"}},
    ],
}
FAILING = {
    "ir_version": "0.1.0",
    "nodes": [
        {"id": "first", "type": "echo", "params": {"text": "hi"}},
        {"id": "boom", "type": "shell", "params": {"command": "echo broken >&2; exit 4"}},
    ],
}


@pytest.fixture
def traced_run(cli, tmp_path):
    def run(ir: dict, *inputs: str) -> tuple[dict, Path]:
        path = tmp_path / "flow.json"
        path.write_text(json.dumps(ir))
        _, out, _ = cli("run", path, *inputs, "--trace", "--no-ledger", "--output-format", "json")
        body = json.loads(out)
        return body, Path(body["trace_path"])

    return run


def test_export_has_pflows_trace_document_shape_and_values(traced_run):
    body, path = traced_run(PIPELINE, "topic=owls")
    trace = export_trace(read_trace(path))
    assert PFLOW_TRACE_KEYS <= set(trace)
    assert trace["format_version"] == "1.1.0"
    assert trace["execution_id"] == body["run_id"] and trace["workflow_name"] == "flow"
    start, end = datetime.fromisoformat(trace["start_time"]), datetime.fromisoformat(trace["end_time"])
    assert start <= end
    assert trace["duration_ms"] == body["duration_ms"]
    assert (trace["final_status"], trace["nodes_executed"], trace["nodes_failed"]) == ("success", 2, 0)

    greet, ask = trace["nodes"]
    for node in (greet, ask):
        assert PFLOW_NODE_KEYS <= set(node) and node["success"] is True
        assert isinstance(node["duration_ms"], float) and node["duration_ms"] == round(node["duration_ms"], 2)
        datetime.fromisoformat(node["timestamp"])
        assert set(node["mutations"]) == {"added", "removed", "modified"}
        assert all(part == sorted(part) for part in node["mutations"].values())
    assert (greet["node_id"], greet["node_type"], ask["node_id"], ask["node_type"]) == ("greet", "echo", "ask", "llm")
    assert greet["shared_before"] == {"topic": "owls", "__llm_calls__": []}
    assert greet["shared_after"]["greet"] == {"text": "about owls"}
    assert greet["mutations"] == {"added": ["greet"], "removed": [], "modified": []}
    assert greet["template_resolutions"] == {"topic": "owls"}
    assert ask["shared_before"] == greet["shared_after"]
    assert ask["mutations"]["added"] == ["ask"] and ask["mutations"]["modified"] == ["__llm_calls__"]

    call = ask["llm_call"]
    assert call["model"] == "echo" and call["input_tokens"] > 0 and call["output_tokens"] > 0
    assert call["total_tokens"] == call["input_tokens"] + call["output_tokens"]
    assert "Explain about owls" in ask["llm_prompt"] and "Explain about owls" in ask["llm_response"]
    assert ask["llm_response"] == body["result"]["answer"]
    assert "llm_call" not in greet
    assert trace["llm_summary"] == {"total_calls": 1, "total_tokens": call["total_tokens"], "models_used": ["echo"]}


def test_export_of_a_failed_run_marks_the_failed_node(traced_run):
    body, path = traced_run(FAILING)
    trace = export_trace(read_trace(path))
    assert (trace["final_status"], trace["nodes_executed"], trace["nodes_failed"]) == ("failed", 2, 1)
    first, boom = trace["nodes"]
    assert first["success"] is True and boom["success"] is False
    assert "command exited with 4" in boom["error"]
    assert "llm_summary" not in trace
    assert trace["status"] == "failed" and "command exited with 4" in trace["error"]


def test_export_of_a_killed_run_keeps_its_finished_nodes(traced_run):
    _, path = traced_run(PIPELINE, "topic=owls")
    lines = path.read_text().split("\n")[:-1]
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])  # summary lost, half a line left
    trace = export_trace(read_trace(path))
    assert trace["nodes_executed"] == 2 and trace["nodes_failed"] == 0
    assert trace["final_status"] == "failed" and trace["incomplete"] is True
    assert isinstance(trace["duration_ms"], float) and trace["end_time"] is not None


def test_cli_writes_the_document_to_stdout_or_to_the_output_file(traced_run, cli, tmp_path):
    _, path = traced_run(PIPELINE, "topic=owls")
    code, out, err = cli("trace", "export", path)
    assert code == 0 and err == ""
    printed = json.loads(out)
    target = tmp_path / "pflow-trace.json"
    code, out, err = cli("trace", "export", path, "-o", target)
    assert code == 0 and out == "" and err == ""
    assert json.loads(target.read_text()) == printed == export_trace(read_trace(path))


@pytest.mark.parametrize("content", ["not json at all\n{}\n", '{"type": "node"}\n', '[1, 2]\n'])
def test_cli_refuses_a_file_that_is_not_a_trace_with_one_line_and_exit_2(cli, tmp_path, content):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    code, out, err = cli("trace", "export", path)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "bad.jsonl" in err


def test_cli_refuses_a_missing_file_with_exit_2(cli, tmp_path):
    code, out, err = cli("trace", "export", tmp_path / "nope.jsonl")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1


def test_export_survives_fields_of_any_type(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in [
        {"type": "header", "workflow": 5, "run_id": ["x"], "started_at": "not a time"},
        {"type": "node", "node_id": {}, "node_type": 1, "duration_ms": "slow", "status": None, "llm_calls": "many",
         "changes": 7, "template_resolutions": [], "error": 3, "at": 12},
        {"type": "node", "node_id": "n", "llm_calls": [{"model": 3, "input_tokens": -1, "total_tokens": "x"}, 4]},
        {"type": "summary", "status": 1, "duration_ms": -5, "error": {"a": 1}},
    ]) + "\n")
    trace = export_trace(read_trace(path))
    assert trace["nodes_executed"] == 2 and trace["nodes_failed"] == 2
    assert trace["workflow_name"] == "workflow" and trace["duration_ms"] is None
    assert trace["nodes"][1]["llm_call"]["input_tokens"] == 0
    json.dumps(trace)


def test_cli_output_file_is_private_like_the_trace(traced_run, cli, tmp_path):
    _, path = traced_run(PIPELINE, "topic=owls")
    target = tmp_path / "pflow-trace.json"
    assert cli("trace", "export", path, "-o", target)[0] == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_cli_refuses_an_output_it_cannot_write_with_exit_2(traced_run, cli, tmp_path):
    _, path = traced_run(PIPELINE, "topic=owls")
    code, out, err = cli("trace", "export", path, "-o", tmp_path / "no-such-dir" / "out.json")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "cannot write" in err


def test_cli_exports_values_no_utf8_file_could_hold(cli, tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text('{"type": "header", "workflow": "w\\ud800", "run_id": "r"}\n'
                    '{"type": "node", "node_id": "n", "status": "success", "error": "\\u2028\\ud800"}\n')
    code, out, err = cli("trace", "export", path)
    assert code == 0, err
    assert json.loads(out)["workflow_name"] == "w\ud800"
