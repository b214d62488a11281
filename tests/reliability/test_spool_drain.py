"""A spooled record the ledger refuses for good (PostgreSQL takes no NUL in text) must not
block the spool: the next run is recorded without a warning, and the refused record is set
aside as `.bad` (kept, not retried forever), while the other spooled records still land."""

from __future__ import annotations

import warnings

import pytest
from pocketflow import Flow, Node

from pflow_metrics.instrumentation import instrument
from pflow_metrics.ledger.spool import spool_dir, spool_record, spooled_files
from pflow_metrics.ledger.store import Ledger
from pflow_metrics.ledger.writer import LedgerWarning
from tests.factories import make_run


class Done(Node):
    def post(self, shared, prep_res, exec_res):
        shared["done"] = True


@pytest.mark.postgres
def test_a_spooled_record_the_ledger_refuses_is_set_aside_and_does_not_block_later_runs(postgres_url, pflow_home):
    refused = instrument(Flow(start=Done()), workflow="nul\x00name", ledger=postgres_url)
    with pytest.warns(LedgerWarning, match="spooled to"):
        refused.run({})
    waiting = make_run("spooled while the server was down")
    spool_record(waiting)
    assert len(spooled_files()) == 2

    later = instrument(Flow(start=Done()), workflow="next", ledger=postgres_url)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LedgerWarning)
        later.run({})

    assert later.last_run.ledger_warning is None
    assert spooled_files() == []
    assert [path.name for path in spool_dir().iterdir()] == [f"{refused.last_run.run_id}.bad"]
    with Ledger.open(postgres_url) as ledger:
        stored = list(ledger.iter_runs([later.last_run.run_id, waiting.run_id, refused.last_run.run_id]))
    assert [(r.workflow, r.status) for r in stored] == [("next", "success"),
                                                        ("spooled while the server was down", "success")]
