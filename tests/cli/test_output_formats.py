"""One output layer: every listing command gives every format, CSV is one rectangular table of
plain values, a JSON key means the same in every command, and numbers are right-aligned."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pflow_metrics.cli.render import FIELDS, NUMERIC
from pflow_metrics.ledger.store import Ledger
from tests.factories import make_run

NOW = datetime.now(UTC)
FORMATS = ("table", "json", "csv", "markdown")
# Names some command once used for a field that has its own name everywhere now.
ALIASES = {"id": "run_id", "input": "input_tokens", "output": "output_tokens", "cost": "cost_usd",
           "duration": "duration_ms", "started": "started_at", "over_run_id": "run_id", "over_cost_usd": "cost_usd"}
TRACE = [
    {"type": "header", "workflow": "wf", "run_id": "abcdef123456", "started_at": "2026-01-01T00:00:00+00:00"},
    {"type": "node", "node_id": "fetch", "node_type": "echo", "phase": "workflow", "status": "success",
     "attempts": 1, "duration_ms": 1.5, "start_offset_ms": 0.0, "action": "default", "items": None,
     "llm_calls": [{"model": "m", "input_tokens": 1, "output_tokens": 2, "cost_usd": 0.5}]},
    {"type": "summary", "status": "success", "duration_ms": 3.0, "error": None,
     "metrics": {"total": {"nodes_executed": 1, "input_tokens": 1, "output_tokens": 2, "cost_usd": 0.5}}},
]


@pytest.fixture
def filled(ledger_url, tmp_path, price_models):
    """Runs with every kind of figure: priced and unpriced calls, cache and thinking tokens, a
    failed run, a cheap call; a pricing file; a trace file."""
    price_models('[models."gpt-4o"]\ninput = 4.0\noutput = 8.0\n')
    runs = [
        make_run("nightly-digest", started_at=NOW - timedelta(hours=3), calls=[
            {"model": "gpt-4o", "input_tokens": 1200, "cache_read_tokens": 800, "cache_creation_tokens": 40,
             "cost_usd": "0.001056"},
            {"model": "claude-sonnet-4", "provider": "anthropic", "node_id": "step-1", "thinking_tokens": 120,
             "cost_usd": "1.2345"}]),
        make_run("nightly-digest", started_at=NOW - timedelta(hours=2), duration_ms=1315.4,
                 calls=[{"cost_usd": "0.000032"}]),
        make_run("triage, \"quoted\"", started_at=NOW - timedelta(days=1), status="failed", duration_ms=48.2,
                 calls=[{"model": "house-model", "provider": None, "cost_usd": None}]),
    ]
    with Ledger.open(ledger_url) as ledger:
        for record in runs:
            ledger.finish_run(record)
    trace = tmp_path / "trace.jsonl"
    trace.write_text("".join(json.dumps(event) + "\n" for event in TRACE))
    return ledger_url, runs[0].run_id, trace


def commands(filled) -> dict[str, list]:
    url, run_id, trace = filled
    return {
        "report": ["--db", url, "report"],
        "report --section nodes": ["--db", url, "report", "--section", "nodes"],
        "report --section days": ["--db", url, "report", "--section", "days"],
        "cost": ["--db", url, "cost", "--by", "model,workflow"],
        "budget": ["--db", url, "budget", "--max-usd", "0.5", "--per-run", "--since", "7d"],
        "runs list": ["--db", url, "runs", "list"],
        "runs show": ["--db", url, "runs", "show", run_id],
        "runs show --section calls": ["--db", url, "runs", "show", run_id, "--section", "calls"],
        "pricing list": ["pricing", "list", "--provider", "openai"],
        "pricing show": ["pricing", "show", "gpt-4o"],
        "db check": ["--db", url, "db", "check"],
        "trace show": ["trace", "show", trace],
        "reprice": ["--db", url, "reprice", "--dry-run"],
    }


def produce(cli, args, fmt) -> str:
    code, out, err = cli(*args, "--format", fmt)
    assert code in (0, 1) and err == "" and out.strip(), (args, fmt, code, err)  # budget: 1 is over
    return out


def test_every_listing_command_gives_every_format(cli, filled):
    for name, args in commands(filled).items():
        for fmt in FORMATS:
            out = produce(cli, args, fmt)
            if fmt == "json":
                json.loads(out)
            if fmt in ("table", "markdown"):
                assert "<" not in out or name == "trace show", (name, fmt)


def test_csv_is_one_rectangular_table_of_plain_values(cli, filled):
    for name, args in commands(filled).items():
        rows = list(csv.reader(io.StringIO(produce(cli, args, "csv"))))
        header, body = rows[0], rows[1:]
        assert body and all(len(row) == len(header) for row in body), name  # no sections, no prose lines
        assert all(column in FIELDS for column in header), (name, header)  # one name per field
        for row in body:
            for column, cell in zip(header, row):
                kind = FIELDS[column].kind
                if cell == "" or kind not in (*NUMERIC, "time", "flag"):
                    continue
                if kind in NUMERIC:
                    Decimal(cell)  # 0.001056, not $0.0011; 0.88, not 88%; 1300, not 1,300
                elif kind == "time":
                    assert datetime.fromisoformat(cell).utcoffset() == timedelta(0), (name, column, cell)
                else:
                    assert cell in ("true", "false"), (name, column, cell)


def test_a_json_key_is_the_same_field_in_every_command(cli, filled):
    """A property over all the commands' JSON: no command uses another name for a field, and a
    key of the shared vocabulary always holds its kind of value."""
    for name, args in commands(filled).items():
        for key, value in pairs(json.loads(produce(cli, args, "json"), parse_float=Decimal)):
            assert key not in ALIASES, f"{name}: '{key}' is called '{ALIASES[key]}' elsewhere"
            if key not in FIELDS or value is None:
                continue
            kind = FIELDS[key].kind
            if kind in ("money", "delta", "rate", "duration", "share"):
                assert isinstance(value, (int, Decimal)) and not isinstance(value, bool), (name, key, value)
            elif kind == "count":
                assert isinstance(value, int) and not isinstance(value, bool), (name, key, value)
            elif kind == "time":
                assert datetime.fromisoformat(value).utcoffset() == timedelta(0), (name, key, value)
            elif kind == "flag":
                assert isinstance(value, bool), (name, key, value)
            elif not isinstance(value, (dict, list)):  # report's `tokens` and `statuses` are objects
                assert isinstance(value, str), (name, key, value)


MAPS = ("rates", "tags", "ci", "statuses", "tokens")  # objects keyed by data or by a part's name, not fields


def pairs(data):
    """Every (key, value) of every object in a JSON document (not inside MAPS)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield key, value
            if key not in MAPS:
                yield from pairs(value)
    elif isinstance(data, list):
        for item in data:
            yield from pairs(item)


def test_numeric_columns_are_right_aligned_in_tables_and_markdown(cli, filled):
    url, _, _ = filled
    for args in (["cost", "--by", "model"], ["runs", "list"], ["report", "--section", "workflows"]):
        _, out, _ = cli("--db", url, *args, "--format", "markdown")
        header, rule = [line for line in out.splitlines() if line.startswith("|")][:2]  # after a title
        for heading, marks in zip(cells(header), cells(rule)):
            numeric = any(column.heading == heading and column.kind in NUMERIC for column in FIELDS.values())
            assert (marks.startswith(":"), marks.endswith(":")) == (not numeric, numeric), (args, heading, marks)
        _, out, _ = cli("--db", url, *args, "--format", "table")
        lines = out.splitlines()
        lines = lines[next(i for i, line in enumerate(lines) if set(lines[i + 1]) <= {"-", " "}):]  # after a title
        spans = [(start, start + len(dashes)) for start, dashes in dash_runs(lines[1])]
        for start, end in spans:
            heading = lines[0][start:end].strip()
            if any(column.heading == heading and column.kind in NUMERIC for column in FIELDS.values()):
                assert all(line[:end].endswith(line[start:end].strip()) for line in lines[2:]), (args, heading)


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def dash_runs(rule: str):
    start = None
    for index, char in enumerate(rule + " "):
        if char == "-" and start is None:
            start = index
        elif char != "-" and start is not None:
            yield start, rule[start:index]
            start = None


def test_money_durations_and_times_read_the_same_in_every_table(cli, filled):
    url, run_id, _ = filled
    outputs = [cli("--db", url, *args).stdout for args in (["runs", "list"], ["runs", "show", run_id],
                                                          ["report", "--section", "workflows"])]
    assert "$0.000032" in outputs[0] and "1.32s" in outputs[0] and "48ms" in outputs[0]
    assert "$1.24" in outputs[1] and "$0.0011" in outputs[1] and "cache creation tokens" in outputs[1]
    assert "$1.24" in outputs[2]
    local = (NOW - timedelta(hours=3)).astimezone().isoformat(sep=" ", timespec="seconds")
    assert local in outputs[0] and local in outputs[1]


def test_budget_says_ok_warn_or_over_in_every_format(cli, filled):
    url, _, _ = filled
    for limit, status in (("10", "ok"), ("1.4", "warn"), ("1", "over")):
        for fmt in FORMATS:
            code, out, _ = cli("--db", url, "budget", "--max-usd", limit, "--since", "7d", "--format", fmt)
            assert code == (1 if status == "over" else 0)
            verdict = json.loads(out)["status"] if fmt == "json" else \
                next(csv.DictReader(io.StringIO(out)))["status"] if fmt == "csv" else out
            assert status in verdict, (limit, fmt, out)


def test_report_csv_gives_each_section_and_days_are_not_dropped(cli, filled):
    url, _, _ = filled
    _, out, _ = cli("--db", url, "report", "--format", "csv")
    assert list(csv.DictReader(io.StringIO(out)))[0]["runs"] == "3"  # the summary by default
    _, out, _ = cli("--db", url, "report", "--format", "csv", "--section", "days")
    days = list(csv.DictReader(io.StringIO(out)))
    assert sum(Decimal(row["cost_usd"] or 0) for row in days) == Decimal("1.235588")
    code, _, err = cli("--db", url, "report", "--format", "csv", "--section", "everything")
    assert code == 2 and err.count("\n") == 1 and "--section" in err


def test_a_format_nobody_offers_is_a_usage_error_from_the_one_declaration(cli, tmp_path):
    for args in (["report"], ["cost"], ["runs", "list"], ["pricing", "list"], ["db", "check"], ["reprice"]):
        code, out, err = cli("--db", tmp_path / "l.db", *args, "--format", "xml")
        assert (code, out) == (2, "") and err.count("\n") == 1 and "'xml'" in err, (args, err)


def test_output_to_a_file_is_the_same_text_written_private(cli, filled, tmp_path):
    url, run_id, _ = filled
    target = tmp_path / "runs.csv"
    code, out, err = cli("--db", url, "runs", "show", run_id, "--format", "csv", "--section", "calls", "-o", target)
    assert (code, out, err) == (0, "", "")
    assert target.read_text() == cli("--db", url, "runs", "show", run_id, "--format", "csv", "--section", "calls").stdout
    assert target.stat().st_mode & 0o777 == 0o600
    code, _, err = cli("--db", url, "report", "-o", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "cannot write" in err
