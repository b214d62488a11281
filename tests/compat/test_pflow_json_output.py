"""`run --output-format json` carries pflow's keys with pflow's meaning (pflow's
core/metrics.py get_summary and cli/main.py), ours beside them. Real runs with the offline
`echo` model of the `llm` library, priced by examples/pricing.toml."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.runtime.conftest import INVALID_PLAN, VALID_PLAN, canned_planner  # noqa: F401 (fixture)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PFLOW_PART_KEYS = {"duration_ms", "nodes_executed", "cost_usd", "tokens_input", "tokens_output", "tokens_total",
                   "models_used", "node_timings"}
PFLOW_TOTAL_KEYS = {"tokens_input", "tokens_output", "tokens_total", "cost_usd"}
PFLOW_TOP_KEYS = {"result", "is_error", "duration_ms", "duration_planner_ms", "total_cost_usd", "num_nodes", "metrics"}
RATES = {"input": Decimal("3.00"), "output": Decimal("15.00")}  # examples/pricing.toml, echo

WORKFLOW = {
    "ir_version": "0.1.0",
    "inputs": {"topic": {"type": "string", "description": "what to ask about"}},
    "outputs": {
        "answer": {"source": "${ask.response}", "description": "the answer"},
        "skipped": {"source": "${never.response}", "description": "a node on a branch that did not run"},
    },
    "nodes": [
        {"id": "greet", "type": "echo", "purpose": "say what we ask about", "params": {"text": "about ${topic}"}},
        {"id": "ask", "type": "llm", "params": {"model": "echo", "prompt": "Explain ${greet.text}"}},
        {"id": "never", "type": "llm", "params": {"model": "echo", "prompt": "unused"}},
    ],
    "edges": [{"from": "greet", "to": "ask"}, {"from": "ask", "to": "never", "action": "elsewhere"}],
}
FAILING = {
    "ir_version": "0.1.0",
    "nodes": [
        {"id": "ask", "type": "llm", "params": {"model": "echo", "prompt": "hello"}},
        {"id": "boom", "type": "shell", "params": {"command": "echo broken >&2; exit 4"}},
    ],
}


@pytest.fixture
def priced(price_models):
    price_models((EXAMPLES / "pricing.toml").read_text())


@pytest.fixture
def run_json(cli, tmp_path):
    def run(ir: dict, *args) -> tuple[int, dict, str]:
        path = tmp_path / "flow.json"
        path.write_text(json.dumps(ir))
        code, out, err = cli("run", path, *args, "--no-ledger", "--output-format", "json")
        return code, json.loads(out, parse_float=Decimal), err

    return run


def _expected_cost(part: dict) -> Decimal:
    return (part["tokens_input"] * RATES["input"] + part["tokens_output"] * RATES["output"]) / 1_000_000


def _rounded_to_hundredths(value) -> bool:
    return isinstance(value, Decimal) and value == value.quantize(Decimal("0.01")) and value >= 0


def test_json_output_has_every_pflow_key_with_pflows_meaning(priced, run_json):
    code, body, err = run_json(WORKFLOW, "topic=cats")
    assert code == 0, err
    assert PFLOW_TOP_KEYS <= set(body)
    assert body["is_error"] is False and "error" not in body
    assert set(body["result"]) == {"answer"} and "Explain about cats" in body["result"]["answer"]
    assert _rounded_to_hundredths(body["duration_ms"]) and body["duration_ms"] > 0
    assert body["duration_planner_ms"] is None  # no planner ran
    assert body["num_nodes"] == 2  # greet and ask; `never` did not run
    assert set(body["metrics"]) == {"workflow", "total"}  # no planner part without a planner

    workflow, total = body["metrics"]["workflow"], body["metrics"]["total"]
    assert PFLOW_PART_KEYS <= set(workflow) and PFLOW_TOTAL_KEYS <= set(total)
    assert _rounded_to_hundredths(workflow["duration_ms"]) and workflow["duration_ms"] <= body["duration_ms"]
    assert workflow["nodes_executed"] == 2
    assert list(workflow["node_timings"]) == ["greet", "ask"]
    assert all(isinstance(ms, Decimal) and ms >= 0 for ms in workflow["node_timings"].values())
    assert workflow["models_used"] == ["echo"]
    assert type(workflow["tokens_input"]) is int and workflow["tokens_input"] > 0
    assert type(workflow["tokens_output"]) is int and workflow["tokens_output"] > 0
    assert workflow["tokens_total"] == workflow["tokens_input"] + workflow["tokens_output"]
    assert {key: total[key] for key in ("tokens_input", "tokens_output", "tokens_total")} == {
        key: workflow[key] for key in ("tokens_input", "tokens_output", "tokens_total")}
    # Money: exact decimals, the same in every place pflow puts it.
    assert workflow["cost_usd"] == total["cost_usd"] == body["total_cost_usd"] == _expected_cost(workflow) > 0


def test_json_output_keeps_our_keys_beside_pflows(priced, run_json):
    code, body, _ = run_json(WORKFLOW, "topic=cats")
    assert code == 0
    assert isinstance(body["run_id"], str) and body["trace_path"] is None
    workflow, total = body["metrics"]["workflow"], body["metrics"]["total"]
    assert workflow["llm_calls"] == 1 and workflow["node_runs"] == 2
    assert (workflow["input_tokens"], workflow["output_tokens"]) == (workflow["tokens_input"], workflow["tokens_output"])
    assert total["unpriced_models"] == [] and total["partial_cost_usd"] == total["cost_usd"]


def test_a_declared_output_never_produced_is_left_out_of_result(run_json):
    code, body, _ = run_json(WORKFLOW, "topic=owls")
    assert code == 0
    assert "skipped" not in body["result"] and "answer" in body["result"]


def test_an_unpriced_model_gives_null_cost_never_a_guess(run_json):
    code, body, _ = run_json(WORKFLOW, "topic=cats")  # no pricing.toml: echo has no price
    assert code == 0
    assert body["total_cost_usd"] is None and body["metrics"]["total"]["cost_usd"] is None
    assert body["metrics"]["total"]["unpriced_models"] == ["echo"]


def test_a_failed_run_has_error_as_a_string_and_the_detail_beside_it(priced, run_json):
    code, body, _ = run_json(FAILING)
    assert code == 1
    assert body["is_error"] is True and body["result"] is None
    assert body["error"] == "command exited with 4: broken"
    assert body["error_detail"] == {"message": body["error"], "node_id": "boom", "type": "ShellCommandFailed"}
    # pflow adds the metrics of the run so far to its error output too
    assert body["num_nodes"] == 2 and body["metrics"]["workflow"]["nodes_executed"] == 2
    assert body["total_cost_usd"] == _expected_cost(body["metrics"]["total"]) > 0


def test_a_planned_run_has_a_planner_part_and_its_duration(canned_planner, priced, cli):  # noqa: F811
    canned_planner([INVALID_PLAN, VALID_PLAN])
    code, out, err = cli("run", "--plan", "explain ledgers", "--planner-model", "canned-planner", "--no-ledger",
                         "--output-format", "json")
    assert code == 0, err
    body = json.loads(out, parse_float=Decimal)
    planner, workflow = body["metrics"]["planner"], body["metrics"]["workflow"]
    assert PFLOW_PART_KEYS <= set(planner)
    assert _rounded_to_hundredths(body["duration_planner_ms"]) and body["duration_planner_ms"] == planner["duration_ms"]
    assert planner["nodes_executed"] == 3  # distinct nodes, as pflow counts them
    assert planner["node_runs"] == 5  # generate, validate, generate, validate, end
    assert planner["models_used"] == ["canned-planner"] and workflow["models_used"] == ["echo"]
    assert body["num_nodes"] == planner["nodes_executed"] + workflow["nodes_executed"]
    assert body["metrics"]["total"]["tokens_input"] == planner["tokens_input"] + workflow["tokens_input"]
    assert planner["cost_usd"] is None  # canned-planner has no price
    assert body["total_cost_usd"] is None


def test_is_planner_in_the_shared_store_marks_calls_as_planner_calls(run_json):
    ir = {
        "ir_version": "0.1.0",
        "nodes": [
            {"id": "plain", "type": "llm", "params": {"model": "echo", "prompt": "workflow call"}},
            {"id": "mark", "type": "echo", "params": {"__is_planner__": True}},
            {"id": "planned", "type": "llm", "params": {"model": "echo", "prompt": "planner call"}},
        ],
    }
    code, body, _ = run_json(ir)
    assert code == 0
    planner, workflow = body["metrics"]["planner"], body["metrics"]["workflow"]
    assert planner["llm_calls"] == 1 and workflow["llm_calls"] == 1
    assert set(planner["node_timings"]) == {"mark", "planned"} and set(workflow["node_timings"]) == {"plain"}
    assert isinstance(body["duration_planner_ms"], Decimal)


def test_planner_trace_is_written_when_planning_fails_without_trace_planner(canned_planner, cli, pflow_home):  # noqa: F811
    canned_planner([INVALID_PLAN])
    code, out, err = cli("run", "--plan", "explain ledgers", "--planner-model", "canned-planner", "--no-ledger",
                         "--output-format", "json")
    assert code == 1
    assert json.loads(out)["error_detail"]["type"] == "PlanningFailed"
    path = Path(err.split("planner trace: ", 1)[1].split()[0])
    assert path.parent == pflow_home / "debug"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["attempt"] for line in lines] == [1, 2, 3]
    assert all(line["errors"] for line in lines)


def test_no_planner_trace_when_planning_succeeds_without_trace_planner(canned_planner, cli, pflow_home):  # noqa: F811
    canned_planner([VALID_PLAN])
    code, _, err = cli("run", "--plan", "explain ledgers", "--planner-model", "canned-planner", "--no-ledger")
    assert code == 0, err
    assert "planner trace:" not in err
    assert not list((pflow_home / "debug").glob("planner-trace-*")) if (pflow_home / "debug").exists() else True
