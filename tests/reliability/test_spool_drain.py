"""A spooled record that can never land (a file damaged on disk, say) must not block the spool:
the next run is recorded without a warning, and the bad file is set aside as `.bad` (kept, not
retried forever), while the other spooled records still land. A run whose texts no engine can
hold (a NUL, a lone surrogate) is not such a record: it lands, with U+FFFD in their place."""

from __future__ import annotations

import warnings

import pytest
from pocketflow import Flow, Node

from pflow_metrics.instrumentation import instrument
from pflow_metrics.ledger.spool import ledger_spool_dir, spool_record, spooled_files
from pflow_metrics.ledger.store import Ledger
from pflow_metrics.ledger.writer import LedgerWarning
from tests.factories import make_run


class Done(Node):
    def post(self, shared, prep_res, exec_res):
        shared["done"] = True


@pytest.mark.postgres
def test_a_spooled_record_that_cannot_land_is_set_aside_and_does_not_block_later_runs(postgres_url, pflow_home):
    odd = instrument(Flow(start=Done()), workflow="nul\x00name", ledger=postgres_url)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LedgerWarning)
        odd.run({})  # stored at once: the NUL is made storable
    waiting = make_run("spooled while the server was down")
    spool_record(waiting, postgres_url)
    damaged = spool_record(make_run("damaged on disk"), postgres_url)
    damaged.write_text(damaged.read_text()[:40])
    assert len(spooled_files()) == 2

    later = instrument(Flow(start=Done()), workflow="next", ledger=postgres_url)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LedgerWarning)
        later.run({})

    assert later.last_run.ledger_warning is None
    assert spooled_files() == []
    assert [path.name for path in ledger_spool_dir(postgres_url).glob("*.bad")] == [damaged.with_suffix(".bad").name]
    with Ledger.open(postgres_url) as ledger:
        stored = list(ledger.iter_runs([later.last_run.run_id, waiting.run_id, odd.last_run.run_id]))
    assert [(r.workflow, r.status) for r in stored] == [("next", "success"),
                                                        ("spooled while the server was down", "success"),
                                                        ("nul\ufffdname", "success")]
