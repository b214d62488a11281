"""`export --format otlp`: stored runs sent to a real OTLP receiver (Phoenix)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pflow_metrics.instrumentation.otel import span_id_of
from pflow_metrics.ledger.store import Ledger
from tests.factories import make_run
from tests.otel.readback import by_name, end, node_end, node_start, one, start, trace_hex

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz123456"


def seed(url: str) -> list:
    """Three finished runs: one failed with a secret in its error, one tagged."""
    now = datetime.now(UTC).replace(microsecond=0)
    ok = make_run("digest", started_at=now - timedelta(hours=3),
                  calls=[{"node_id": "step-0", "model": "gpt-4o", "cache_read_tokens": 40},
                         {"node_id": "step-1", "model": "claude-sonnet-4", "provider": "anthropic",
                          "cost_usd": None}])
    failed = make_run("digest", started_at=now - timedelta(hours=2), status="failed", nodes=1, calls=[])
    failed.nodes[0].status = "failed"
    failed.nodes[0].error = f"ValueError: the key {SECRET} was refused"
    failed.error = f"ValueError: the key {SECRET} was refused"
    tagged = make_run("report", started_at=now - timedelta(hours=1), tags={"team": "growth"})
    with Ledger.open(url) as ledger:
        for record in (ok, failed, tagged):
            ledger.finish_run(record)
    return [ok, failed, tagged]


def test_a_seeded_ledger_arrives_as_one_trace_per_run(cli, ledger_url, otel_env, phoenix):
    ok, failed, tagged = seed(ledger_url)
    result = cli("--db", ledger_url, "export", "--format", "otlp", "--since", "7d")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"sent 3 runs (11 spans) to {phoenix.url}/v1/traces\n"
    assert result.stderr == ""

    spans = phoenix.spans(otel_env, 11)
    assert {span["context"]["trace_id"] for span in spans} == {trace_hex(r.run_id) for r in (ok, failed, tagged)}
    roots = {span["context"]["trace_id"]: span for span in spans if span["parent_id"] is None}
    assert len(roots) == 3

    root = roots[trace_hex(ok.run_id)]
    assert root["name"] == "invoke_workflow digest"
    assert root["context"]["span_id"] == format(span_id_of(ok.run_id, "run"), "016x")
    assert (start(root), end(root)) == (ok.started_at, ok.ended_at)
    assert root["attributes"]["pflow.cost_usd_lower_bound"] == 0.01  # the priced call; the other is unpriced
    assert "pflow.cost_usd" not in root["attributes"]
    assert root["attributes"]["pflow.unpriced_calls"] == 1
    ok_spans = [span for span in spans if span["context"]["trace_id"] == trace_hex(ok.run_id)]
    nodes = {span["attributes"]["pflow.node.id"]: span for span in ok_spans if span["name"].startswith("node ")}
    for node in ok.nodes:
        assert nodes[node.node_id]["parent_id"] == root["context"]["span_id"]
        assert (start(nodes[node.node_id]), end(nodes[node.node_id])) == (node_start(ok, node), node_end(ok, node))
    gpt, claude = one(ok_spans, "chat gpt-4o"), one(ok_spans, "chat claude-sonnet-4")
    assert gpt["parent_id"] == nodes["step-0"]["context"]["span_id"]
    assert claude["parent_id"] == nodes["step-1"]["context"]["span_id"]
    assert gpt["attributes"]["gen_ai.usage.input_tokens"] == 140  # cached input counts as input here
    assert gpt["attributes"]["gen_ai.usage.cache_read.input_tokens"] == 40
    assert claude["attributes"]["gen_ai.provider.name"] == "anthropic"
    assert "pflow.cost_usd" not in claude["attributes"]  # unpriced: no cost, never $0

    bad = roots[trace_hex(failed.run_id)]
    assert bad["status_code"] == "ERROR"
    bad_node = one([s for s in spans if s["parent_id"] == bad["context"]["span_id"]], "node step-0")
    assert bad_node["status_code"] == "ERROR"
    assert bad_node["attributes"]["error.type"] == "ValueError"
    assert "was refused" in bad_node["status_message"]
    assert SECRET not in str(spans) and SECRET[8:] not in str(spans)

    assert roots[trace_hex(tagged.run_id)]["attributes"]["pflow.tag.team"] == "growth"
    assert roots[trace_hex(tagged.run_id)]["attributes"]["pflow.cost_usd"] == 0.01


def test_exporting_twice_sends_the_same_traces_again(cli, sqlite_url, otel_env, phoenix):
    seed(sqlite_url)
    assert cli("--db", sqlite_url, "export", "--format", "otlp").exit_code == 0
    first = phoenix.spans(otel_env, 11)
    assert cli("--db", sqlite_url, "export", "--format", "otlp").exit_code == 0
    assert cli("--db", sqlite_url, "export", "--format", "otlp", "--workflow", "report").exit_code == 0
    again = phoenix.spans(otel_env, 11)
    # Phoenix keeps one span per span id: new ids would have doubled the count.
    ids = sorted((s["context"]["trace_id"], s["context"]["span_id"], s["parent_id"] or "") for s in first)
    assert ids == sorted((s["context"]["trace_id"], s["context"]["span_id"], s["parent_id"] or "") for s in again)
    assert len(again) == 11


def test_runs_otlp_cannot_carry_are_named_and_the_rest_are_sent(cli, sqlite_url, otel_env, phoenix):
    far = make_run("far-future", started_at=datetime(2600, 1, 1, tzinfo=UTC))
    near = make_run("today")
    with Ledger.open(sqlite_url) as ledger:
        ledger.finish_run(far)
        ledger.finish_run(near)
    result = cli("--db", sqlite_url, "export", "--format", "otlp", "--since", "2000-01-01", "--until", "2700-01-01")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (f"pflow-metrics: warning: run {far.run_id} not sent: its times lie past "
                             f"2554-07-21, the last moment OTLP can carry\n")
    assert result.stdout.startswith("sent 1 run (4 spans)")
    assert by_name(phoenix.spans(otel_env, 4))["invoke_workflow today"]


def test_an_unreachable_endpoint_is_one_error_line_and_exit_1(cli, sqlite_url, closed_port, monkeypatch):
    monkeypatch.setenv("PFLOW_METRICS_OTEL_TIMEOUT", "0.5")
    seed(sqlite_url)
    result = cli("--db", sqlite_url, "export", "--format", "otlp", "--endpoint", f"http://127.0.0.1:{closed_port}")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[-1].startswith(f"pflow-metrics: error: sent 0 runs, then OpenTelemetry export to "
                                f"http://127.0.0.1:{closed_port}/v1/traces: ")
    assert len(lines) == 1


def test_credentials_in_the_endpoint_never_reach_a_message(cli, sqlite_url, closed_port, monkeypatch):
    monkeypatch.setenv("PFLOW_METRICS_OTEL_TIMEOUT", "0.3")
    seed(sqlite_url)
    result = cli("--db", sqlite_url, "export", "--format", "otlp",
                 "--endpoint", f"http://admin:hunter2@127.0.0.1:{closed_port}/otlp?password=s3cr3t")
    assert result.exit_code == 1
    assert "hunter2" not in result.stderr and "s3cr3t" not in result.stderr
    assert f"127.0.0.1:{closed_port}/otlp/v1/traces?password=" in result.stderr


def test_a_hostile_endpoint_setting_is_one_escaped_error_line(cli, sqlite_url, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "garbage\x1b]0;title\x07\x1b[31m")
    seed(sqlite_url)
    result = cli("--db", sqlite_url, "export", "--format", "otlp")
    assert result.exit_code == 1
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert result.stderr.startswith("pflow-metrics: error: sent 0 runs, then OpenTelemetry export to garbage")
    assert result.stderr.count("\n") == 1


def test_no_runs_in_the_window_sends_nothing(cli, sqlite_url, closed_port):
    result = cli("--db", sqlite_url, "export", "--format", "otlp", "--endpoint", f"http://127.0.0.1:{closed_port}")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == f"sent 0 runs (0 spans) to http://127.0.0.1:{closed_port}/v1/traces\n"


@pytest.mark.parametrize("args, message", [
    (["--endpoint", "http://localhost:4318"], "--endpoint: only with --format otlp"),
    (["--format", "otlp", "--endpoint", "ftp://collector:4318"], "--endpoint: must be an http:// or https:// URL"),
    (["--format", "otlp", "--endpoint", "http://"], "--endpoint: must be an http:// or https:// URL"),
    (["--format", "otlp", "--endpoint", "localhost:4318"], "--endpoint: must be an http:// or https:// URL"),
    (["--format", "otlpx"], "--format: must be jsonl, csv or otlp"),
])
def test_bad_export_options_are_usage_errors(cli, sqlite_url, args, message):
    result = cli("--db", sqlite_url, "export", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"pflow-metrics: error: {message}")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e3", "11m", "2h", "soon", "1" * 5000])
def test_a_bad_otel_timeout_is_a_usage_error(cli, sqlite_url, monkeypatch, value):
    monkeypatch.setenv("PFLOW_METRICS_OTEL_TIMEOUT", value)
    result = cli("--db", sqlite_url, "export", "--format", "otlp")
    assert result.exit_code == 2
    assert result.stderr.startswith("pflow-metrics: error: PFLOW_METRICS_OTEL_TIMEOUT: cannot use")
    assert result.stderr.count("\n") == 1
