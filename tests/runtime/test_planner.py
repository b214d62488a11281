"""`run --plan`: the planner flow retries invalid answers, and its costs are the planner's."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from pflow_metrics.ledger.store import Ledger

from .conftest import INVALID_PLAN, VALID_PLAN


@pytest.fixture
def plan(cli):
    """`run --plan "explain ledgers"` with the canned planner, through the `cli` fixture."""

    def run(*args: str, db: str | None = None):
        ledger = ["--db", db] if db else []
        return cli(*ledger, "run", "--plan", "explain ledgers", "--planner-model", "canned-planner", *args)

    return run


def test_an_invalid_first_answer_is_retried_with_its_errors(plan, canned_planner, ledger_url):
    planner = canned_planner([INVALID_PLAN, VALID_PLAN])
    result = plan("--output-format", "json", db=ledger_url)
    assert result.exit_code == 0, result.stderr
    assert len(planner.prompts) == 2
    assert "nodes[0].type: unknown node type 'lm' (did you mean 'llm'?)" in planner.prompts[1]
    body = json.loads(result.stdout)
    assert '"prompt": "Explain about ledgers"' in body["result"]["answer"]

    planner_part, workflow_part = body["metrics"]["planner"], body["metrics"]["workflow"]
    assert planner_part["nodes_executed"] == 3  # distinct nodes, as in pflow: generate, validate, end
    assert planner_part["node_runs"] == 5  # generate, validate, generate, validate, end
    assert workflow_part["nodes_executed"] == 2
    with Ledger.open(ledger_url) as ledger:
        record = ledger.get_run(body["run_id"])
    assert [(call.model, call.phase) for call in record.llm_calls] == [
        ("canned-planner", "planner"), ("canned-planner", "planner"), ("echo", "workflow")
    ]
    assert {node.phase for node in record.nodes if node.node_id == "validate-workflow"} == {"planner"}


def test_the_planner_gives_up_after_three_invalid_answers(plan, canned_planner, ledger_url):
    planner = canned_planner([INVALID_PLAN])
    result = plan("--output-format", "json", db=ledger_url)
    assert result.exit_code == 1
    assert len(planner.prompts) == 3
    body = json.loads(result.stdout)
    assert body["error_detail"]["type"] == "PlanningFailed"
    assert "unknown node type 'lm'" in body["error"]
    with Ledger.open(ledger_url) as ledger:
        record = ledger.get_run(body["run_id"])
    assert record.status == "failed" and len(record.llm_calls) == 3


def test_trace_planner_keeps_every_prompt_answer_and_usage(plan, canned_planner, pflow_home):
    canned_planner(["not json at all", VALID_PLAN])
    result = plan("--trace-planner")
    assert result.exit_code == 0, result.stderr
    path = Path(result.stderr.split("planner trace: ", 1)[1].split()[0])
    assert path.parent == pflow_home / "debug" and path.name.startswith("planner-trace-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["attempt"] for line in lines] == [1, 2]
    assert lines[0]["response"] == "not json at all" and lines[0]["errors"][0].startswith("(answer): invalid JSON")
    assert lines[1]["errors"] == [] and "explain ledgers" in lines[1]["prompt"]
    assert lines[1]["usage"]["model"] == "canned-planner" and lines[1]["duration_ms"] >= 0


def test_save_keeps_the_planned_workflow(plan, canned_planner, tmp_path):
    canned_planner([VALID_PLAN])
    saved = tmp_path / "planned.json"
    result = plan("--save", str(saved))
    assert result.exit_code == 0, result.stderr
    assert json.loads(saved.read_text()) == VALID_PLAN


def test_inputs_given_with_plan_reach_the_planned_workflow(cli, canned_planner):
    planner = canned_planner([VALID_PLAN])
    result = cli("run", "--plan", "explain", "--planner-model", "canned-planner",
                 "topic=owls", "--output-format", "json", "--no-ledger")
    assert result.exit_code == 0, result.stderr
    assert "about owls" in json.loads(result.stdout)["result"]["answer"]
    assert "topic" in planner.prompts[0]

