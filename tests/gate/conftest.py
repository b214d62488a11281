"""Seeding ledgers for the gate: baseline and candidate runs with chosen per-run figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pflow_metrics.ledger.store import Ledger
from tests.factories import make_run

CANDIDATE = {"git_sha": "c0ffee"}
BASELINE = {"git_sha": "base"}


def runs(workflow: str, costs: list, *, tags: dict[str, str] | None = None, durations: list[float] | None = None,
         statuses: list[str] | None = None, hours_ago: float = 1) -> list:
    """One run per cost (a Decimal, or None for an unpriced call), started `hours_ago`."""
    started = datetime.now(UTC) - timedelta(hours=hours_ago)
    return [make_run(workflow, started_at=started + timedelta(seconds=i), tags=tags,
                     calls=[{"cost_usd": cost, **({"model": "mystery"} if cost is None else {})}],
                     duration_ms=durations[i] if durations else 120.0,
                     status=statuses[i] if statuses else "success")
            for i, cost in enumerate(costs)]


def steady(count: int, mean: str = "0.0100") -> list[Decimal]:
    """`count` costs around `mean`, within ±2% of it (a workflow with little noise)."""
    centre = Decimal(mean)
    return [centre * (1 + Decimal(i % 5 - 2) / 100) for i in range(count)]


def scaled(costs: list[Decimal], factor: str) -> list[Decimal]:
    return [cost * Decimal(factor) for cost in costs]


@pytest.fixture
def seed(ledger_url):
    """seed(*run lists): write the runs into this test's ledger (SQLite or PostgreSQL)."""
    def write(*lists) -> str:
        with Ledger.open(ledger_url) as ledger:
            ledger.finish_runs([run for chunk in lists for run in chunk])
        return ledger_url

    return write


@pytest.fixture
def gate(cli, ledger_url):
    """gate(*options): run `pflow-metrics --db URL gate ...`; JSON output comes back parsed as `.json`."""
    class Result:
        def __init__(self, result):
            self.exit_code, self.stdout, self.stderr = result
            self.json = json.loads(self.stdout) if self.stdout.startswith("{") else None

        def check(self, workflow: str, metric: str) -> dict:
            entry = next(w for w in self.json["workflows"] if w["workflow"] == workflow)
            return next(c for c in entry["checks"] if c["metric"] == metric)

    def run(*options) -> Result:
        return Result(cli("--db", ledger_url, "gate", *options))

    return run
