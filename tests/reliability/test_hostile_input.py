"""Odd or hostile values for the query options and crafted trace files: each is refused in one
line with exit 2 (or shown), never an `internal error`, on SQLite and PostgreSQL.

- time windows: the ledger holds runs that start from timewindow.EARLIEST (1970-01-01) to before
  timewindow.LATEST (9999-01-01), UTC; a --since/--until/--older-than outside that is refused,
  a boundary date written in local time is taken;
- --workflow patterns: at most filters.MAX_PATTERN characters;
- `trace show`: any JSON value in any field of any line.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pflow_metrics.cli.render import local_time
from pflow_metrics.ledger.filters import MAX_PATTERN
from pflow_metrics.timewindow import EARLIEST, LATEST, parse_moment
from pflow_metrics.errors import UsageError


def record(run_id: str, workflow: str = "nightly", started_at: datetime | None = None, **extra) -> dict:
    started = started_at or datetime.now(UTC) - timedelta(hours=1)
    return {"run_id": run_id, "workflow": workflow, "status": "success", "started_at": started.isoformat(),
            "duration_ms": 5, "nodes": [{"node_id": "n", "node_type": "echo", "duration_ms": 5}],
            "llm_calls": [{"node_id": "n", "model": "gpt-4o", "input_tokens": 3, "output_tokens": 2, "cost_usd": 1}],
            **extra}



def one_error_line(err: str, *words: str) -> bool:
    lines = err.splitlines()
    return (len(lines) == 1 and lines[0].startswith("pflow-metrics: error: ") and "internal error" not in err
            and all(word in lines[0] for word in words))


@pytest.fixture
def filled(ledger_url, tmp_path, cli):
    """A ledger with a run on 1970-01-01, one two hours ago with the longest workflow name a
    pattern can spell out, and one an hour ago."""
    runs = [record("first", started_at=EARLIEST),
            record("long", started_at=datetime.now(UTC) - timedelta(hours=2), workflow="w" * MAX_PATTERN),
            record("recent")]
    source = tmp_path / "runs.jsonl"
    source.write_text("".join(json.dumps(run) + "\n" for run in runs))
    assert cli("--db", ledger_url, "ingest", source)[0] == 0
    return ledger_url


# -- time windows -------------------------------------------------------------------------------

OUT_OF_RANGE = [
    ("report", "--since", "400000d"),
    ("cost", "--since", "0999-12-31"),
    ("runs list", "--since", "0001-01-01T00:00:00+05:00"),
    ("export", "--until", "9999-12-31T23:59:59-05:00"),
    ("budget --max-usd 1", "--since", "1969-12-01"),
    ("report", "--until", "9999-06-01T00:00:00+00:00"),
    ("cost", "--since", "0001-01-01"),
    ("runs list", "--until", "9999-12-31"),
    ("prune --dry-run", "--older-than", "400000d"),
    ("report", "--since", "99999999999999d"),
    ("cost", "--since", "9" * 5_000 + "d"),
]


@pytest.mark.parametrize(("command", "option", "value"), OUT_OF_RANGE)
def test_moments_outside_the_supported_range_are_one_line_naming_the_option(cli, filled, command, option,
                                                                             value):
    code, out, err = cli("--db", filled, *command.split(), option, value)
    assert code == 2 and out == ""
    assert one_error_line(err, option, "1970-01-01"), err


@pytest.mark.parametrize("value", ["1970-01-01T00:00:00+00:00", "1970-01-01", "1970-01-01T05:00:00+05:00", "7d",
                                   "2026-11-01"])
def test_the_first_day_of_the_range_is_a_valid_since_on_every_command(cli, filled, value):
    for command in ("report", "cost", "runs list", "export", "budget --max-usd 1000"):
        code, _, err = cli("--db", filled, *command.split(), "--since", value)
        assert code == 0, (command, err)


def test_windows_at_both_ends_of_the_range_find_the_runs_there(cli, filled, tmp_path):
    source = tmp_path / "last.jsonl"
    source.write_text(json.dumps(record("last", started_at=LATEST - timedelta(seconds=1))) + "\n")
    assert cli("--db", filled, "ingest", source)[0] == 0
    for since, until, found in [("9998-12-31T00:00:00+00:00", "9999-01-01T00:00:00+00:00", ["last"]),
                                ("9998-12-31", "9999-01-01", ["last"]),
                                ("1970-01-01T00:00:00Z", "1970-01-02", ["first"]),
                                ("1970-01-01", "1970-01-01T00:00:01Z", ["first"])]:
        code, out, err = cli("--db", filled, "export", "--since", since, "--until", until)
        assert code == 0, err
        assert [json.loads(line)["run_id"] for line in out.splitlines()] == found, (since, until)
        code, out, err = cli("--db", filled, "runs", "list", "--format", "json", "--since", since,
                             "--until", until)
        assert code == 0 and [row["run_id"] for row in json.loads(out)] == found, err


def test_parse_moment_keeps_every_result_inside_the_range():
    now = datetime(2026, 5, 1, tzinfo=UTC)
    assert parse_moment("1970-01-01T00:00:00Z", now=now) == EARLIEST
    assert parse_moment("9999-01-01T00:00:00+00:00", "--until", now=now) == LATEST
    assert parse_moment("1969-12-31T19:00:00-05:00", now=now) == EARLIEST  # the same instant
    assert parse_moment("1970-01-01T09:00:00+10:00", now=now) == EARLIEST  # a boundary day, east of UTC
    assert parse_moment(f"{(now - EARLIEST).days}d", now=now) == now - timedelta(days=(now - EARLIEST).days)
    for text in (f"{(now - EARLIEST).days + 2}d", "1969-12-30", "9999-01-02T12:00:00Z", "0001-01-01"):
        with pytest.raises(UsageError, match="^--since: .*1970-01-01"):
            parse_moment(text, now=now)


# -- --workflow patterns --------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["report", "cost", "runs list", "export", "budget --max-usd 1"])
def test_a_100k_character_workflow_pattern_is_one_line_naming_the_option(cli, filled, command):
    code, out, err = cli("--db", filled, *command.split(), "--workflow", "a" * 100_000)
    assert code == 2 and out == ""
    assert one_error_line(err, "--workflow", f"{MAX_PATTERN:,}"), err[:300]
    assert len(err) < 300


@pytest.mark.parametrize("pattern", ["w" * MAX_PATTERN, "w" * (MAX_PATTERN - 1) + "*", "?" * MAX_PATTERN,
                                     "*" * MAX_PATTERN, "%_\\" * (MAX_PATTERN // 3) + "*"])
def test_a_workflow_pattern_of_the_longest_length_matches_on_both_engines(cli, filled, pattern):
    code, out, err = cli("--db", filled, "export", "--since", "1970-01-01T00:00:00Z", "--workflow", pattern)
    assert code == 0, err
    found = [json.loads(line)["run_id"] for line in out.splitlines()]
    assert found == ([] if pattern.startswith("%") else ["long"] if pattern[0] != "*" else ["first", "long", "recent"])


# -- trace show -----------------------------------------------------------------------------------

HEADER = {"type": "header", "workflow": "wf", "run_id": "abcdef123456", "started_at": "2026-01-01T00:00:00+00:00"}
NODE = {"type": "node", "node_id": "fetch", "node_type": "echo", "status": "success", "attempts": 1,
        "duration_ms": 1.5, "start_offset_ms": 0.0, "action": "default", "items": None, "store_before": 0,
        "llm_calls": [{"model": "m", "input_tokens": 1, "output_tokens": 2, "cost_usd": 0.5}],
        "changes": {"added": {"a": 1}, "removed": ["b"], "modified": {"c": 2}}, "error": None}
STORE = {"type": "store", "store": 0, "set": {"b": 1, "c": 1}, "removed": []}
SUMMARY = {"type": "summary", "status": "success", "duration_ms": 3.0, "error": None,
           "metrics": {"total": {"nodes_executed": 1, "input_tokens": 1, "output_tokens": 2, "cost_usd": 0.5,
                                 "partial_cost_usd": 0.5, "unpriced_models": []}}}


def _show(cli, tmp_path, lines: list) -> tuple[int, str, str]:
    path = tmp_path / "trace.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return cli("trace", "show", path)


def test_a_well_formed_crafted_trace_shows_every_line(cli, tmp_path):
    code, out, err = _show(cli, tmp_path, [HEADER, STORE, NODE, SUMMARY])
    assert code == 0, err
    assert out.splitlines() == [
        f"trace of wf · run abcdef12 · started {local_time(datetime.fromisoformat(HEADER['started_at']))}",
        "     0.0ms ✓ fetch (echo) 1.5ms · -> default",
        "            llm m: 1 in / 2 out, $0.5000",
        "            changed: +a ~c -b",
        "success · 3.0ms · 1 nodes · 1 in / 2 out tokens · $0.5000",
    ]


@pytest.mark.parametrize(("event", "field", "value"), [
    (NODE, "attempts", "2"), (NODE, "attempts", 10**4000), (NODE, "attempts", [2]), (NODE, "items", {"n": 1}),
    (NODE, "changes", [1]), (NODE, "changes", {"added": 5, "removed": "xyz", "modified": [[1]]}),
    (NODE, "llm_calls", "calls"), (NODE, "llm_calls", [1, None, {"cost_usd": "1"}, {"cost_usd": 1e308 * 10}]),
    (NODE, "duration_ms", 10**300), (NODE, "duration_ms", True), (NODE, "node_id", {"x": [1]}),
    (NODE, "error", "two\nlines\x1b[31m"), (NODE, "node_id", "\ud800"), (HEADER, "workflow", "\udfff x"),
    (NODE, "type", ["node"]), (NODE, "store_before", True),
    (STORE, "set", [1, 2]), (STORE, "removed", 5), (STORE, "removed", [[1], {"a": 1}]), (STORE, "set", "x"),
    (SUMMARY, "metrics", []), (SUMMARY, "metrics", {"total": {"cost_usd": "1", "unpriced_models": 5,
                                                             "partial_cost_usd": "x"}}),
    (SUMMARY, "duration_ms", -math.inf), (HEADER, "run_id", 10**50), (HEADER, "workflow", None),
])
def test_any_json_value_in_a_trace_field_is_shown_or_refused_in_one_line(cli, tmp_path, event, field, value):
    changed = {**event, field: value}
    lines = [changed if event is HEADER else HEADER, changed if event is STORE else STORE,
             changed if event is NODE else NODE, changed if event is SUMMARY else SUMMARY]
    code, out, err = _show(cli, tmp_path, [json.dumps(line, allow_nan=True) for line in lines])
    assert code in (0, 2) and "internal error" not in err
    if code == 2:
        assert one_error_line(err) and out == ""
    else:
        assert err == "" and all(line.isprintable() for line in out.splitlines())


@pytest.mark.parametrize("line", ["[" * 100_000 + "]" * 100_000, '{"type": "node", "x": ' + "9" * 5_000 + "}",
                                  '{"type": "node", "x": ' + "[" * 500 + "]" * 500 + "}", "[1, 2]", '{"type": 5}'])
def test_hostile_trace_lines_are_refused_with_their_line_number(cli, tmp_path, line):
    code, out, err = _show(cli, tmp_path, [HEADER, line, SUMMARY])
    assert code == 2 and out == ""
    assert one_error_line(err, "trace.jsonl:2:"), err[:300]


def test_line_separators_inside_values_do_not_split_trace_lines(cli, tmp_path):
    store = {**STORE, "set": {"b": "one\u2028two\x85three\u2029"}}
    node = {**NODE, "node_id": "a\u2028b"}
    code, out, err = _show(cli, tmp_path, [json.dumps(line, ensure_ascii=False) for line in (HEADER, store, node)])
    assert code == 0, err
    assert "a\\u2028b (echo)" in out and out.splitlines()[-1] == "(no summary line: the run did not finish)"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10**30, max_value=10**60)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)


@st.composite
def crafted_traces(draw):
    templates = [HEADER, *draw(st.lists(st.sampled_from([STORE, NODE, SUMMARY]), max_size=5))]
    crafted = []
    for template in templates:
        event = dict(template)
        for field in draw(st.lists(st.sampled_from([*sorted(template), "extra"]), max_size=3)):
            event[field] = draw(json_values)
        crafted.append(json.dumps(event, allow_nan=True, ensure_ascii=draw(st.booleans())))
    return crafted


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(crafted_traces())
def test_trace_show_never_fails_with_an_internal_error(cli, tmp_path, lines):
    code, out, err = _show(cli, tmp_path, lines)
    assert code in (0, 2) and "internal error" not in err and "Traceback" not in err
    assert (code == 0) == (err == "")
    if code == 2:
        assert one_error_line(err)


@pytest.mark.parametrize("command", [["report"], ["cost"], ["budget", "--max-usd", "1"], ["runs", "list"],
                                     ["export"], ["reprice", "--dry-run"]])
def test_a_since_after_the_until_is_one_line_not_an_empty_answer(cli, tmp_path, command):
    code, out, err = cli("--db", tmp_path / "l.db", *command, "--since", "1d", "--until", "7d")
    assert (code, out) == (2, "") and err.count("\n") == 1 and "is not before --until" in err
