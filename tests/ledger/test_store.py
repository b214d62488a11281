from datetime import UTC

import pytest

from pflow_metrics.errors import UsageError
from pflow_metrics.ledger.store import Ledger
from tests.factories import make_run


def test_begin_run_writes_a_running_row_at_once(ledger):
    record = make_run(status="running", calls=[], nodes=0)
    ledger.begin_run(record)

    stored = ledger.get_run(record.run_id)
    assert stored.status == "running"
    assert stored.pid == record.pid and stored.host == record.host


def test_finish_run_round_trips_the_run_record(ledger):
    record = make_run(calls=[{"model": "gpt-4o", "cost_usd": 0.25, "cache_read_tokens": 7}], nodes=3)
    record.tags = {"team": "data"}
    ledger.begin_run(record)
    ledger.finish_run(record)

    stored = ledger.get_run(record.run_id)
    assert stored.to_dict() == record.to_dict()
    assert stored.started_at.tzinfo is not None and stored.started_at.utcoffset().total_seconds() == 0


def test_finishing_the_same_run_twice_never_duplicates_rows(ledger):
    record = make_run(calls=[{}, {}], nodes=2)
    ledger.finish_run(record)
    ledger.finish_run(record)

    stored = ledger.get_run(record.run_id)
    assert len(stored.nodes) == 2
    assert len(stored.llm_calls) == 2


def test_a_unique_prefix_finds_the_run(ledger):
    record = make_run()
    ledger.finish_run(record)
    assert ledger.get_run(record.run_id[:8]).run_id == record.run_id


def test_an_unknown_prefix_is_a_usage_error(ledger):
    with pytest.raises(UsageError, match="no run matches"):
        ledger.get_run("zzz")


def test_a_prefix_with_like_wildcards_matches_literally(ledger):
    ledger.finish_run(make_run())
    with pytest.raises(UsageError, match="no run matches"):
        ledger.get_run("%")


def test_an_unpriced_call_leaves_the_run_cost_null(ledger):
    record = make_run(calls=[{"cost_usd": 0.5}, {"model": "mystery", "cost_usd": None}])
    ledger.finish_run(record)

    stored = ledger.get_run(record.run_id)
    assert stored.cost_usd is None
    assert stored.unpriced_calls == 1
    assert stored.llm_calls[1].cost_usd is None


def test_times_come_back_in_utc_whatever_zone_went_in(ledger):
    from datetime import datetime, timedelta, timezone

    moment = datetime(2026, 11, 2, 9, 30, tzinfo=timezone(timedelta(hours=5)))
    record = make_run(started_at=moment)
    ledger.finish_run(record)
    stored = ledger.get_run(record.run_id)
    assert stored.started_at == moment
    assert stored.started_at.tzinfo == UTC


def test_reopening_a_ledger_at_head_keeps_its_runs(ledger_url):
    record = make_run()
    with Ledger.open(ledger_url) as first:
        first.finish_run(record)
    with Ledger.open(ledger_url) as second:
        assert second.get_run(record.run_id).workflow == record.workflow
