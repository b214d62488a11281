"""Each record field is declared once (record.py); JSON and ledger rows are derived from the
declarations. Every field survives record -> JSON -> record and record -> rows -> record, on
both engines, and every declared field has its column in ledger/models.py."""

from __future__ import annotations

import uuid
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pflow_metrics.errors import RecordError
from pflow_metrics.ledger.models import LLMCall, NodeExecution, Run
from pflow_metrics.ledger.rows import call_rows, node_rows, record_from_rows, run_row
from pflow_metrics.ledger.store import Ledger
from pflow_metrics.money import MAX_CALL_USD, from_nanos
from pflow_metrics.record import (
    CI_KEYS,
    LATEST,
    MAX_CALL_TOKENS,
    MAX_COUNT,
    MAX_DURATION_MS,
    MAX_RATE_USD,
    NODE_STATUSES,
    PHASES,
    RATE_KEYS,
    RUN_STATUSES,
    LLMCallRecord,
    NodeRecord,
    RunRecord,
    field_specs,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def full_record() -> RunRecord:
    """A record in which every field holds something other than its default."""
    start = datetime(2026, 11, 25, 10, 30, 15, 123456, tzinfo=UTC)
    return RunRecord(
        run_id=str(uuid.uuid4()), workflow="nightly ünïcode", status="failed", started_at=start,
        ended_at=start + timedelta(seconds=3), duration_ms=3000.5, planner_duration_ms=12.25,
        workflow_duration_ms=2988.25, error="boom", host="box", pid=4242,
        ci={"provider": "github-actions", "job_id": "17", "git_sha": "abc", "git_branch": "main"},
        tags={"env": "ci", "team": "☃"}, tool_version="9.9.9",
        nodes=[NodeRecord("n1", "LLMNode", "planner", 12.5, "failed", 3, "retry", "oops", 1.5, 7)],
        llm_calls=[LLMCallRecord(
            node_id="n1", phase="planner", model="gpt-4o", resolved_model="gpt-4o-2024", provider="openai",
            input_tokens=1, output_tokens=2, cache_creation_tokens=3, cache_read_tokens=4, thinking_tokens=1,
            cost_usd=Decimal("0.123456789"), rates={"input": 2.5, "output": 10.0, "cache_read": 0.0},
            price_source="override", duration_ms=44.5, started_at=start + timedelta(milliseconds=5),
            prompt="hi", response="hello",
        )],
    )


def rows_read_back(record: RunRecord) -> RunRecord:
    """record -> rows -> record without a database (rows read back by attribute, as SQLAlchemy's)."""
    return record_from_rows(SimpleNamespace(**run_row(record)), [SimpleNamespace(**r) for r in node_rows(record)],
                            [SimpleNamespace(**r) for r in call_rows(record)])


@pytest.mark.parametrize("cls", [RunRecord, NodeRecord, LLMCallRecord])
def test_the_full_record_sets_every_field_to_something_not_its_default(cls):
    record = full_record()
    instance = {RunRecord: record, NodeRecord: record.nodes[0], LLMCallRecord: record.llm_calls[0]}[cls]
    for spec in field_specs(cls):
        default = spec.default() if spec.factory else spec.default
        assert getattr(instance, spec.name) != default, spec.name


def test_every_field_survives_json_and_rows():
    record = full_record()
    assert RunRecord.from_json(record.to_json()) == record
    assert RunRecord.from_dict(record.to_dict()) == record
    assert rows_read_back(record) == record


def test_to_dict_keeps_the_exported_shape_and_key_order():
    data = full_record().to_dict()
    assert list(data) == ["schema", "run_id", "workflow", "status", "started_at", "ended_at", "duration_ms",
                          "planner_duration_ms", "workflow_duration_ms", "cost_usd", "unpriced_calls", "tokens",
                          "error", "host", "pid", "ci", "tags", "tool_version", "nodes", "llm_calls"]
    assert list(data["nodes"][0]) == ["node_id", "node_type", "phase", "duration_ms", "status", "attempts",
                                      "action", "error", "start_offset_ms", "items"]
    assert list(data["llm_calls"][0]) == [
        "node_id", "phase", "model", "resolved_model", "provider", "input_tokens", "output_tokens",
        "cache_creation_tokens", "cache_read_tokens", "thinking_tokens", "cost_usd", "rates", "price_source",
        "duration_ms", "started_at", "prompt", "response"]
    assert data["tokens"] == {"input": 1, "output": 2, "cache_creation": 3, "cache_read": 4, "thinking": 1}
    assert data["started_at"] == "2026-11-25T10:30:15.123456+00:00"
    assert data["cost_usd"] == Decimal("0.123456789")
    without_prompts = replace(full_record().llm_calls[0], prompt=None, response=None).to_dict()
    assert "prompt" not in without_prompts and "response" not in without_prompts
    only_a_response = replace(full_record().llm_calls[0], prompt=None).to_dict()
    assert (only_a_response["prompt"], only_a_response["response"]) == (None, "hello")


@pytest.mark.parametrize(("cls", "model"), [(RunRecord, Run), (NodeRecord, NodeExecution), (LLMCallRecord, LLMCall)])
def test_every_declared_field_has_its_column(cls, model):
    columns = set(model.__table__.columns.keys())
    for spec in field_specs(cls):
        wanted = list(spec.columns.values()) if spec.columns else [spec.column] if spec.column else []
        assert set(wanted) <= columns, (spec.name, wanted)
    assert all(f.name in {s.name for s in field_specs(cls)} for f in fields(cls))


def test_rows_store_money_as_nanos_and_totals_derived():
    record = full_record()
    run, calls = run_row(record), call_rows(record)
    assert calls[0]["cost_nanousd"] == 123_456_789 and "cost_usd" not in calls[0]
    assert (calls[0]["input_rate"], calls[0]["cache_creation_rate"]) == (2.5, None)
    assert (run["id"], run["cost_nanousd"], run["unpriced_calls"], run["input_tokens"]) == \
        (record.run_id, 123_456_789, 0, 1)
    assert run["heartbeat_at"] == record.ended_at and run["ci_git_sha"] == "abc"
    assert (calls[0]["run_id"], calls[0]["seq"]) == (record.run_id, 0)


def test_rows_make_text_storable():
    record = full_record()
    record.error, record.tags = "a\x00b", {"k\x00": "v\udfff"}
    record.nodes[0].error = "\x00"
    record.llm_calls[0].prompt = "p\ud800"
    back = rows_read_back(record)
    assert (back.error, back.tags, back.nodes[0].error, back.llm_calls[0].prompt) == \
        ("a\ufffdb", {"k\ufffd": "v\ufffd"}, "\ufffd", "p\ufffd")


def test_a_null_column_reads_as_the_field_default_as_a_missing_key_does():
    record = full_record()
    run = SimpleNamespace(**{**run_row(record), "tags": None})
    nodes = [SimpleNamespace(**{**node_rows(record)[0], "attempts": None, "node_type": None})]
    calls = [SimpleNamespace(**{**call_rows(record)[0], "thinking_tokens": None})]
    back = record_from_rows(run, nodes, calls)
    assert (back.tags, back.nodes[0].attempts, back.nodes[0].node_type, back.llm_calls[0].thinking_tokens) == \
        ({}, 1, "", 0)


@pytest.mark.parametrize("spec", field_specs(LLMCallRecord), ids=lambda spec: spec.name)
def test_a_bad_value_in_any_call_field_names_its_path(spec):
    data = full_record().to_dict()
    data["llm_calls"][0][spec.name] = [1]  # no field takes a list
    with pytest.raises(RecordError, match=rf"^llm_calls\[0\]\.{spec.name}: "):
        RunRecord.from_dict(data)


@pytest.mark.parametrize("spec", field_specs(NodeRecord), ids=lambda spec: spec.name)
def test_a_bad_value_in_any_node_field_names_its_path(spec):
    data = full_record().to_dict()
    data["nodes"][0][spec.name] = [1]
    with pytest.raises(RecordError, match=rf"^nodes\[0\]\.{spec.name}: "):
        RunRecord.from_dict(data)


@pytest.mark.parametrize("spec", field_specs(RunRecord), ids=lambda spec: spec.name)
def test_a_bad_value_in_any_run_field_names_it(spec):
    data = full_record().to_dict()
    data[spec.name] = 1.5 if spec.name in ("nodes", "llm_calls", "tags", "ci") else [1]
    with pytest.raises(RecordError, match=rf"^{spec.name}: "):
        RunRecord.from_dict(data)


# -- Any valid record ---------------------------------------------------------------------------

texts = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12)
names = texts.filter(bool)
durations = st.floats(0, MAX_DURATION_MS, allow_subnormal=False)
moments = st.datetimes(min_value=datetime(1970, 1, 1), max_value=(LATEST - timedelta(days=1)).replace(tzinfo=None),
                       timezones=st.just(UTC))
tokens = st.integers(0, MAX_CALL_TOKENS)


def optional(strategy):
    return st.none() | strategy


nodes = st.builds(
    NodeRecord, node_id=names, node_type=texts, phase=st.sampled_from(PHASES), duration_ms=durations,
    status=st.sampled_from(NODE_STATUSES), attempts=st.integers(0, MAX_COUNT), action=optional(texts),
    error=optional(texts), start_offset_ms=durations, items=optional(st.integers(0, MAX_COUNT)),
)
calls = st.builds(
    LLMCallRecord, node_id=names, phase=st.sampled_from(PHASES), model=names, resolved_model=optional(texts),
    provider=optional(texts), input_tokens=tokens, output_tokens=tokens, cache_creation_tokens=tokens,
    cache_read_tokens=tokens, thinking_tokens=tokens,
    cost_usd=optional(st.integers(0, int(MAX_CALL_USD) * 10**9).map(from_nanos)),
    # Rows keep the rates that are set: a rates object states at least one.
    rates=optional(st.dictionaries(st.sampled_from(RATE_KEYS), st.floats(0, MAX_RATE_USD, allow_subnormal=False),
                                   min_size=1)),
    price_source=optional(texts), duration_ms=optional(durations), started_at=optional(moments),
    prompt=optional(texts), response=optional(texts),
)


@st.composite
def records(draw):
    return RunRecord(
        run_id=str(uuid.uuid4()), workflow=draw(names), status=draw(st.sampled_from(RUN_STATUSES)),
        started_at=draw(moments), ended_at=draw(optional(moments)), duration_ms=draw(optional(durations)),
        planner_duration_ms=draw(optional(durations)), workflow_duration_ms=draw(optional(durations)),
        error=draw(optional(texts)), host=draw(optional(texts)), pid=draw(optional(st.integers(0, MAX_COUNT))),
        # Rows hold the CI context ci_context() finds: its keys, with a value each.
        ci=draw(optional(st.dictionaries(st.sampled_from(CI_KEYS), names, min_size=1))),
        tags=draw(st.dictionaries(texts, texts, max_size=3)), tool_version=draw(optional(texts)),
        nodes=draw(st.lists(nodes, max_size=3)), llm_calls=draw(st.lists(calls, max_size=3)),
    )


@SETTINGS
@given(records())
def test_any_valid_record_survives_json(record):
    assert RunRecord.from_json(record.to_json()) == record
    assert RunRecord.from_dict(record.to_dict()) == record


@SETTINGS
@given(records())
def test_any_valid_record_survives_rows(record):
    assert rows_read_back(record) == record


@pytest.fixture
def shared(ledger_url):
    with Ledger.open(ledger_url) as ledger:
        yield ledger


@settings(SETTINGS, max_examples=25)
@given(records())
def test_any_valid_record_survives_the_ledger_on_both_engines(shared, record):
    shared.finish_run(record)
    assert shared.get_run(record.run_id) == record


def test_the_full_record_survives_the_ledger_on_both_engines(shared):
    record = full_record()
    shared.begin_run(record)
    shared.finish_run(record)
    assert shared.get_run(record.run_id) == record
    assert RunRecord.from_json(shared.get_run(record.run_id).to_json()) == record
