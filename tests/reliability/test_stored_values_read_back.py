"""Whatever a valid record may hold, every read command answers over it: extreme counts, costs
and times at the edges of the supported range, any text, any pid. A stored value never crashes
a reader (it did: `"pid": 2**62` made every command fail in os.kill)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pflow_metrics.ledger.store import Ledger
from pflow_metrics.money import MAX_CALL_USD
from pflow_metrics.record import EARLIEST, LATEST, MAX_CALL_TOKENS, MAX_COUNT, MAX_DURATION_MS, RUN_STATUSES
from tests.factories import make_run

texts = st.text(min_size=1, max_size=40)  # any Unicode: quotes, escapes, control characters
starts = st.one_of(st.sampled_from([EARLIEST, LATEST - timedelta(microseconds=1), datetime.now(UTC)]),
                   st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30),
                                timezones=st.just(UTC)))
counts = st.one_of(st.sampled_from([0, MAX_CALL_TOKENS]), st.integers(0, MAX_CALL_TOKENS))
costs = st.one_of(st.none(), st.sampled_from([Decimal(0), MAX_CALL_USD, Decimal("0.000000001")]),
                  st.decimals(0, MAX_CALL_USD, places=9))


@st.composite
def records(draw):
    calls = [{"model": draw(texts), "node_id": draw(texts), "provider": draw(st.none() | texts),
              "input_tokens": draw(counts), "output_tokens": draw(counts), "cache_read_tokens": draw(counts),
              "cost_usd": draw(costs), "duration_ms": draw(st.floats(0, MAX_DURATION_MS, allow_subnormal=False))}
             for _ in range(draw(st.integers(0, 3)))]
    start = draw(starts)
    longest = min(float(MAX_DURATION_MS), (LATEST - start) / timedelta(milliseconds=1) - 1)
    record = make_run(draw(texts), started_at=start, status=draw(st.sampled_from(RUN_STATUSES)), calls=calls,
                      nodes=draw(st.integers(0, 2)), tags=draw(st.dictionaries(texts, texts, max_size=2)),
                      duration_ms=draw(st.sampled_from([0.0, 1.0, longest])))
    record.pid = draw(st.sampled_from([None, 1, 2**31, MAX_COUNT]))
    record.host = draw(st.sampled_from([None, "elsewhere", record.host]))
    record.error = draw(st.none() | texts)
    return record


READS = [
    ["report", "--since", "1970-01-01"], ["report", "--since", "1970-01-01", "--format", "json"],
    ["report", "--since", "1970-01-01", "--format", "csv"], ["report", "--since", "1970-01-01", "--format", "markdown"],
    ["cost", "--since", "1970-01-01", "--by", "model,workflow"], ["cost", "--since", "1970-01-01", "--by", "day"],
    ["cost", "--since", "1970-01-01", "--by", "week", "--format", "json"],
    ["cost", "--since", "1970-01-01", "--by", "month", "--format", "csv"],
    ["cost", "--since", "1970-01-01", "--by", "provider,node,phase"],
    ["budget", "--since", "1970-01-01", "--max-usd", "1"], ["budget", "--since", "1970-01-01", "--max-usd", "0",
                                                             "--per-run", "--format", "json"],
    ["runs", "list", "--since", "1970-01-01"], ["runs", "list", "--since", "1970-01-01", "--format", "json"],
    ["export", "--since", "1970-01-01"], ["export", "--since", "1970-01-01", "--format", "csv"],
    ["reprice", "--since", "1970-01-01", "--dry-run"], ["db", "check"],
]



@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_every_read_command_answers_over_any_valid_stored_record(engine, request, cli):
    @settings(max_examples=12, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(st.lists(records(), min_size=1, max_size=3))
    def check(batch):
        url = request.getfixturevalue("tmp_path") / f"{batch[0].run_id}.db" if engine == "sqlite" else None
        url = str(url) if url else request.getfixturevalue("postgres_url")
        with Ledger.open(url) as ledger:
            ledger.finish_runs(batch)
        for args in READS:
            code, out, err = cli("--db", url, *args)
            assert code == 0 or (code == 1 and args[0] == "budget"), (args, code, err)  # 1: over a budget
            assert "Traceback" not in err and "internal error" not in err, (args, err)
            if "json" in args:
                try:
                    json.loads(out, parse_constant=lambda token: pytest.fail(f"{token} in {args}"))
                except ValueError as exc:
                    pytest.fail(f"{args} printed no JSON ({exc}): {out[:200]!r} {err[:300]!r}")
        code, out, err = cli("--db", url, "runs", "show", batch[-1].run_id, "--format", "json")
        assert code == 0, err
        shown = json.loads(out, parse_float=Decimal)
        assert shown["cost_usd"] == batch[-1].cost_usd
        assert shown["tokens"] == batch[-1].tokens.to_dict()
        code, _, err = cli("--db", url, "runs", "show", batch[-1].run_id)
        assert code == 0 and "\x1b" not in _, err

    check()
