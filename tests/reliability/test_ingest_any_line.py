"""`ingest` fed any line at all: arbitrary bytes, any JSON value, valid records with one field
replaced by any JSON value (any type, huge integers, deep nesting, odd text, odd times).

Whatever a line holds, and whatever exception reading it raises (even one nobody foresaw), it
is reported with its line number and skipped; every good line lands; the command exits 1 when
some line was bad. Test lines carry whole numbers for durations and costs, so that they are
valid whether the record reader takes floats or exact decimals.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pflow_metrics.ledger import ingest as ingest_module
from pflow_metrics.ledger.ingest import ingest_lines
from pflow_metrics.ledger.store import Ledger
from pflow_metrics.record import RunRecord
from pflow_metrics.timewindow import EARLIEST, LATEST

DEEP = 100_000


def record(run_id: str, started_at: datetime | None = None, **changes) -> dict:
    started = started_at or datetime.now(UTC) - timedelta(hours=1)
    data = {"run_id": run_id, "workflow": "ingested", "status": "success", "started_at": started.isoformat(),
            "duration_ms": 7, "tags": {"team": "a"},
            "nodes": [{"node_id": "n", "node_type": "echo", "duration_ms": 3, "attempts": 1}],
            "llm_calls": [{"node_id": "n", "model": "gpt-4o", "input_tokens": 5, "output_tokens": 2,
                           "cost_usd": 1, "duration_ms": 2}]}
    data.update(changes)
    return data


def line(data: dict) -> str:
    return json.dumps(data)



def stored_ids(url: str, ids) -> list[str]:
    with Ledger.open(url) as ledger:
        return sorted(run.run_id for run in ledger.iter_runs(sorted(ids)))


def _call(**changes) -> list[dict]:
    return [{**record("x")["llm_calls"][0], **changes}]


HOSTILE = {
    "rates is a number": line(record("bad", llm_calls=_call(rates=5))),
    "year 1 east of UTC": line(record("bad", started_at=None) | {"started_at": "0001-01-01T00:00:00+05:00"}),
    "year 9999 west of UTC": line(record("bad") | {"started_at": "9999-12-31T23:59:59-05:00"}),
    "call started in year 1": line(record("bad", llm_calls=_call(started_at="0001-01-01T00:00:00+05:00"))),
    "400-digit duration": line(record("bad")).replace('"duration_ms": 7', '"duration_ms": ' + "9" * 400),
    "400-digit float duration": line(record("bad")).replace('"duration_ms": 7', '"duration_ms": ' + "9" * 400 + ".5"),
    "5000-digit number in a known field": line(record("bad")).replace('"duration_ms": 7', '"duration_ms": ' + "7" * 5000),
    "5000-digit number in an unknown field": line(record("bad", extra=1)).replace('"extra": 1', '"extra": ' + "7" * 5000),
    "5000-digit exponent": line(record("bad")).replace('"duration_ms": 7', '"duration_ms": 1e' + "9" * 5000),
    "100k-deep nesting": line(record("bad", extra=1)).replace('"extra": 1', '"extra": ' + "[" * DEEP + "]" * DEEP),
    "100k-deep tags": line(record("bad", tags=1)).replace('"tags": 1', '"tags": ' + '{"a": ' * DEEP + "1" + "}" * DEEP),
    "not JSON": "{not json",
    "a JSON list": "[1, 2, 3]",
    "infinite cost": line(record("bad", llm_calls=_call(cost_usd=1))).replace('"cost_usd": 1', '"cost_usd": Infinity'),
    "NaN duration": line(record("bad")).replace('"duration_ms": 7', '"duration_ms": NaN'),
    "huge token count": line(record("bad", llm_calls=_call(input_tokens=10**400))),
    "tokens as text": line(record("bad", llm_calls=_call(input_tokens="5"))),
    "nodes as an object": line(record("bad", nodes={"n": 1})),
}


@pytest.mark.parametrize("bad", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_line_is_reported_by_number_and_the_good_lines_land(cli, sqlite_url, tmp_path, bad):
    source = tmp_path / "runs.jsonl"
    source.write_text("\n".join([line(record("good-1")), bad, line(record("good-2"))]) + "\n")
    code, out, err = cli("--db", sqlite_url, "ingest", source)
    assert code == 1, err
    assert out == "ingested 2 runs; 1 bad lines skipped\n"
    assert re.fullmatch(rf"{re.escape(str(source))}:2: skipped: \S[^\n]{{0,400}}\n", err), err[:500]
    assert "internal error" not in err
    assert stored_ids(sqlite_url, ["good-1", "good-2", "bad"]) == ["good-1", "good-2"]


def test_every_hostile_line_of_one_file_is_reported_on_both_engines(cli, ledger_url, tmp_path):
    lines = [line(record("good-0"))]
    for index, bad in enumerate(HOSTILE.values()):
        lines += [bad, line(record(f"good-{index + 1}"))]
    source = tmp_path / "runs.jsonl"
    source.write_bytes("\n".join(lines).encode() + b"\n\xff\xfe not utf-8\n" + line(record("last")).encode())
    code, out, err = cli("--db", ledger_url, "ingest", source)
    bad_numbers = [2 * i + 2 for i in range(len(HOSTILE))] + [len(lines) + 1]
    assert code == 1
    assert out == f"ingested {len(HOSTILE) + 2} runs; {len(bad_numbers)} bad lines skipped\n"
    assert [int(re.match(rf"{re.escape(str(source))}:(\d+): skipped: ", row).group(1))
            for row in err.splitlines()] == bad_numbers
    expected = [f"good-{i}" for i in range(len(HOSTILE) + 1)] + ["last"]
    assert stored_ids(ledger_url, [*expected, "bad"]) == sorted(expected)


def test_invalid_utf8_is_reported_per_line_with_its_position(cli, sqlite_url, tmp_path):
    source = tmp_path / "runs.jsonl"
    good = line(record("good")).encode()
    source.write_bytes(b"\xef\xbb\xbf" + good + b"\r\n" + good.replace(b'"ingested"', b'"in\xffgested"') + b"\n"
                       + line(record("fine")).encode() + b"\r\n" + b"\xc3\n")
    code, out, err = cli("--db", sqlite_url, "ingest", source)
    assert code == 1 and out == "ingested 2 runs; 2 bad lines skipped\n"
    at = good.index(b'"ingested"') + 4  # counted from 1
    assert err.splitlines() == [f"{source}:2: skipped: not UTF-8 (byte {at}: invalid start byte)",
                                f"{source}:4: skipped: not UTF-8 (byte 1: unexpected end of data)"]
    assert stored_ids(sqlite_url, ["good", "fine"]) == ["fine", "good"]


def test_ingest_reads_stdin_as_bytes_too(cli, sqlite_url, monkeypatch):
    import io
    import sys

    data = line(record("from-stdin")).encode() + b"\n\x80\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    code, out, err = cli("--db", sqlite_url, "ingest", "-")
    assert code == 1 and out == "ingested 1 runs; 1 bad lines skipped\n"
    assert err == "-:2: skipped: not UTF-8 (byte 1: invalid start byte)\n"


def test_an_exception_nobody_foresaw_is_a_bad_line_not_an_abort(cli, sqlite_url, tmp_path, monkeypatch):
    class Unforeseen(Exception):
        pass

    real = RunRecord.from_dict

    def from_dict(data):
        if data.get("workflow") == "surprise":
            raise Unforeseen("the reader\nbroke")
        return real(data)

    monkeypatch.setattr(ingest_module.RunRecord, "from_dict", staticmethod(from_dict))
    source = tmp_path / "runs.jsonl"
    source.write_text("\n".join([line(record("good-1")), line(record("bad", workflow="surprise")),
                                 line(record("good-2"))]) + "\n")
    code, out, err = cli("--db", sqlite_url, "ingest", source)
    assert code == 1 and out == "ingested 2 runs; 1 bad lines skipped\n"
    assert err == f"{source}:2: skipped: not read: Unforeseen: the reader broke\n"


def test_text_no_engine_can_hold_lands_with_replacement_characters(cli, ledger_url, tmp_path):
    source = tmp_path / "runs.jsonl"
    surrogate = line(record("odd")).replace('"ingested"', '"half \\ud800 a pair \\u0000"')
    source.write_text("\n".join([line(record("good-1")), surrogate, line(record("good-2"))]) + "\n")
    code, out, err = cli("--db", ledger_url, "ingest", source)
    assert (code, out, err) == (0, "ingested 3 runs\n", "")
    with Ledger.open(ledger_url) as ledger:
        assert ledger.get_run("odd").workflow == "half \ufffd a pair \ufffd"


# -- the edges of the supported range -----------------------------------------------------------

def test_after_ingesting_and_pruning_a_run_at_the_first_moment_later_ingests_and_reports_work(
        cli, ledger_url, tmp_path):
    first = tmp_path / "first.jsonl"
    first.write_text(line(record("epoch", started_at=EARLIEST)) + "\n" + line(record("recent")) + "\n")
    assert cli("--db", ledger_url, "ingest", first)[:2] == (0, "ingested 2 runs\n")
    code, out, err = cli("--db", ledger_url, "report", "--since", "1970-01-01T00:00:00Z", "--format", "json")
    assert code == 0 and json.loads(out)["runs"] == 2, err
    code, out, err = cli("--db", ledger_url, "prune", "--older-than", "10000d")
    assert (code, out) == (0, "deleted 1 runs older than 10000d\n"), err
    later = tmp_path / "later.jsonl"
    later.write_text(line(record("later")) + "\n" + line(record("epoch-again", started_at=EARLIEST)) + "\n")
    assert cli("--db", ledger_url, "ingest", later)[:2] == (0, "ingested 2 runs\n")
    for command in (["report"], ["report", "--since", "1970-01-01T00:00:00Z"], ["cost", "--by", "day", "--since",
                    "1970-01-01T00:00:00Z"], ["runs", "list", "--since", "1970-01-01"], ["export", "--since", "1970-01-01"],
                    ["budget", "--max-usd", "100", "--since", "1970-01-01"]):
        code, out, err = cli("--db", ledger_url, *command)
        assert code == 0 and err == "", (command, err)
    code, out, _ = cli("--db", ledger_url, "report", "--since", "1970-01-01T00:00:00Z", "--format", "json")
    assert json.loads(out)["runs"] == 3


def test_after_ingesting_a_run_at_the_last_moment_later_ingests_and_reports_work(cli, sqlite_url, tmp_path):
    last = tmp_path / "last.jsonl"
    last.write_text(line(record("last", started_at=LATEST - timedelta(seconds=1))) + "\n" + line(record("now")) + "\n")
    assert cli("--db", sqlite_url, "ingest", last)[:2] == (0, "ingested 2 runs\n")
    # A window without --until has no end: runs dated later (a clock ahead, say) are in it.
    code, out, err = cli("--db", sqlite_url, "report", "--format", "json")
    assert code == 0 and json.loads(out)["runs"] == 2, err
    code, out, err = cli("--db", sqlite_url, "report", "--until", "now", "--format", "json")
    assert code == 0 and json.loads(out)["runs"] == 1, err
    assert cli("--db", sqlite_url, "ingest", last)[:2] == (0, "ingested 2 runs (2 already in the ledger, written again)\n")


# -- any line at all ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63 - 2, max_value=10**30)
    | st.just(10**400) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8) | st.sampled_from(["", " ", "\x00", "\u2028", "é", "☃" * 3, "\\", '"', "1", "-1"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6)
odd_times = st.sampled_from([
    "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "1969-12-31T23:59:59+00:00",
    "1970-01-01T00:00:00+00:00", "9998-12-31T23:59:59+00:00", "9999-01-01T00:00:00+00:00", "2026-13-01T00:00:00Z",
    "2026-01-01", "2026-01-01T00:00:00", "2026-01-01T00:00:00+24:00", "2026-06-01T12:00:00.123456+14:00", "noon",
]) | st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat())
# Where a field can be replaced: top level, a node, an LLM call, the tags.
FIELDS = [*(("", key) for key in ("run_id", "workflow", "status", "started_at", "ended_at", "duration_ms",
                                  "planner_duration_ms", "cost_usd", "unpriced_calls", "tokens", "error", "host",
                                  "pid", "ci", "schema", "tags", "nodes", "llm_calls", "future_field")),
          *(("nodes", key) for key in ("node_id", "node_type", "phase", "duration_ms", "status", "attempts",
                                       "action", "start_offset_ms", "items")),
          *(("llm_calls", key) for key in ("node_id", "model", "phase", "input_tokens", "output_tokens",
                                           "thinking_tokens", "cost_usd", "rates", "duration_ms", "started_at",
                                           "provider")),
          ("tags", "team")]


def _deep_text(depth: int) -> str:
    return "[" * depth + "]" * depth


@st.composite
def changed_records(draw) -> str:
    """A valid record (as JSON text) with one field replaced by any JSON value."""
    data = record("slot")
    where, key = draw(st.sampled_from(FIELDS))
    target = data if not where else data[where] if where == "tags" else data[where][0]
    kind = draw(st.sampled_from(["value", "time", "deep", "huge"]))
    if kind == "time":
        target[key] = draw(odd_times)
    elif kind == "value":
        target[key] = draw(json_values)
    else:
        target[key] = "__MARK__"
    text = json.dumps(data, allow_nan=True, ensure_ascii=draw(st.booleans()))
    if kind == "deep":
        return text.replace('"__MARK__"', _deep_text(draw(st.sampled_from([50, 990, 5_000, DEEP]))))
    if kind == "huge":
        digits = draw(st.sampled_from([19, 20, 400, 4_300, 5_000]))
        return text.replace('"__MARK__"', draw(st.sampled_from(["", "-", "0."])) + "9" * digits)
    return text


any_line = st.one_of(
    st.binary(max_size=40).map(lambda raw: raw.replace(b"\n", b"")),
    json_values.map(lambda value: json.dumps(value, allow_nan=True).encode()),
    changed_records().map(str.encode),
    st.just(b"   "),
)
lines_plan = st.lists(st.one_of(st.just(None), any_line), min_size=1, max_size=8)  # None: a valid record


def _oracle(raw: bytes) -> RunRecord | None | str:
    """What the line is: a record the reader takes, "blank", or None (a bad line)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.strip():
        return "blank"
    try:
        parsed = RunRecord.from_dict(json.loads(text, parse_float=Decimal))
        text.encode("utf-8")
        json.dumps(parsed.to_dict(), ensure_ascii=False, default=str).encode("utf-8")  # no lone surrogates
    except Exception:  # noqa: BLE001 - anything the reader refuses
        return None
    return parsed


_examples = iter(range(10**9))


@pytest.fixture(scope="module")
def ledger_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("any-line") / "ledger.db"
    Ledger.open(str(path)).close()
    return path


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(lines_plan)
def test_any_lines_are_reported_by_number_or_land_and_the_cli_exits_1_if_any_was_bad(cli, ledger_path, plan):
    prefix = f"p{next(_examples)}"
    raws: list[bytes] = []
    for number, item in enumerate(plan, 1):
        raw = line(record("slot")).encode() if item is None else item
        raws.append(raw.replace(b'"slot"', f'"{prefix}-{number}"'.encode()))
    bad, expected = set(), {}
    for number, raw in enumerate(raws, 1):
        verdict = _oracle(raw)
        if verdict is None:
            bad.add(number)
        elif verdict != "blank":
            expected[verdict.run_id] = verdict  # the last line of a run id wins
    event(f"bad lines: {min(len(bad), 3)}+, good lines: {min(len(expected), 3)}+")
    source = ledger_path.parent / f"{prefix}.jsonl"
    source.write_bytes(b"\n".join(raws) + b"\n")

    with Ledger.open(str(ledger_path)) as ledger:  # the library: nothing escapes, numbers are right
        result = ingest_lines(ledger, source.read_bytes().split(b"\n")[:-1])
        assert {number for number, _ in result.problems} == bad
        assert all(message and "\n" not in message for _, message in result.problems)
        stored = {run.run_id: run for run in ledger.iter_runs(sorted(expected))}
    assert set(stored) == set(expected)
    for run_id, want in expected.items():
        got = stored[run_id]
        assert (got.workflow, got.status, got.started_at, got.tags) == (want.workflow, want.status,
                                                                        want.started_at, want.tags)
        assert len(got.nodes) == len(want.nodes) and len(got.llm_calls) == len(want.llm_calls)

    code, out, err = cli("--db", ledger_path, "ingest", source)  # the command: same lines, exit code
    assert code == (1 if bad else 0), err
    assert "internal error" not in err and "Traceback" not in err
    numbers = [re.match(rf"{re.escape(str(source))}:(\d+): skipped: \S", row) for row in err.splitlines()]
    assert all(numbers) and {int(match.group(1)) for match in numbers} == bad, err
    assert re.fullmatch(r"ingested \d+ runs( \(\d+ already in the ledger, written again\))?" + (f"; {len(bad)} bad lines skipped" if bad else "") + "\n", out), out
