"""`report --format html` and `runs show --format html`: the figures, the escaping, the size, a
page that stands alone, and an extra that loads only when asked for."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pflow_metrics.cli.render import clean, duration, money
from pflow_metrics.html import MISSING_EXTRA
from pflow_metrics.ledger.queries import Filters, report, report_breakdown
from pflow_metrics.ledger.store import Ledger
from tests.factories import make_run
from tests.html.scenes import busy_month

NOW = datetime.now(UTC)
HOSTILE = "<script>alert(1)</script>"


def embedded(page: str, data_id: str = "report-data") -> dict:
    """The page's data, read back as a script would, money as exact decimals."""
    found = re.search(rf'<script type="application/json" id="{data_id}">(.*?)</script>', page, re.S)
    assert found, f"no {data_id} in the page"
    return json.loads(found.group(1), parse_float=Decimal)


class Elements(HTMLParser):
    """Every element and attribute of a page, its text, and the text of its <style> elements."""

    def __init__(self, page: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.styles: list[str] = []
        self.text: list[str] = []
        self._in_style = False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_data(self, data):
        (self.styles if self._in_style else self.text).append(data)

    def handle_endtag(self, tag):
        self._in_style = False


# The elements our pages are made of (Vega's SVG included).
PAGE_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "div", "strong", "code", "section",
             "figure", "svg", "g", "path", "line", "text", "rect", "table", "thead", "tbody", "tr", "th", "td",
             "footer", "script"}


def outside_references(page: str) -> list[str]:
    """Whatever in the page would load something from outside it."""
    found = []
    elements = Elements(page)
    for tag, attrs in elements.tags:
        if tag in ("link", "img", "iframe", "object", "embed", "image", "use", "audio", "video", "source", "base"):
            found.append(f"<{tag}>")
        for name, value in attrs.items():
            if name in ("src", "href", "xlink:href", "srcset", "action", "poster", "data", "background"):
                found.append(f"<{tag} {name}={value}>")
            if name == "style" or name in ("fill", "stroke", "clip-path", "mask", "filter"):
                found += [f"<{tag} {name}={value}>" for ref in re.findall(r"url\(\s*['\"]?([^)'\"]*)", value or "")
                          if not ref.startswith("#")]
    for style in elements.styles:
        found += re.findall(r"@import[^;]*", style)
        found += [ref for ref in re.findall(r"url\(\s*['\"]?([^)'\"]*)", style) if not ref.startswith("#")]
    return found


@pytest.fixture
def month(ledger_url):
    with Ledger.open(ledger_url) as ledger:
        ledger.finish_runs(busy_month(NOW, days=30))
        ledger.finish_runs(busy_month(NOW - timedelta(days=30), days=30, seed=16))  # the previous window
    return ledger_url


def test_every_figure_in_the_page_equals_report_json_for_the_same_window(cli, month, tmp_path):
    window = ["--since", (NOW - timedelta(days=30)).isoformat(), "--until", (NOW + timedelta(minutes=1)).isoformat()]
    code, out, err = cli("--db", month, "report", *window, "--format", "json")
    assert code == 0, err
    page_file = tmp_path / "report.html"
    code, _, err = cli("--db", month, "report", *window, "--format", "html", "-o", page_file)
    assert code == 0, err
    page = page_file.read_text()
    data = embedded(page)
    expected = json.loads(out, parse_float=Decimal)
    assert data["report"] == expected
    figures = data["report"]
    assert figures["runs"] > 1000 and figures["unpriced_models"] == ["house-llama-70b"]
    # The headline shows those figures, money through the one money rule.
    shown = [money(figures["cost_usd"], figures["cost_is_lower_bound"]), f"{figures['runs']:,}",
             money(figures["cost_per_run"], figures["cost_is_lower_bound"]), f"{figures['calls']:,}",
             f"{duration(figures['duration_p50_ms'])} / {duration(figures['duration_p95_ms'])}",
             f"{figures['success_rate']:.1%}"]
    for text in shown:
        assert f'<div class="value">{text}</div>' in page, text
    for row in figures["top_workflows"]:
        assert money(row["cost_usd"], row["cost_is_lower_bound"]) in page
    assert "house-llama-70b" in page[page.index("Unpriced models"):][:400]


def test_the_breakdown_adds_up_to_the_report_of_the_same_window(month):
    with Ledger.open(month) as ledger:
        window = Filters(since=NOW - timedelta(days=30))
        figures, breakdown = report(ledger, window), report_breakdown(ledger, window)
    by_day = {}
    for row in breakdown.cost_per_day_by_model:
        by_day[row.day] = by_day.get(row.day, Decimal(0)) + (row.cost_usd or 0)
    assert by_day == {day.day: day.cost_usd or 0 for day in figures.cost_per_day}
    assert sum(day.runs for day in breakdown.runs_per_day) == figures.runs
    statuses = {}
    for day in breakdown.runs_per_day:
        for status, runs in day.statuses.items():
            statuses[status] = statuses.get(status, 0) + runs
    assert statuses == figures.statuses
    assert sum(row.runs for row in breakdown.workflow_durations) == figures.runs
    assert {row.model for row in breakdown.cost_per_day_by_model if row.unpriced_calls} == set(figures.unpriced_models)


def test_a_month_of_a_busy_ledger_is_one_page_under_2_mb_that_references_nothing_outside(cli, tmp_path):
    db = tmp_path / "busy.db"
    with Ledger.open(str(db)) as ledger:  # about 7,000 runs and 30,000 calls, 85 workflows
        ledger.finish_runs(busy_month(NOW, days=30, scale=2, extra_workflows=80))
    page_file = tmp_path / "report.html"
    code, _, err = cli("--db", db, "report", "--since", "30d", "--format", "html", "-o", page_file)
    assert code == 0, err
    page = page_file.read_bytes()
    assert len(page) < 2 * 1024 * 1024
    text = page.decode()
    assert outside_references(text) == []
    assert not re.search(r"https?://", text)
    assert text.count("<svg") == 6


def test_a_run_page_references_nothing_outside(cli, ledger_url, tmp_path, price_models):
    from tests.html.scenes import traced_run

    price_models("[models.echo]\ninput = 3.0\noutput = 15.0\n")
    run_id = traced_run(ledger_url)
    page_file = tmp_path / "run.html"
    code, _, err = cli("--db", ledger_url, "runs", "show", run_id, "--format", "html", "-o", page_file)
    assert code == 0, err
    page = page_file.read_text()
    assert outside_references(page) == [] and not re.search(r"https?://", page)
    run = embedded(page, "run-data")["run"]
    code, out, _ = cli("--db", ledger_url, "runs", "show", run_id, "--format", "json")
    assert run == json.loads(out, parse_float=Decimal)
    assert [(node["node_id"], node["attempts"], node.get("items")) for node in run["nodes"]] == [
        ("plan", 1, None), ("fetch", 3, None), ("summarize", 1, 4), ("publish", 1, None)]
    assert "3 attempts" in page and "4 items" in page and "$" in page


@pytest.mark.parametrize("name", [HOSTILE, '"><img src=x onerror=alert(2)>', "</script><script>alert(3)//",
                                  "\x1b]0;pwned\x07 & <b>bold</b>"])
def test_text_from_the_ledger_is_shown_as_text_never_as_markup(cli, tmp_path, name):
    db = tmp_path / "ledger.db"
    record = make_run(name, calls=[{"model": name, "node_id": name, "cost_usd": None},
                                   {"model": "gpt-4o", "node_id": name, "cost_usd": 0.25}])
    record.nodes[0].node_id = name
    record.error = name
    record.tags = {name: name}
    with Ledger.open(str(db)) as ledger:
        ledger.finish_run(record)
    pages = []
    for command in (["report", "--since", "7d", "--workflow", name], ["runs", "show", record.run_id]):
        page_file = tmp_path / f"{command[0]}.html"
        code, _, err = cli("--db", db, *command, "--format", "html", "-o", page_file)
        assert code == 0, err
        pages.append(page_file.read_text())
    for page in pages:
        elements = Elements(page)
        assert [tag for tag, _ in elements.tags].count("script") == 2  # the data and the hover titles
        assert {tag for tag, _ in elements.tags} <= PAGE_TAGS
        assert not [attrs for _, attrs in elements.tags if any(name.startswith("on") for name in attrs)]
        assert outside_references(page) == []
        assert "\x1b" not in page
    assert embedded(pages[0])["report"]["top_workflows"][0]["workflow"] == name
    assert embedded(pages[1], "run-data")["run"]["workflow"] == name


def test_without_the_extra_html_says_which_extra_to_install(cli, tmp_path, monkeypatch):
    db = tmp_path / "ledger.db"
    record = make_run()
    with Ledger.open(str(db)) as ledger:
        ledger.finish_run(record)
    monkeypatch.setitem(sys.modules, "vl_convert", None)  # as if it were not installed
    for command in (["report"], ["runs", "show", record.run_id]):
        code, out, err = cli("--db", db, *command, "--format", "html", "-o", tmp_path / "page.html")
        assert (code, out) == (2, "")
        assert err == f"pflow-metrics: error: {MISSING_EXTRA}\n"
    assert not (tmp_path / "page.html").exists()


@pytest.mark.parametrize("command", [["report"], ["report", "--format", "json"], ["cost", "--by", "model"],
                                     ["runs", "list"], ["runs", "show", "RUN"]])
def test_text_commands_import_nothing_of_the_html_extra(tmp_path, command):
    db = tmp_path / "ledger.db"
    record = make_run()
    with Ledger.open(str(db)) as ledger:
        ledger.finish_run(record)
    command = [record.run_id if part == "RUN" else part for part in command]
    code = (
        "import sys\nfrom pflow_metrics.cli.app import main\ncode = 0\n"
        f"try:\n    main(['--db', {str(db)!r}, *{command!r}])\nexcept SystemExit as exit:\n    code = exit.code\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] == 'vl_convert' or m.startswith('pflow_metrics.html')]\n"
        "print('LOADED', code, loaded, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PFLOW_HOME": str(tmp_path)})
    assert "LOADED 0 []" in result.stderr, result.stderr


def test_a_window_of_years_draws_months_not_thousands_of_days(cli, tmp_path):
    db = tmp_path / "ledger.db"
    with Ledger.open(str(db)) as ledger:
        ledger.finish_runs([make_run(started_at=NOW - timedelta(days=day), status="failed" if day % 7 else "success")
                            for day in range(0, 400, 2)])
    page_file = tmp_path / "report.html"
    code, _, err = cli("--db", db, "report", "--since", "500d", "--format", "html", "-o", page_file)
    assert code == 0, err
    page = page_file.read_text()
    assert "Cost per month, by model" in page and "Runs and failures per month" in page
    breakdown = embedded(page)["breakdown"]
    assert len(breakdown["runs_per_day"]) == 200 and sum(day["runs"] for day in breakdown["runs_per_day"]) == 200


def test_a_run_of_thousands_of_executions_and_huge_names_stays_a_bounded_page(tmp_path):
    from pflow_metrics.html import run_page
    from pflow_metrics.record import LLMCallRecord, NodeRecord

    long_name = "n" * 100_000
    record = make_run(long_name, nodes=0, calls=[])
    record.nodes = [NodeRecord(f"step-{i % 7}", "Node", "workflow", 2.0, start_offset_ms=i * 2.0) for i in range(5_000)]
    record.llm_calls = [LLMCallRecord(node_id=f"step-{i % 7}", model=long_name, input_tokens=10**10,
                                      cost_usd=Decimal("10000"), started_at=record.started_at + timedelta(seconds=i))
                        for i in range(3_000)]
    page = run_page(record)
    chart = page[page.index("<svg"):page.index("</svg>")]
    assert chart.count('aria-roledescription="bar"') == 300  # the first 300 executions
    assert "The first 300 of 5,000 executions and 1,000 of 3,000 LLM calls are drawn" in page
    assert long_name not in page.split('id="run-data"')[0]  # shown cut, kept whole in the data
    assert embedded(page, "run-data")["run"]["workflow"] == long_name


def test_a_run_that_ran_no_node_says_so(tmp_path):
    from pflow_metrics.html import run_page

    record = make_run(nodes=0, calls=[], status="crashed")
    record.duration_ms = None
    page = run_page(record)
    assert "No node ran in this run." in page and "<svg" not in page


def test_calls_of_a_node_that_has_no_execution_share_one_row_of_their_own():
    from pflow_metrics.html import run_page

    record = make_run(nodes=1, calls=[{"node_id": "reported-later"}, {"node_id": "reported-later"}, {}])
    page = run_page(record)
    chart = page[page.index("<svg"):page.index("</svg>")]
    assert "Y-axis for a discrete scale with 2 values: step-0, reported-later (calls)" in chart
    assert chart.count("LLM call gpt-4o in reported-later (calls)") == 2


def test_an_empty_window_is_a_page_of_notes_not_of_empty_charts(ledger):
    from pflow_metrics.html import report_page

    window = Filters(since=NOW - timedelta(days=7))
    page = report_page(report(ledger, window), window, report_breakdown(ledger, window))
    assert "<svg" not in page and page.count('class="note"') == 6
    assert '<div class="value">0</div>' in page and '<div class="value">-</div>' in page


@settings(max_examples=25, deadline=None)
@given(names=st.lists(st.text(max_size=80), min_size=4, max_size=4),
       durations=st.lists(st.floats(min_value=0, max_value=10**11), min_size=1, max_size=5),
       attempts=st.integers(min_value=1, max_value=2**63 - 1), items=st.none() | st.integers(0, 2**63 - 1))
def test_any_text_and_numbers_a_record_may_hold_make_a_page_that_stands_alone(names, durations, attempts, items):
    from pflow_metrics.html import run_page
    from pflow_metrics.record import NodeRecord

    workflow, node_id, model, error = names
    record = make_run(workflow or "w", nodes=0, calls=[{"model": model or "m", "node_id": node_id or "n"}])
    record.nodes = [NodeRecord(node_id or "n", "Node", "workflow", took, "failed", attempts, None, error, at, items)
                    for at, took in zip(durations, reversed(durations))]
    record.error = error
    page = run_page(record)
    assert outside_references(page) == []
    assert embedded(page, "run-data")["run"]["workflow"] == (workflow or "w")
    elements = Elements(page)
    assert {tag for tag, _ in elements.tags} <= PAGE_TAGS  # no name became markup
    # It is there as text (its start: a long escaped name is cut where the page has room).
    assert clean(workflow or "w", limit=None)[:79] in "".join(elements.text)
