"""Ledgers written at every schema revision upgrade to head with their data intact (issue 6)."""
from decimal import Decimal

import pytest
from sqlalchemy import MetaData

from pflow_metrics.ledger.engine import HEAD_REVISION, REVISIONS, create_ledger_engine, current_revision
from pflow_metrics.ledger.migrate import downgrade_to, upgrade_to
from pflow_metrics.ledger.rows import call_rows, node_rows, run_row
from pflow_metrics.ledger.store import Ledger
from tests.factories import make_run, rows_before_exact_money


def write_at_revision(url: str, revision: str):
    """A ledger at `revision` holding one run, written with only the columns that revision has."""
    engine = create_ledger_engine(url)
    upgrade_to(engine, revision)
    record = make_run(calls=[{"model": "gpt-4o", "cost_usd": 0.5}, {"model": "mystery", "cost_usd": None}], nodes=2)
    tables = MetaData()
    tables.reflect(engine)
    written = (rows_before_exact_money(record) if REVISIONS.index(revision) < REVISIONS.index("0003") else
               {"runs": [run_row(record)], "node_executions": node_rows(record), "llm_calls": call_rows(record)})
    with engine.begin() as conn:
        for name, rows in written.items():
            table = tables.tables[name]
            conn.execute(table.insert(), [{k: v for k, v in row.items() if k in table.c} for row in rows])
    engine.dispose()
    return record


@pytest.mark.parametrize("revision", REVISIONS)
def test_a_ledger_at_each_revision_opens_at_head_with_its_runs(ledger_url, revision):
    record = write_at_revision(ledger_url, revision)

    with Ledger.open(ledger_url) as ledger:
        stored = ledger.get_run(record.run_id)
        assert current_revision(ledger.engine) == HEAD_REVISION

    assert stored.workflow == record.workflow
    assert [c.model for c in stored.llm_calls] == ["gpt-4o", "mystery"]
    assert stored.unpriced_calls == 1 and stored.cost_usd is None
    assert [call.cost_usd for call in stored.llm_calls] == [Decimal("0.5"), None]
    assert len(stored.nodes) == 2


def test_head_downgrades_one_revision_and_comes_back(ledger_url):
    record = write_at_revision(ledger_url, HEAD_REVISION)
    engine = create_ledger_engine(ledger_url)
    previous = REVISIONS[-2] if len(REVISIONS) > 1 else "base"
    downgrade_to(engine, previous)
    assert current_revision(engine) == (None if previous == "base" else previous)
    upgrade_to(engine, "head")
    engine.dispose()

    with Ledger.open(ledger_url) as ledger:
        if previous != "base":  # runs survive a downgrade that keeps their tables
            assert ledger.get_run(record.run_id).workflow == record.workflow
        assert current_revision(ledger.engine) == HEAD_REVISION
