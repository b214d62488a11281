"""`ingest` fed run records of any shape: wrong types, missing and extra keys, duplicate run
ids, future schema numbers, non-JSON lines, Unicode. Never a traceback; every bad line is
reported with its line number and skipped; every valid line lands (the last line of a run id
wins); exit 1 if any line was bad; ingesting the same file again changes nothing."""

from __future__ import annotations

import itertools
import json
import math
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pflow_metrics.ledger.ingest import ingest_lines
from pflow_metrics.ledger.store import Ledger
from pflow_metrics.money import MAX_CALL_USD
from pflow_metrics.record import MAX_CALL_TOKENS, RUN_STATUSES
from tests.factories import make_run

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
_examples = itertools.count()

names = st.text(min_size=1, max_size=12)  # any Unicode, quotes, control characters, NUL
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=6)


@st.composite
def valid_records(draw):
    """A valid record, as a dict, with run id slot `slot` (filled in per example)."""
    record = make_run(draw(names), status=draw(st.sampled_from(RUN_STATUSES)),
                      nodes=draw(st.integers(0, 3)),
                      calls=[{"model": draw(names), "node_id": draw(names),
                              "input_tokens": draw(st.integers(0, MAX_CALL_TOKENS)),
                              "cost_usd": draw(st.floats(0, float(MAX_CALL_USD)))} for _ in range(draw(st.integers(0, 2)))],
                      tags=draw(st.dictionaries(names, st.text(max_size=8), max_size=2))).to_dict()
    record["run_id"] = draw(st.integers(0, 4))  # a slot: duplicate ids on purpose
    if draw(st.booleans()):  # keys this version does not know are ignored
        record.update(draw(st.dictionaries(st.text(min_size=1, max_size=6).filter(lambda k: k not in record),
                                           json_values, max_size=3)))
    for optional in draw(st.lists(st.sampled_from(["ended_at", "error", "host", "pid", "ci", "tags", "nodes",
                                                   "llm_calls", "schema", "tokens", "duration_ms"]), max_size=3)):
        record.pop(optional, None)
    if "llm_calls" not in record:  # a run's totals are its calls': no calls, no totals to state
        for derived in ("tokens", "cost_usd", "unpriced_calls"):
            record.pop(derived, None)
    return record


# (where, bad values): each makes a record invalid by the documented shape.
BAD_FIELDS = [
    ("run_id", [None, 1, 1.5, True, [], {}, ""]),
    ("workflow", [None, 7, ["x"], ""]),
    ("status", [None, "exploded", 1, "SUCCESS"]),
    ("started_at", [None, "yesterday", "2026-11-01T00:00:00", 5, [], "0999-06-01T00:00:00+00:00",
                    "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "1969-12-31T23:59:59+00:00"]),
    ("ended_at", ["soon", 3, "2026-11-01 10:00"]),
    ("duration_ms", [-1, "12", True, math.nan, math.inf, [], 10**400, 1e300]),
    ("cost_usd", [-0.5, "1", False, math.nan, math.inf, 10**400, 12345.5]),  # none agrees with its calls
    ("unpriced_calls", [-1, 1.5, "3", True, 2**63]),
    ("pid", [-1, 2.0, "12", 2**70]),
    ("schema", [2, 99, 10**12, "1", 1.0, True, 0, -1]),
    ("tags", ["x", [1], {"k": 1}]),
    ("ci", [1, {"k": None}]),
    ("tokens", ["x", [1], {"input": -1}, {"output": 1.5}, {"thinking": "3"}, {"cache_read": 2**64}]),
    ("nodes", ["x", 5, {}, [5], [{}], [{"node_id": 1}], [{"node_id": "n", "attempts": -1}],
               [{"node_id": "n", "phase": "later"}], [{"node_id": "n", "duration_ms": "fast"}]]),
    ("llm_calls", ["x", {}, [None], [{"node_id": "n"}], [{"model": "m"}],
                   [{"node_id": "n", "model": "m", "input_tokens": -3}],
                   [{"node_id": "n", "model": "m", "output_tokens": 1.5}],
                   [{"node_id": "n", "model": "m", "thinking_tokens": True}],
                   [{"node_id": "n", "model": "m", "cache_read_tokens": 2**63}],
                   [{"node_id": "n", "model": "m", "input_tokens": MAX_CALL_TOKENS + 1}],
                   [{"node_id": "n", "model": "m", "cost_usd": 10_001}],
                   [{"node_id": "n", "model": "m", "rates": 5}],
                   [{"node_id": "n", "model": "m", "rates": {"input": math.inf}}],
                   [{"node_id": "n", "model": "m", "rates": {"input": -1}}],
                   [{"node_id": "n", "model": "m", "started_at": "noon"}]]),
]


@st.composite
def bad_lines(draw):
    kind = draw(st.sampled_from(["field", "not json", "not an object"]))
    if kind == "not json":
        text = draw(st.text(st.characters(blacklist_characters="\r\n"), min_size=1, max_size=30))
        assume(text.strip())
        try:
            assume(not isinstance(json.loads(text), dict))
        except ValueError:
            pass
        return text
    if kind == "not an object":
        return json.dumps(draw(st.one_of(st.lists(json_values, max_size=3), st.integers(), st.text(max_size=5),
                                         st.none(), st.booleans())))
    record = draw(valid_records())
    field, values = draw(st.sampled_from(BAD_FIELDS))
    record[field] = draw(st.sampled_from(values))
    if field in ("run_id",):
        return _line(record)
    return record  # a dict: its run id slot is filled in per example


lines_plan = st.lists(st.one_of(valid_records().map(lambda r: ("good", r)), bad_lines().map(lambda b: ("bad", b)),
                                st.sampled_from(["", "   "]).map(lambda b: ("blank", b))), max_size=8)


def _as_stored(value):
    """What the ledger gives back for `value`: text no engine can hold (NUL) as U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_as_stored(key): _as_stored(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_stored(item) for item in value]
    return value


def _line(record, ensure_ascii=True):
    """JSON as any writer might send it: NaN and Infinity tokens included (Python's default)."""
    return json.dumps(record, ensure_ascii=ensure_ascii, default=float)


def _render(plan, prefix):
    """The file's lines, the expected bad line numbers and the expected record per run id."""
    lines, bad, expected = [], set(), {}
    for number, (kind, item) in enumerate(plan, 1):
        if isinstance(item, dict):
            item = {**item}
            if isinstance(item.get("run_id"), int):
                item["run_id"] = f"{prefix}-{item['run_id']}-ü☃"
            text = _line(item, ensure_ascii=number % 2 == 0)
            if kind == "good":
                expected[item["run_id"]] = _as_stored(item)
        else:
            text = item
        if kind == "bad":
            bad.add(number)
        lines.append(text)
    return lines, bad, expected


def _stored(ledger, ids):
    return {record.run_id: record.to_dict() for record in ledger.iter_runs(sorted(ids))}


@pytest.fixture(scope="module")
def ledger_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("ingest") / "ledger.db"
    Ledger.open(str(path)).close()
    return path


@pytest.fixture(scope="module")
def shared_ledger(ledger_path):
    with Ledger.open(str(ledger_path)) as ledger:
        yield ledger


@SETTINGS
@given(lines_plan)
def test_ingest_lines_reports_bad_lines_by_number_lands_the_rest_and_is_idempotent(shared_ledger, plan):
    lines, bad, expected = _render(plan, f"lib{next(_examples)}")
    result = ingest_lines(shared_ledger, lines)
    assert {number for number, _ in result.problems} == bad
    assert all(message and "\n" not in message for _, message in result.problems)
    stored = _stored(shared_ledger, expected)
    assert set(stored) == set(expected)
    for run_id, record in expected.items():
        got = stored[run_id]
        assert (got["workflow"], got["status"], got["tags"]) == (record["workflow"], record["status"],
                                                                 record.get("tags") or {})
        assert len(got["nodes"]) == len(record.get("nodes") or [])
        assert [c["input_tokens"] for c in got["llm_calls"]] == [c["input_tokens"] for c in record.get("llm_calls") or []]
    again = ingest_lines(shared_ledger, lines)
    assert again.problems == result.problems
    assert _stored(shared_ledger, expected) == stored


@settings(SETTINGS, max_examples=15)
@given(lines_plan)
def test_the_ingest_command_exits_1_naming_each_bad_line_and_never_shows_a_traceback(cli, ledger_path, plan):
    lines, bad, expected = _render(plan, f"cli{next(_examples)}")
    source = ledger_path.parent / "runs.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for attempt in range(2):  # the second time changes nothing
        code, out, err = cli("--db", ledger_path, "ingest", source)
        assert "Traceback" not in err
        assert code == (1 if bad else 0)
        reported = [re.match(rf"{re.escape(str(source))}:(\d+): skipped: \S", line) for line in err.splitlines()]
        assert all(reported) and {int(match.group(1)) for match in reported} == bad, err
        assert out.startswith("ingested ") and (f"{len(bad)} bad lines skipped" in out) == bool(bad)
    with Ledger.open(str(ledger_path)) as ledger:
        assert set(_stored(ledger, expected)) == set(expected)


@pytest.mark.postgres
def test_text_no_engine_can_hold_lands_as_replacement_characters_on_both(cli, ledger_url, tmp_path):
    good = make_run("good")
    odd = make_run("bad\x00name\ud800")  # valid JSON and a valid record: a NUL and a lone surrogate
    odd.error = "stderr: \x00\x00binary"
    odd.tags = {"k\x00": "v\udfff"}
    source = tmp_path / "runs.jsonl"
    source.write_text("\n".join(r.to_json() for r in (good, odd)) + "\n")
    code, out, err = cli("--db", ledger_url, "ingest", source)
    assert code == 0 and "ingested 2 runs" in out and err == ""
    with Ledger.open(ledger_url) as ledger:
        stored = ledger.get_run(odd.run_id)
    assert (stored.workflow, stored.error, stored.tags) == ("bad\ufffdname\ufffd", "stderr: \ufffd\ufffdbinary",
                                                           {"k\ufffd": "v\ufffd"})

