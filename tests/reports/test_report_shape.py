"""The typed shape of `queries.report` and its JSON form, and cost_by rows that carry only the
keys asked for (never the "by:<key>" names it groups with)."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime, timedelta

import pytest

from pflow_metrics.ledger.queries import (COST_KEYS, TOKEN_COLUMNS, DayCost, Filters, NodeCost, PreviousWindow, Report,
                                          SlowNode, Totals, WorkflowCost, cost_by, report)
from pflow_metrics.money import ZERO
from tests.factories import make_run

NOW = datetime.now(UTC)
TOTALS_FIELDS = ["calls", *TOKEN_COLUMNS, "unpriced_calls", "cost_usd", "cost_is_lower_bound"]


def names(cls) -> list[str]:
    return [item.name for item in fields(cls)]


@pytest.fixture
def filled(ledger):
    runs = [
        make_run("digest", started_at=NOW - timedelta(hours=2),
                 calls=[{"model": "gpt-4o", "cost_usd": 1.0, "input_tokens": 100},
                        {"model": "claude-sonnet-4", "provider": "anthropic", "cost_usd": 2.0, "node_id": "step-1"}]),
        make_run("digest", started_at=NOW - timedelta(days=2), status="failed", calls=[{"model": "gpt-4o", "cost_usd": 0.5}]),
        make_run("triage", started_at=NOW - timedelta(days=3), calls=[{"model": "house", "provider": "local", "cost_usd": None}]),
        make_run("digest", started_at=NOW - timedelta(days=20), calls=[{"model": "gpt-4o", "cost_usd": 8.0}]),
    ]
    for record in runs:
        ledger.finish_run(record)
    return ledger


def test_rows_list_their_key_fields_then_the_totals_as_the_json_form_does():
    assert names(Totals) == TOTALS_FIELDS
    assert names(WorkflowCost) == ["workflow", "runs", *TOTALS_FIELDS]
    assert names(NodeCost) == ["workflow", "node_id", *TOTALS_FIELDS]
    assert names(DayCost) == ["day", *TOTALS_FIELDS]
    assert names(PreviousWindow) == [*TOTALS_FIELDS, "runs_total"]
    assert names(SlowNode) == ["workflow", "node_id", "p95_ms", "executions"]
    assert names(Report) == ["runs", "statuses", "success_rate", "cost_usd", "cost_is_lower_bound", "cost_per_run",
                             "tokens", "calls", "duration_p50_ms", "duration_p95_ms", "top_workflows",
                             "expensive_nodes", "slowest_nodes", "cost_per_day", "unpriced_models", "previous"]


def test_report_is_typed_all_the_way_down(filled):
    data = report(filled, Filters(since=NOW - timedelta(days=7)))
    assert isinstance(data, Report)
    assert data.runs == 3 and data.statuses == {"success": 2, "failed": 1}
    assert data.calls == 4 and data.cost_usd == pytest.approx(3.5) and data.cost_is_lower_bound
    assert list(data.tokens) == list(TOKEN_COLUMNS) and data.tokens["input_tokens"] == 400
    assert [type(row) for row in data.top_workflows] == [WorkflowCost, WorkflowCost]
    assert [(row.workflow, row.runs, row.calls) for row in data.top_workflows] == [("digest", 2, 3), ("triage", 1, 1)]
    assert data.top_workflows[1].cost_usd is None and not data.top_workflows[1].cost_is_lower_bound
    assert all(isinstance(row, NodeCost) for row in data.expensive_nodes)
    assert all(isinstance(row, SlowNode) and row.executions >= 1 for row in data.slowest_nodes)
    assert all(isinstance(row, DayCost) for row in data.cost_per_day)
    assert [row.day for row in data.cost_per_day] == sorted(row.day for row in data.cost_per_day)
    assert data.unpriced_models == ["house"]
    assert isinstance(data.previous, PreviousWindow)
    assert data.previous.runs_total == 0 and data.previous.cost_usd == ZERO


def test_without_a_start_there_is_no_previous_window(filled):
    assert report(filled, Filters()).previous is None


def test_the_json_form_is_the_fields_in_order(filled):
    data = report(filled, Filters(since=NOW - timedelta(days=7)))
    plain = data.to_dict()
    assert list(plain) == names(Report)
    assert list(plain["top_workflows"][0]) == names(WorkflowCost)
    assert list(plain["expensive_nodes"][0]) == names(NodeCost)
    assert list(plain["slowest_nodes"][0]) == names(SlowNode)
    assert list(plain["cost_per_day"][0]) == names(DayCost)
    assert list(plain["previous"]) == names(PreviousWindow)
    assert plain["top_workflows"][0]["workflow"] == data.top_workflows[0].workflow


def test_report_format_json_prints_the_window_then_the_report(cli, ledger_url):
    from pflow_metrics.ledger.store import Ledger

    with Ledger.open(ledger_url) as ledger:
        ledger.finish_run(make_run("digest", started_at=NOW - timedelta(hours=1), calls=[{"cost_usd": 0.25}]))
    code, out, _ = cli("--db", ledger_url, "report", "--since", "7d", "--format", "json")
    assert code == 0
    printed = json.loads(out)
    assert list(printed) == ["since", "until", *names(Report)]
    assert printed["runs"] == 1 and printed["cost_usd"] == 0.25
    assert list(printed["top_workflows"][0]) == names(WorkflowCost)
    assert list(printed["previous"]) == names(PreviousWindow)


@pytest.mark.parametrize("keys", [["model"], ["day"], ["week", "provider"], ["workflow", "model"],
                                  ["month", "node", "phase"], list(COST_KEYS)])
def test_cost_by_rows_carry_only_the_keys_asked_for(filled, keys):
    result = cost_by(filled, Filters(), keys)
    assert result["rows"]
    for row in result["rows"]:
        assert not any(name.startswith("by:") for name in row)
        assert list(row)[:len(keys)] == keys
        assert list(row)[len(keys):] == [*TOTALS_FIELDS, "runs", "share"]
    assert not any(name.startswith("by:") for name in result["total"])
