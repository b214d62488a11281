"""OpenTelemetry never costs a run without it anything, and never breaks a run with it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from pflow_metrics.config import otel_enabled, otel_timeout
from pflow_metrics.errors import UsageError
from pflow_metrics.ledger.store import Ledger

WORKFLOW = {"ir_version": "0.1.0",
            "nodes": [{"id": "greet", "type": "echo", "params": {"message": "hello"}},
                      {"id": "shout", "type": "echo", "params": {"message": "HELLO"}}],
            "edges": [{"from": "greet", "to": "shout"}]}


@pytest.fixture
def workflow_file(tmp_path):
    path = tmp_path / "greeting.json"
    path.write_text(json.dumps(WORKFLOW))
    return path


def test_run_otel_with_an_unreachable_collector_exits_0_with_one_warning_and_a_recorded_run(
        cli_process, workflow_file, closed_port, tmp_path):
    db = tmp_path / "ledger.db"
    env = {**cli_process.env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed_port}",
           "PFLOW_METRICS_OTEL_TIMEOUT": "1"}
    done = cli_process.run("--db", db, "run", "--otel", workflow_file, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"pflow-metrics: warning: OpenTelemetry export to http://127.0.0.1:{closed_port}/v1/traces")
    assert "1 run not sent" in line and "pflow-metrics export --format otlp" in line
    with Ledger.open(f"sqlite:///{db}") as ledger:
        runs = list(ledger.iter_runs([ledger.resolve_run_id(done.stdout.split("run ")[-1].strip())]))
    assert [run.status for run in runs] == ["success"]
    assert [node.node_id for node in runs[0].nodes] == ["greet", "shout"]


def test_the_otel_setting_turns_live_export_on_for_cli_runs(cli_process, workflow_file, closed_port, tmp_path):
    env = {**cli_process.env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed_port}",
           "PFLOW_METRICS_OTEL": "1", "PFLOW_METRICS_OTEL_TIMEOUT": "0.5"}
    done = cli_process.run("--db", tmp_path / "l.db", "run", workflow_file, env=env, timeout=60)
    assert done.returncode == 0
    assert "OpenTelemetry export to" in done.stderr  # it tried: the collector is down


@pytest.mark.parametrize("variable, value", [("PFLOW_METRICS_OTEL", "maybe"), ("PFLOW_METRICS_OTEL", "2"),
                                             ("PFLOW_METRICS_OTEL_TIMEOUT", "nan")])
def test_bad_otel_settings_stop_a_cli_run_before_it_starts(cli, workflow_file, tmp_path, monkeypatch,
                                                            variable, value):
    monkeypatch.setenv("PFLOW_METRICS_OTEL", "1")
    monkeypatch.setenv(variable, value)
    result = cli("--db", tmp_path / "l.db", "run", workflow_file)
    assert result.exit_code == 2
    assert result.stderr == f"pflow-metrics: error: {variable}: cannot use {value!r}; " + result.stderr.split("; ", 1)[1]
    assert not (tmp_path / "l.db").exists()


def test_runs_without_otel_never_import_opentelemetry(workflow_file, tmp_path, pflow_home):
    script = textwrap.dedent(f"""
        import sys
        from pocketflow import Flow, Node
        from pflow_metrics import instrument
        from pflow_metrics.cli.app import main

        instrument(Flow(start=Node()), workflow="library", ledger={str(tmp_path / 'a.db')!r}).run({{}})
        try:
            main(["--db", {str(tmp_path / 'b.db')!r}, "run", {str(workflow_file)!r}])
        except SystemExit as done:
            assert done.code == 0, done.code
        for args in (["export"], ["export", "--format", "csv"], ["runs", "list"]):
            try:
                main(["--db", {str(tmp_path / 'b.db')!r}, *args])
            except SystemExit as done:
                assert done.code == 0, (args, done.code)
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry") or m.endswith(".otel")))
    """)
    env = {"PATH": "/usr/bin:/bin", "PFLOW_HOME": str(pflow_home), "PFLOW_METRICS_OTEL": "0"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize("value, enabled", [("", False), ("0", False), ("off", False), ("No", False),
                                            ("1", True), ("true", True), (" YES ", True), ("on", True)])
def test_the_otel_switch_reads_the_usual_words(monkeypatch, value, enabled):
    monkeypatch.setenv("PFLOW_METRICS_OTEL", value)
    assert otel_enabled() is enabled


@pytest.mark.parametrize("value, seconds", [("", 5.0), ("2", 2.0), ("0.5", 0.5), ("3s", 3.0), ("1m", 60.0),
                                            ("10m", 600.0)])
def test_the_otel_timeout_takes_seconds_or_a_unit(monkeypatch, value, seconds):
    monkeypatch.setenv("PFLOW_METRICS_OTEL_TIMEOUT", value)
    assert otel_timeout() == seconds


def test_a_bad_otel_switch_in_a_library_run_is_a_warning_not_an_error(monkeypatch):
    from pocketflow import Flow, Node

    from pflow_metrics import instrument
    from pflow_metrics.instrumentation.errors import MetricsWarning

    monkeypatch.setenv("PFLOW_METRICS_OTEL", "\x1b[31mmaybe")
    tracked = instrument(Flow(start=Node()), workflow="lib", ledger=False)
    with pytest.warns(MetricsWarning, match="OpenTelemetry export off: PFLOW_METRICS_OTEL: cannot use"):
        tracked.run({})
    assert tracked.last_run.status == "success"
    with pytest.raises(UsageError):
        otel_enabled()
