"""RunSession and instrument(): every run is one run in the ledger, whatever happens in it."""

from __future__ import annotations

import warnings
from decimal import Decimal

import pytest
from pocketflow import Flow, Node

from pflow_metrics.instrumentation import BudgetExceeded, RunSession, instrument
from pflow_metrics.ledger.store import Ledger
from tests.instrumentation.flows import Prompt, ReportUsage


class Boom(Node):
    def exec(self, prep_res):
        raise ValueError("boom")


class Interrupt(Node):
    def exec(self, prep_res):
        raise KeyboardInterrupt


class Started(Node):
    def post(self, shared, prep_res, exec_res):
        shared["started"] = True


def _stored(url, run_id):
    with Ledger.open(url) as ledger:
        return ledger.get_run(run_id)


def test_a_successful_run_is_in_the_ledger_with_nodes_calls_and_cost(ledger_url, meter, price_models):
    price_models('[models.meter]\ninput = 3.0\noutput = 15.0\n')
    first, second = Prompt("meter", "one two"), Prompt("meter", "three four five")
    first >> second
    tracked = instrument(Flow(start=first), workflow="digest", ledger=ledger_url, tags={"team": "data"})
    tracked.run({})
    stored = _stored(ledger_url, tracked.last_run.run_id)
    assert (stored.status, stored.workflow, stored.tags) == ("success", "digest", {"team": "data"})
    assert [n.node_id for n in stored.nodes] == ["prompt", "prompt-2"]
    assert [(c.model, c.resolved_model, c.input_tokens) for c in stored.llm_calls] == [
        ("meter", "meter-2025-01-01", 2), ("meter", "meter-2025-01-01", 3)]
    assert stored.cost_usd == Decimal("0.00012")  # (5 * 3.0 + 7 * 15.0) / 1e6, exactly
    assert stored.llm_calls[0].rates == {"input": 3.0, "output": 15.0, "cache_read": 3.0, "cache_creation": 3.0}
    assert all(c.prompt is None and c.response is None for c in stored.llm_calls)


def test_every_run_of_a_tracked_flow_is_a_new_run(ledger_url):
    tracked = instrument(Flow(start=Started()), workflow="twice", ledger=ledger_url)
    tracked.run({})
    first = tracked.last_run.run_id
    tracked.run({})
    assert first != tracked.last_run.run_id
    assert _stored(ledger_url, first).status == _stored(ledger_url, tracked.last_run.run_id).status == "success"


def test_a_failed_run_is_recorded_then_reraised(ledger_url):
    start = Started()
    start >> Boom()
    tracked = instrument(Flow(start=start), workflow="fails", ledger=ledger_url)
    with pytest.raises(ValueError, match="boom"):
        tracked.run({})
    stored = _stored(ledger_url, tracked.last_run.run_id)
    assert (stored.status, stored.error) == ("failed", "ValueError: boom")
    assert [(n.node_id, n.status) for n in stored.nodes] == [("started", "success"), ("boom", "failed")]


def test_keyboard_interrupt_is_recorded_as_failed_and_reraised(ledger_url):
    tracked = instrument(Flow(start=Interrupt()), workflow="interrupted", ledger=ledger_url)
    with pytest.raises(KeyboardInterrupt):
        tracked.run({})
    stored = _stored(ledger_url, tracked.last_run.run_id)
    assert (stored.status, stored.error) == ("failed", "KeyboardInterrupt")


def test_budget_stops_the_run_before_the_next_node(ledger_url, price_models):
    price_models('[models.gpt-4o]\ninput = 10.0\noutput = 10.0\n')
    spend = ReportUsage({"model": "gpt-4o", "input_tokens": 100_000, "output_tokens": 0})  # $1.00
    spend >> Started()
    tracked = instrument(Flow(start=spend), workflow="capped", ledger=ledger_url, budget_usd=0.5)
    shared: dict = {}
    with pytest.raises(BudgetExceeded, match=r"spent \$1\.000000 of a \$0\.500000 budget"):
        tracked.run(shared)
    assert "started" not in shared
    stored = _stored(ledger_url, tracked.last_run.run_id)
    assert stored.status == "budget_exceeded" and stored.error.startswith("BudgetExceeded")
    assert [n.node_id for n in stored.nodes] == ["report_usage"]


def test_a_run_under_budget_succeeds(price_models):
    price_models('[models.gpt-4o]\ninput = 10.0\noutput = 10.0\n')
    tracked = instrument(Flow(start=ReportUsage({"model": "gpt-4o", "input_tokens": 10, "output_tokens": 0})),
                         workflow="cheap", ledger=False, budget_usd=1.0)
    tracked.run({})
    assert tracked.last_run.status == "success"


def test_session_as_context_manager_records_the_error(ledger_url):
    with pytest.raises(ValueError), RunSession("ctx", ledger=ledger_url) as session:
        session.run_flow(Flow(start=Boom()), {})
    assert session.result.status == "failed"
    assert _stored(ledger_url, session.run_id).status == "failed"


def test_finish_is_idempotent_and_takes_an_explicit_status(sqlite_url):
    session = RunSession("explicit", ledger=sqlite_url)
    session.run_flow(Flow(start=Started()), {})
    first = session.finish(status="failed", error="stopped by the caller")
    assert session.finish() is first
    stored = _stored(sqlite_url, session.run_id)
    assert (stored.status, stored.error) == ("failed", "stopped by the caller")


def test_stored_prompts_reach_the_ledger_only_when_asked(sqlite_url, meter):
    tracked = instrument(Flow(start=Prompt("meter", "keep this")), workflow="p", ledger=sqlite_url,
                         store_prompts=True)
    tracked.run({})
    [call] = _stored(sqlite_url, tracked.last_run.run_id).llm_calls
    assert (call.prompt, call.response) == ("keep this", "metered: keep this")


def test_an_unwritable_ledger_warns_and_the_workflow_still_succeeds(tmp_path):
    blocked = tmp_path / "no-such-dir" / "sub"
    blocked.parent.write_text("a file where a folder should be")
    tracked = instrument(Flow(start=Started()), workflow="resilient", ledger=f"sqlite:///{blocked}/x.db")
    shared: dict = {}
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        tracked.run(shared)
    assert shared["started"] is True and tracked.last_run.status == "success"
    assert "spooled" in tracked.last_run.ledger_warning


def test_malformed_usage_is_rejected_with_a_warning_and_counted():
    bad = ReportUsage({"model": "gpt-4o", "input_tokens": -5, "output_tokens": "many"})
    tracked = instrument(Flow(start=bad), workflow="bad", ledger=False)
    with pytest.warns(UserWarning, match="usage entry rejected"):
        tracked.run({})
    assert tracked.last_run.record.llm_calls == []
    assert tracked.last_run.summary["metrics"]["total"]["rejected_usage_entries"] == 1
