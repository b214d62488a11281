"""queries.run_values: one dict of figures per run, the same on both engines; and --tag
git_sha / git_branch matching the CI context a run recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pflow_metrics.ledger.filters import Filters
from pflow_metrics.ledger.queries import list_runs, run_values
from tests.factories import make_run

NOW = datetime.now(UTC).replace(microsecond=0)


def test_run_values_sum_each_runs_calls_and_tokens(ledger):
    priced = make_run("digest", started_at=NOW - timedelta(hours=2), tags={"env": "ci"},
                      calls=[{"input_tokens": 10, "output_tokens": 5, "thinking_tokens": 1, "cost_usd": Decimal("0.25")},
                             {"model": "mystery", "input_tokens": 4, "output_tokens": 0, "cost_usd": None}])
    empty = make_run("digest", started_at=NOW - timedelta(hours=1), calls=[], duration_ms=7.5)
    ledger.finish_runs([priced, empty])

    first, second = run_values(ledger, Filters(since=NOW - timedelta(days=1)))

    assert first == {"run_id": priced.run_id, "workflow": "digest", "status": "success",
                     "started_at": NOW - timedelta(hours=2), "duration_ms": 120.0, "llm_calls": 2, "tokens": 20,
                     "cost_usd": Decimal("0.25"), "unpriced_calls": 1, "tags": {"env": "ci"}}
    assert isinstance(first["cost_usd"], Decimal) and first["started_at"].tzinfo is not None
    assert second["run_id"] == empty.run_id
    assert (second["llm_calls"], second["tokens"], second["cost_usd"], second["unpriced_calls"], second["tags"]) \
        == (0, 0, Decimal(0), 0, {})


def test_run_values_keep_only_matching_runs(ledger):
    kept = make_run("digest", started_at=NOW - timedelta(hours=1))
    other = make_run("other", started_at=NOW - timedelta(hours=1))
    old = make_run("digest", started_at=NOW - timedelta(days=3))
    ledger.finish_runs([kept, other, old])
    assert [row["run_id"] for row in run_values(ledger, Filters(since=NOW - timedelta(days=1), workflows=["dig*"]))] \
        == [kept.run_id]


def test_tag_git_sha_and_git_branch_match_the_ci_context(ledger):
    from_ci = make_run("digest")
    from_ci.ci = {"provider": "github", "git_sha": "abc123", "git_branch": "main"}
    tagged = make_run("digest", tags={"git_sha": "abc123"})
    neither = make_run("digest", tags={"sha": "abc123"})
    ledger.finish_runs([from_ci, tagged, neither])

    found = {row["id"] for row in list_runs(ledger, Filters(tags={"git_sha": "abc123"}), 10)}
    assert found == {from_ci.run_id, tagged.run_id}
    assert [row["run_id"] for row in run_values(ledger, Filters(tags={"git_branch": "main"}))] == [from_ci.run_id]
    assert run_values(ledger, Filters(tags={"git_branch": "abc123"})) == []
