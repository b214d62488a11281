import json

import pytest

from pflow_metrics.errors import RecordError
from pflow_metrics.record import SCHEMA_VERSION, RunRecord
from tests.factories import make_run


def a_record(**changes):
    data = make_run(calls=[{"cache_read_tokens": 3}]).to_dict()
    data.update(changes)
    return data


def test_a_record_survives_json_both_ways():
    record = make_run(calls=[{}, {"model": "claude-sonnet-4", "cost_usd": None}], tags={"env": "ci"})
    text = record.to_json()
    assert json.loads(text)["schema"] == SCHEMA_VERSION
    assert RunRecord.from_json(text).to_dict() == record.to_dict()


def test_times_are_iso_8601_with_an_offset():
    data = make_run().to_dict()
    assert data["started_at"].endswith("+00:00")
    assert data["llm_calls"][0]["started_at"].endswith("+00:00")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"run_id": None}, "run_id: is required"),
        ({"workflow": 7}, "workflow: must be a string"),
        ({"status": "exploded"}, "status: must be one of"),
        ({"started_at": "yesterday-ish"}, "started_at: must be an ISO-8601"),
        ({"started_at": "2026-11-01T10:00:00"}, "started_at: must carry a UTC offset"),
        ({"unpriced_calls": -1}, "unpriced_calls: must be a whole number >= 0"),
        ({"tokens": {"input": 1.5}}, "tokens.input: must be a whole number"),
        ({"cost_usd": "0.1"}, "cost_usd: must be an amount of USD"),
        ({"cost_usd": float("nan")}, "cost_usd: must be an amount of USD"),
        ({"cost_usd": float("inf")}, "cost_usd: must be an amount of USD"),
        ({"cost_usd": 999}, "cost_usd: 999 disagrees with its llm_calls, which cost 0.01"),
        ({"unpriced_calls": 4}, "unpriced_calls: 4 disagrees with its llm_calls"),
        ({"tokens": {"input": 7}}, "tokens.input: 7 disagrees with its llm_calls"),
        ({"duration_ms": 10**400}, "duration_ms: must be a number from 0 to"),
        ({"started_at": "0999-06-01T00:00:00+00:00"}, "started_at: must lie from 1970-01-01"),
        ({"started_at": "0001-01-01T00:00:00+05:00"}, "started_at: must lie from 1970-01-01"),
        ({"started_at": "9999-12-31T23:59:59-05:00"}, "started_at: must lie from 1970-01-01"),
        ({"pid": 2**64}, "pid: must be at most"),
        ({"schema": 10**5000}, "schema: version a 16610-bit number is newer"),
        ({"tags": {"a": 1}}, "tags: must be an object of strings"),
        ({"nodes": "none"}, "nodes: must be a list"),
        ({"schema": 2}, "schema: version 2 is newer"),
    ],
)
def test_a_bad_field_is_rejected_by_name(change, message):
    with pytest.raises(RecordError, match=message):
        RunRecord.from_dict(a_record(**change))


def test_a_negative_count_deep_in_a_call_names_its_path():
    data = a_record()
    data["llm_calls"][0]["input_tokens"] = -5
    with pytest.raises(RecordError, match=r"llm_calls\[0\]\.input_tokens: must be a whole number >= 0, got -5"):
        RunRecord.from_dict(data)


def test_a_boolean_is_not_a_token_count():
    data = a_record()
    data["llm_calls"][0]["output_tokens"] = True
    with pytest.raises(RecordError, match="output_tokens"):
        RunRecord.from_dict(data)


def test_a_record_that_is_not_an_object_is_rejected():
    with pytest.raises(RecordError, match="record: must be an object"):
        RunRecord.from_dict([1, 2])


def test_totals_are_null_cost_when_any_call_is_unpriced():
    record = make_run(calls=[{"cost_usd": 0.2, "input_tokens": 10}, {"cost_usd": None, "input_tokens": 5}])
    assert record.cost_usd is None
    assert record.unpriced_calls == 1
    assert record.tokens.input == 15
