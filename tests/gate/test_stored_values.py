"""Whatever a valid record may hold (extreme counts, costs, durations, start times, any text),
`gate` answers over it in every format, with its statistics, on both engines."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pflow_metrics.ledger.store import Ledger
from tests.reliability.test_stored_values_read_back import records

GATES = [
    ["--format", "json"], ["--format", "markdown"], [],
    ["--min-runs", "1", "--format", "json", "--baseline-since", "1970-01-01"],
    ["--min-runs", "1", "--max-cost-increase", "0%", "--confidence", "50%", "--baseline-since", "1970-01-01"],
    ["--min-runs", "1", "--require-data", "--format", "markdown", "--baseline-since", "1970-01-01"],
]


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_gate_answers_over_any_valid_stored_record(engine, request, cli, tmp_path):
    @settings(max_examples=6, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(st.lists(records(), min_size=2, max_size=8), st.booleans())
    def check(batch, one_workflow):
        for i, record in enumerate(batch):
            if one_workflow:
                record.workflow = "w"
            if i % 2:
                record.tags = {**record.tags, "git_sha": "c"}
        url = str(tmp_path / f"{batch[0].run_id}.db") if engine == "sqlite" else request.getfixturevalue("postgres_url")
        with Ledger.open(url) as ledger:
            ledger.finish_runs(batch)
        snapshot = tmp_path / f"{batch[0].run_id}.json"
        for options in [*GATES, ["--save-baseline", snapshot, "--baseline-since", "1970-01-01"]]:
            code, out, err = cli("--db", url, "gate", "--candidate-tag", "git_sha=c", *options)
            assert code in (0, 1), (options, code, err)
            assert "Traceback" not in err and "internal error" not in err, (options, err)
            assert "\x1b" not in out
            if "json" in options:
                json.loads(out, parse_constant=lambda token: pytest.fail(f"{token} in {options}"))
        code, out, err = cli("--db", url, "gate", "--candidate-tag", "git_sha=c", "--baseline-file", snapshot,
                             "--min-runs", "1", "--format", "json")
        assert code in (0, 1) and "error" not in err, err

    check()
