"""Both pages opened as a person opens them: in a real headless Chromium (Debian's package,
driven by Playwright), light and dark, with a screenshot each. A console error, a request of
any kind, a script that runs from the data, or a chart area with nothing drawn fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pflow_metrics.ledger.store import Ledger
from tests.factories import make_run
from tests.html.scenes import CHROMIUM, busy_month, look, traced_run

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=".ci/run installs Debian's chromium")

NOW = datetime.now(UTC)


def assert_looks_right(seen, charts: int) -> None:
    assert seen.console_errors == []
    assert seen.failed_requests == []
    assert seen.dialogs == []
    assert seen.charts == charts and seen.empty_charts == []


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_the_report_page_draws_every_chart_with_no_error_and_no_request(cli, tmp_path, dark):
    db = tmp_path / "ledger.db"
    with Ledger.open(str(db)) as ledger:
        ledger.finish_runs(busy_month(NOW, days=30))
    page = tmp_path / "report.html"
    code, _, err = cli("--db", db, "report", "--since", "30d", "--format", "html", "-o", page)
    assert code == 0, err
    shot = tmp_path / "report.png"
    seen = look(page, shot, dark=dark)
    assert_looks_right(seen, charts=6)
    assert shot.stat().st_size > 50_000
    for heading in ("Cost per day, by model", "Runs and failures per day", "Cost by workflow", "p95 run duration",
                    "Most expensive nodes", "Token mix", "Unpriced models"):
        assert heading in seen.text
    text_colour, background = seen.colours
    assert (background == "rgb(13, 17, 23)") is dark and text_colour != background
    assert any(hover.startswith("nightly-digest: $") and " runs, " in hover for hover in seen.hover)


def test_the_report_prints_black_on_white_even_from_a_dark_screen(cli, tmp_path):
    db = tmp_path / "ledger.db"
    with Ledger.open(str(db)) as ledger:
        ledger.finish_runs(busy_month(NOW, days=7))
    page = tmp_path / "report.html"
    code, _, err = cli("--db", db, "report", "--since", "7d", "--format", "html", "-o", page)
    assert code == 0, err
    seen = look(page, tmp_path / "printed.png", dark=True, printed=True)
    assert_looks_right(seen, charts=6)
    assert seen.colours == ("rgb(0, 0, 0)", "rgb(255, 255, 255)")


def test_the_run_page_is_a_waterfall_of_a_real_traced_run(cli, tmp_path, price_models):
    price_models("[models.echo]\ninput = 3.0\noutput = 15.0\n")
    db = str(tmp_path / "ledger.db")
    run_id = traced_run(db)
    page = tmp_path / "run.html"
    code, _, err = cli("--db", db, "runs", "show", run_id, "--format", "html", "-o", page)
    assert code == 0, err
    seen = look(page, tmp_path / "run.png")
    assert_looks_right(seen, charts=1)
    assert "3 attempts" in seen.text and "4 items" in seen.text and "echo" in seen.text
    calls = [hover for hover in seen.hover if hover.startswith("LLM call echo in ")]
    assert len(calls) == 5 and all("$0.0002" in hover for hover in calls)
    assert any(hover.startswith("fetch (Fetch, workflow) from +") and "3 attempts" in hover for hover in seen.hover)


def test_a_workflow_named_like_a_script_is_shown_as_its_name(cli, tmp_path):
    name = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    db = tmp_path / "ledger.db"
    record = make_run(name, started_at=NOW - timedelta(hours=1),
                      calls=[{"model": name, "node_id": name, "cost_usd": 0.5}])
    record.nodes[0].node_id = name
    with Ledger.open(str(db)) as ledger:
        ledger.finish_run(record)
    for command, charts in ((["report"], 6), (["runs", "show", record.run_id], 1)):
        page = tmp_path / f"{command[0]}.html"
        code, _, err = cli("--db", db, *command, "--format", "html", "-o", page)
        assert code == 0, err
        seen = look(page, tmp_path / f"{command[0]}.png")
        assert_looks_right(seen, charts=charts)
        assert name in seen.text
