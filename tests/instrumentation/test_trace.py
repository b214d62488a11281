"""Workflow traces: written as the run goes, snapshots taken at the time, secrets redacted,
large values truncated; `pflow-metrics trace show` reads them."""

from __future__ import annotations

import json
import os
import stat

import pytest
from pocketflow import Flow, Node

from pflow_metrics.instrumentation import instrument
from pflow_metrics.instrumentation.redact import REDACTED, Fingerprint, safe
from pflow_metrics.instrumentation.trace import prune_traces, read_trace, sanitized_name
from tests.instrumentation.flows import Prompt


class Append(Node):
    """Appends to a list in place: the earlier snapshot must not change with it."""

    def post(self, shared, prep_res, exec_res):
        shared["items"].append(len(shared["items"]))


class SetKey(Node):
    def __init__(self, key, value):
        super().__init__()
        self.key, self.value = key, value

    def post(self, shared, prep_res, exec_res):
        shared[self.key] = self.value


class Drop(Node):
    def post(self, shared, prep_res, exec_res):
        del shared["temp"]


class Boom(Node):
    def exec(self, prep_res):
        raise ValueError("trace me")


def _trace(flow, shared, **options):
    tracked = instrument(flow, workflow="trace test", ledger=False, trace=True, **options)
    try:
        tracked.run(shared)
    finally:
        path = tracked.last_run.trace_path
    return path, read_trace(path)


def _chain(*nodes):
    for left, right in zip(nodes, nodes[1:]):
        left >> right
    return Flow(start=nodes[0])


def test_trace_has_header_node_events_and_summary_in_a_private_file(pflow_home):
    path, lines = _trace(_chain(SetKey("a", 1), Drop()), {"temp": "x"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.parent == pflow_home / "debug" and path.name.startswith("workflow-trace-trace-test-")
    assert [line["type"] for line in lines] == ["header", "node", "node", "summary"]
    first, second = lines[1], lines[2]
    assert first["changes"] == {"added": {"a": 1}, "removed": [], "modified": {}}
    assert second["changes"]["removed"] == ["temp"] and "temp" in second["shared_before"]
    assert lines[-1]["status"] == "success" and lines[-1]["metrics"]["total"]["nodes_executed"] == 2


def test_snapshots_are_taken_at_the_time_not_aliased():
    _, lines = _trace(_chain(Append(), Append(), Append()), {"items": []})
    befores = [line["shared_before"]["items"] for line in lines if line["type"] == "node"]
    assert befores == [[], [0], [0, 1]]
    assert [line["changes"]["modified"] for line in lines[1:4]] == [{"items": [0]}, {"items": [0, 1]}, {"items": [0, 1, 2]}]


def test_secrets_are_redacted_at_any_depth():
    shared = {
        "api_key": "plain-secret-value",
        "config": {"headers": {"Authorization": "Bearer abcdefghijklmnop"}, "nested": [{"password": "hunter2"}]},
        "note": "my key is sk-abcdefghijklmnop1234 ok",
        "max_tokens": 512,
    }
    path, lines = _trace(Flow(start=SetKey("cookie", "session=1")), shared)
    text = path.read_text()
    for secret in ("plain-secret-value", "abcdefghijklmnop", "hunter2", "sk-abcdefghijklmnop1234", "session=1"):
        assert secret not in text
    before = lines[1]["shared_before"]
    assert before["api_key"] == REDACTED and before["config"]["nested"][0]["password"] == REDACTED
    assert before["note"] == f"my key is {REDACTED} ok" and before["max_tokens"] == 512


def test_large_values_bytes_cycles_and_unserializable_objects_stay_valid_json():
    cyclic: dict = {"name": "loop"}
    cyclic["self"] = cyclic

    class Opaque:
        def __repr__(self):
            raise RuntimeError("no repr")

    shared = {"big": "x" * 100_000, "blob": b"\0" * 2048, "cyclic": cyclic, "opaque": Opaque(),
              "many": list(range(1000)), "nan": float("nan")}
    _, lines = _trace(Flow(start=SetKey("a", 1)), shared)
    before = lines[1]["shared_before"]
    assert before["big"].endswith("…[truncated: 100000 chars]") and len(before["big"]) < 5000
    assert before["blob"] == "<bytes: 2048>"
    assert before["cyclic"]["self"] == "<cycle: dict>"
    assert before["opaque"] == "<unprintable Opaque>"
    assert before["many"][-1] == "[truncated: 1000 items]" and before["nan"] == "nan"


def test_failed_node_has_error_and_traceback_and_trace_is_finished():
    with pytest.raises(ValueError):
        _trace(_chain(SetKey("a", 1), Boom()), {})
    # _trace raised before returning: read the newest trace directly
    from pflow_metrics.config import pflow_home

    [path] = (pflow_home() / "debug").glob("workflow-trace-*.jsonl")
    lines = read_trace(path)
    failed = lines[2]
    assert failed["status"] == "failed" and failed["error"] == "ValueError: trace me"
    assert "Traceback" in failed["traceback"] and "trace me" in failed["traceback"]
    assert lines[-1]["type"] == "summary" and lines[-1]["status"] == "failed"


def test_llm_prompt_and_response_are_in_the_trace_but_redacted(meter):
    _, lines = _trace(Flow(start=Prompt("meter", "use sk-abcdefghijklmnopqrst please")), {})
    [call] = lines[1]["llm_calls"]
    assert call["prompt"] == f"use {REDACTED} please"
    assert call["response"] == f"metered: use {REDACTED} please"
    assert (call["model"], call["input_tokens"]) == ("meter", 3)


def test_template_resolutions_from_the_runtime_wrapper_are_traced():
    class Templated(Node):
        def _run(self, shared):
            self.template_resolutions = {"${topic}": "owls"}
            return super()._run(shared)

    _, lines = _trace(Flow(start=Templated()), {"topic": "owls"})
    assert lines[1]["template_resolutions"] == {"${topic}": "owls"}


def test_every_finished_node_is_on_disk_before_the_run_ends():
    seen = {}

    class Peek(Node):
        def post(self, shared, prep_res, exec_res):
            from pflow_metrics.config import pflow_home

            [path] = (pflow_home() / "debug").glob("workflow-trace-*.jsonl")
            seen["events"] = [event["type"] for event in read_trace(path)]

    _trace(_chain(SetKey("a", 1), SetKey("b", 2), Peek()), {})
    assert seen["events"] == ["header", "node", "node"]  # two finished nodes, while the third still runs


def test_workflow_names_never_reach_a_path():
    assert sanitized_name("../../etc/passwd") == "etc-passwd"
    assert sanitized_name("a/b\\c\x00d\n") == "a-b-c-d"
    assert sanitized_name("..") == "workflow" and len(sanitized_name("x" * 10_000)) == 60


def test_retention_keeps_the_newest_traces(tmp_path):
    for index in range(5):
        path = tmp_path / f"workflow-trace-w-{index}.jsonl"
        path.write_text("{}")
        os.utime(path, ns=(index * 10**9, index * 10**9))
    prune_traces(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["workflow-trace-w-3.jsonl", "workflow-trace-w-4.jsonl"]


def test_a_trace_over_its_size_cap_stops_taking_snapshots(monkeypatch):
    monkeypatch.setenv("PFLOW_TRACE_MAX_BYTES", "3000")
    _, lines = _trace(_chain(*[SetKey(f"k{i}", "v" * 500) for i in range(8)]), {})
    nodes = [line for line in lines if line["type"] == "node"]
    assert len(nodes) == 8 and "shared_before" in nodes[0]
    assert any("snapshots_dropped" in node for node in nodes) and "shared_before" not in nodes[-1]


def test_fingerprint_sees_changes_deep_inside_containers():
    value = {"outer": {"inner": [1, 2, {"leaf": "a"}]}}
    before = Fingerprint(value)
    assert before.same_as(Fingerprint(value))
    value["outer"]["inner"][2]["leaf"] = "b"
    assert not before.same_as(Fingerprint(value))
    assert safe(value)["outer"]["inner"][2] == {"leaf": "b"}


def test_trace_show_prints_a_timeline(cli, meter):
    path, _ = _trace(_chain(SetKey("a", 1), Prompt("meter", "two words")), {})
    code, out, err = cli("trace", "show", path)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("trace of trace test · run ")
    assert any("✓ set_key (SetKey)" in line for line in lines)
    assert any("llm meter: 2 in / 3 out, unpriced" in line for line in lines)
    assert any("changed: +a" in line for line in lines)
    assert "__llm_calls__" in open(path).read() and "__llm_calls__" not in out  # bookkeeping, not shown
    assert lines[-1].startswith("success · ")


@pytest.mark.parametrize("content", [None, "not json\n{}\n", '{"type": "node"}\n'])
def test_trace_show_rejects_missing_or_bad_files_with_exit_2(cli, tmp_path, content):
    path = tmp_path / "trace.jsonl"
    if content is not None:
        path.write_text(content)
    code, _, err = cli("trace", "show", path)
    assert code == 2
    assert err.startswith("pflow-metrics: error: ") and len(err.strip().splitlines()) == 1


def test_a_big_store_is_written_once_then_only_what_each_node_changed():
    rows = {f"row-{i}": "y" * 100 for i in range(150)}  # ~17 KB serialized, under the per-value caps
    path, lines = _trace(_chain(*[SetKey(f"k{i}", i) for i in range(20)]), {"rows": rows})
    nodes = [line for line in lines if line["type"] == "node"]
    assert all(node["shared_before"]["rows"] == rows for node in nodes)
    assert [sorted(node["shared_before"])[:3] for node in nodes[:3]] == [
        ["__llm_calls__", "rows"], ["__llm_calls__", "k0", "rows"], ["__llm_calls__", "k0", "k1"]]
    assert path.stat().st_size < 2 * len(json.dumps(rows))  # 20 nodes, yet the rows are on disk once
