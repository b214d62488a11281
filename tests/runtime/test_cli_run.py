"""`pflow-metrics run` end to end: outputs, JSON shape, exit codes, ledger rows, traces."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from pflow_metrics.ledger.filters import Filters
from pflow_metrics.ledger.queries import count_runs
from pflow_metrics.ledger.store import Ledger

EXAMPLES = Path(__file__).parents[2] / "examples"

PIPELINE = {
    "ir_version": "0.1.0",
    "inputs": {"topic": {"type": "string", "required": True}},
    "outputs": {"summary": {"source": "${summarize.response}"}, "title": {"source": "${title.response}"}},
    "nodes": [
        {"id": "summarize", "type": "llm", "params": {"model": "echo", "prompt": "About ${topic}"}},
        {"id": "title", "type": "llm", "params": {"model": "echo", "prompt": "Title: ${summarize.response}"}},
    ],
    "edges": [{"from": "summarize", "to": "title"}],
}
FAILING = {
    "ir_version": "0.1.0",
    "nodes": [
        {"id": "first", "type": "echo", "params": {"x": 1}},
        {"id": "boom", "type": "shell", "params": {"command": "echo broken >&2; exit 4"}},
        {"id": "never", "type": "echo", "params": {"x": 2}},
    ],
}


def test_json_output_has_result_metrics_and_run_id(cli, write_workflow, ledger_url):
    result = cli("--db", ledger_url, "run", str(write_workflow(PIPELINE)), "topic=cats", "--output-format", "json")
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert set(body) == {"result", "is_error", "duration_ms", "duration_planner_ms", "total_cost_usd", "num_nodes",
                         "metrics", "run_id", "trace_path"}
    assert body["is_error"] is False and body["trace_path"] is None
    assert '"prompt": "About cats"' in body["result"]["summary"]
    assert "Title:" in body["result"]["title"]
    assert set(body["metrics"]) == {"workflow", "total"}  # no planner ran
    assert body["metrics"]["total"]["nodes_executed"] == 2

    with Ledger.open(ledger_url) as ledger:
        record = ledger.get_run(body["run_id"])
    assert record.status == "success" and record.workflow == "flow"
    assert [node.node_id for node in record.nodes] == ["summarize", "title"]
    assert [(call.node_id, call.model, call.phase) for call in record.llm_calls] == [
        ("summarize", "echo", "workflow"), ("title", "echo", "workflow")
    ]


def test_text_output_lists_outputs_then_one_summary_line(cli, write_workflow):
    result = cli("run", str(write_workflow(PIPELINE)), "topic=dogs")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.rstrip("\n").split("\n")
    assert lines[0].startswith("summary: {")
    assert any(line.startswith("title: ") for line in lines)
    assert lines[-1].startswith("success · ") and "2 nodes" in lines[-1] and "run " in lines[-1]


def test_a_failing_node_exits_1_and_names_the_node(cli, write_workflow, ledger_url):
    result = cli("--db", ledger_url, "run", str(write_workflow(FAILING)), "--output-format", "json")
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["is_error"] is True and body["result"] is None
    assert body["error"] == "command exited with 4: broken"
    assert body["error_detail"] == {"message": "command exited with 4: broken", "node_id": "boom",
                                    "type": "ShellCommandFailed"}
    with Ledger.open(ledger_url) as ledger:
        record = ledger.get_run(body["run_id"])
    assert record.status == "failed"
    assert [(node.node_id, node.status) for node in record.nodes] == [("first", "success"), ("boom", "failed")]


def test_a_failing_node_in_text_mode_prints_one_error_line(cli, write_workflow):
    result = cli("run", str(write_workflow(FAILING)))
    assert result.exit_code == 1
    assert "pflow-metrics: error: node 'boom' failed: command exited with 4: broken" in result.stderr
    assert result.stdout.strip().startswith("failed · ")


def test_validation_errors_exit_2_one_line_each_and_record_nothing(cli, write_workflow, ledger_url):
    bad = {"ir_version": "0.1.0", "nodes": [{"id": "a", "type": "lm"}, {"id": "b", "type": "echo",
                                                                          "params": {"v": "${c.x}"}}],
           "edges": [{"from": "a", "to": "z"}]}
    result = cli("--db", ledger_url, "run", str(write_workflow(bad)))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "pflow-metrics: error: nodes[0].type: unknown node type 'lm' (did you mean 'llm'?)",
        "pflow-metrics: error: nodes[1].params.v: ${c.x} names no input or node",
        "pflow-metrics: error: edges[0].to: no node with id 'z'",
    ]
    assert result.stdout == ""
    with Ledger.open(ledger_url) as ledger:
        assert count_runs(ledger, Filters()) == 0


def test_a_missing_required_input_is_a_validation_error(cli, write_workflow):
    result = cli("run", str(write_workflow(PIPELINE)))
    assert result.exit_code == 2
    assert "inputs.topic: required input not given (pass topic=VALUE)" in result.stderr


def test_invalid_json_is_a_validation_error(cli, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{nope")
    result = cli("run", str(path))
    assert result.exit_code == 2
    assert "invalid JSON at line 1 column 2" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give a workflow FILE, or a request with --plan"),
        (("x.json", "--save", "out.json"), "need --plan"),
        (("x.json", "--budget-usd", "0"), "--budget-usd must be more than 0"),
        (("x.json", "--tag", "novalue"), "--tag 'novalue': expected NAME=VALUE"),
    ],
)
def test_usage_errors_exit_2(cli, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.json").write_text(json.dumps(FAILING))  # a readable workflow: the usage error is what stops it
    code, out, err = cli("run", *args)
    assert code == 2
    assert message in err and out == ""


def test_tags_and_no_ledger(cli, write_workflow, sqlite_url):
    path = str(write_workflow(PIPELINE))
    tagged = cli("--db", sqlite_url, "run", path, "topic=x", "--tag", "team=data", "--output-format", "json")
    with Ledger.open(sqlite_url) as ledger:
        assert ledger.get_run(json.loads(tagged.stdout)["run_id"]).tags == {"team": "data"}
    assert tagged.exit_code == 0, tagged.stderr
    unrecorded = cli("--db", sqlite_url, "run", path, "topic=x", "--no-ledger", "--output-format", "json")
    assert unrecorded.exit_code == 0
    with Ledger.open(sqlite_url) as ledger:
        assert count_runs(ledger, Filters()) == 1  # only the tagged run: --no-ledger recorded nothing
        with pytest.raises(Exception):
            ledger.get_run(json.loads(unrecorded.stdout)["run_id"])


def test_trace_writes_a_private_file_with_template_resolutions(cli, write_workflow):
    result = cli("run", str(write_workflow(PIPELINE)), "topic=owls", "--trace", "--output-format", "json")
    trace = Path(json.loads(result.stdout)["trace_path"])
    assert stat.S_IMODE(trace.stat().st_mode) == 0o600
    text = trace.read_text()
    assert '"topic": "owls"' in text and "summarize.response" in text


def test_text_mode_prints_the_trace_path(cli, write_workflow):
    result = cli("run", str(write_workflow(PIPELINE)), "topic=owls", "--trace")
    assert result.exit_code == 0
    trace_line = [line for line in result.stdout.splitlines() if line.startswith("trace: ")]
    assert Path(trace_line[0].removeprefix("trace: ")).exists()


def test_namespacing_keeps_same_keys_of_different_nodes_apart(cli, write_workflow):
    ir = {
        "ir_version": "0.1.0",
        "outputs": {"a": {"source": "${one.value}"}, "b": {"source": "${two.value}"}, "both": {"source": "${two.both}"}},
        "nodes": [
            {"id": "one", "type": "echo", "params": {"value": "first"}},
            {"id": "two", "type": "echo", "params": {"value": "second", "both": ["${one.value}", "${value}"]}},
        ],
    }
    ir["inputs"] = {"value": {"type": "string", "default": "root"}}
    result = cli("run", str(write_workflow(ir)), "--output-format", "json", "--no-ledger")
    assert json.loads(result.stdout)["result"] == {"a": "first", "b": "second", "both": ["first", "root"]}


def test_budget_stops_the_run_with_exit_1(cli, write_workflow, ledger_url, pflow_home):
    pflow_home.mkdir(parents=True, exist_ok=True)
    (pflow_home / "pricing.toml").write_text((EXAMPLES / "pricing.toml").read_text())
    result = cli("--db", ledger_url, "run", str(write_workflow(PIPELINE)), "topic=x",
                    "--budget-usd", "0.0000001", "--output-format", "json")
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["error_detail"]["type"] == "BudgetExceeded"
    with Ledger.open(ledger_url) as ledger:
        record = ledger.get_run(body["run_id"])
    assert record.status == "budget_exceeded"
    assert [node.node_id for node in record.nodes] == ["summarize"]


def test_no_ledger_prints_no_run_id_in_the_summary(cli, write_workflow, sqlite_url):
    path = str(write_workflow(PIPELINE))
    recorded = cli("--db", sqlite_url, "run", path, "topic=x")
    unrecorded = cli("--db", sqlite_url, "run", path, "topic=x", "--no-ledger")
    assert " · run " in recorded.stdout.splitlines()[-1]
    assert " · run " not in unrecorded.stdout.splitlines()[-1]
