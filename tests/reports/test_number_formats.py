"""One rule for money and one for durations in every command's text output."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from pflow_metrics.cli.render import duration, money
from pflow_metrics.ledger.store import Ledger
from tests.factories import make_run


@pytest.mark.parametrize(("amount", "shown"), [
    (None, "unpriced"), (Decimal(0), "$0.0000"), (Decimal("0.000032"), "$0.000032"),
    (Decimal("0.00001056"), "$0.000011"), (Decimal("0.001056"), "$0.0011"), (Decimal("0.5"), "$0.5000"),
    (Decimal("1.5"), "$1.50"), (Decimal("1234.5"), "$1,234.50"),
])
def test_money_reads_the_same_everywhere(amount, shown):
    assert money(amount) == shown
    assert money(amount, lower_bound=True) == (shown if amount is None else f"≥ {shown}")


@pytest.mark.parametrize(("ms", "shown"), [(None, "-"), (0.3, "0.3ms"), (3.04, "3.0ms"), (480.2, "480ms"),
                                           (1315, "1.31s")])
def test_durations_read_the_same_everywhere(ms, shown):
    assert duration(ms) == shown


def test_one_run_shows_one_cost_and_one_duration_in_every_command(cli, tmp_path):
    record = make_run("digest", calls=[{"cost_usd": Decimal("0.001056")}], duration_ms=1315.0)
    db = tmp_path / "l.db"
    with Ledger.open(str(db)) as ledger:
        ledger.finish_run(record)
    for command in (["runs", "list"], ["runs", "show", record.run_id], ["report"]):
        out = cli("--db", db, *command).stdout
        # report's percentiles come from a sketch, within 1% of 1.315 s
        assert "$0.0011" in out and re.search(r"\b1\.3[0-3]s\b", out), (command, out)
    assert json.loads(cli("--db", db, "report", "--format", "json").stdout, parse_float=Decimal)["cost_usd"] == \
        Decimal("0.001056")
