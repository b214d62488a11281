"""Reports read roll-ups for whole days and months and raw rows for the rest: whatever the window,
the filters and the writes in between, they must give what the run records themselves say."""

from __future__ import annotations

import fnmatch
import random
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import MetaData

from pflow_metrics.ledger.engine import create_ledger_engine
from pflow_metrics.ledger.migrate import upgrade_to
from pflow_metrics.ledger.queries import COST_KEYS, Filters, cost_by, report
from pflow_metrics.ledger.rollups import ACCURACY, refresh
from pflow_metrics.ledger.store import Ledger
from pflow_metrics.money import ZERO
from tests.factories import make_run, rows_before_exact_money

BASE = datetime(2026, 9, 20, 5, 30, tzinfo=UTC)  # the runs span parts of September, all of October, November
MODELS = [("gpt-4o", "openai"), ("claude-sonnet-4", "anthropic"), ("house", None)]
TOKENS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens", "thinking_tokens")


def random_runs(rng: random.Random, count: int, days: int = 75):
    runs = []
    for _ in range(count):
        calls = []
        for _ in range(rng.randint(0, 4)):
            model, provider = rng.choice(MODELS)
            calls.append({"model": model, "provider": provider, "node_id": f"step-{rng.randint(0, 2)}",
                          "phase": rng.choice(["workflow", "workflow", "planner"]),
                          "cost_usd": None if model == "house" else round(rng.uniform(0.001, 0.5), 6),
                          "input_tokens": rng.randint(0, 900), "output_tokens": rng.randint(0, 300),
                          "cache_read_tokens": rng.randint(0, 50), "thinking_tokens": rng.randint(0, 20)})
        runs.append(make_run(rng.choice(["digest", "digest-eu", "triage", "it's ../odd"]),
                             started_at=BASE + timedelta(seconds=rng.uniform(0, days * 86400)),
                             status=rng.choice(["success", "success", "failed", "budget_exceeded"]),
                             calls=calls, nodes=rng.randint(0, 3), duration_ms=rng.uniform(5, 50_000)))
    return runs


def in_window(run, filters: Filters) -> bool:
    return ((filters.since is None or run.started_at >= filters.since)
            and (filters.until is None or run.started_at < filters.until)
            and (not filters.workflows or any(fnmatch.fnmatchcase(run.workflow, p) for p in filters.workflows))
            and (filters.status is None or run.status == filters.status)
            and all(run.tags.get(k) == v for k, v in filters.tags.items()))


def key_value(run, call, key):
    day = run.started_at.astimezone(UTC).date()
    year, week, _ = day.isocalendar()
    return {"model": call.model, "provider": call.provider, "workflow": run.workflow, "node": call.node_id,
            "phase": call.phase, "day": day.isoformat(), "week": f"{year}-W{week:02d}", "month": day.isoformat()[:7],
            }[key]


def expected_cost_by(runs, filters: Filters, keys: list[str]) -> dict[tuple, dict]:
    groups: dict[tuple, dict] = {}
    for run in runs:
        if not in_window(run, filters):
            continue
        for call in run.llm_calls:
            if filters.model and call.model != filters.model:
                continue
            group = groups.setdefault(tuple(key_value(run, call, key) for key in keys),
                                      {"calls": 0, "run_ids": set(), "cost_usd": ZERO, "unpriced_calls": 0,
                                       **dict.fromkeys(TOKENS, 0)})
            group["calls"] += 1
            group["run_ids"].add(run.run_id)
            group["cost_usd"] += call.cost_usd or ZERO
            group["unpriced_calls"] += call.cost_usd is None
            for name in TOKENS:
                group[name] += getattr(call, name)
    for group in groups.values():  # unknown is not zero
        if group["unpriced_calls"] == group["calls"]:
            group["cost_usd"] = None
    return {key: {**{k: v for k, v in group.items() if k != "run_ids"}, "runs": len(group["run_ids"])}
            for key, group in groups.items()}


def assert_cost_by_matches(ledger, runs, filters: Filters, keys: list[str]) -> None:
    result = cost_by(ledger, filters, keys)
    expected = expected_cost_by(runs, filters, keys)
    found = {tuple(row[key] for key in keys): row for row in result["rows"]}
    assert set(found) == set(expected), (filters, keys)
    for key, want in expected.items():
        got = found[key]
        assert {k: got[k] for k in want} == want, (filters, keys, key)
    calls = [(run, call) for run in runs if in_window(run, filters) for call in run.llm_calls
             if not filters.model or call.model == filters.model]
    assert result["total"]["calls"] == len(calls)
    assert result["total"]["runs"] == len({run.run_id for run, _ in calls})
    priced = [call.cost_usd for _, call in calls if call.cost_usd is not None]
    assert result["total"]["cost_usd"] == (sum(priced, ZERO) if priced or not calls else None)


def exact_percentile(values, fraction):
    ordered = sorted(values)
    return ordered[round(fraction * (len(ordered) - 1))]


def assert_report_matches(ledger, runs, filters: Filters) -> None:
    data = report(ledger, filters)
    chosen = [run for run in runs if in_window(run, filters)
              and (not filters.model or any(call.model == filters.model for call in run.llm_calls))]
    assert data.runs == len(chosen)
    statuses: dict[str, int] = {}
    for run in chosen:
        statuses[run.status] = statuses.get(run.status, 0) + 1
    assert data.statuses == statuses
    calls = [call for run in chosen for call in run.llm_calls if not filters.model or call.model == filters.model]
    assert data.calls == len(calls)
    priced = [call.cost_usd for call in calls if call.cost_usd is not None]
    assert data.cost_usd == (sum(priced, ZERO) if priced or not calls else None)
    assert data.tokens == {name: sum(getattr(call, name) for call in calls) for name in TOKENS}
    assert data.unpriced_models == sorted({call.model for call in calls if call.cost_usd is None})
    per_day: dict[str, list] = {}
    for run in chosen:
        day = run.started_at.astimezone(UTC).date().isoformat()
        per_day.setdefault(day, []).extend(c.cost_usd for c in run.llm_calls
                                           if not filters.model or c.model == filters.model)
    assert [row.day for row in data.cost_per_day] == sorted(per_day)
    assert [row.cost_usd for row in data.cost_per_day] == [
        None if costs and all(c is None for c in costs) else sum((c for c in costs if c is not None), ZERO)
        for costs in (per_day[d] for d in sorted(per_day))]
    if chosen:
        exact = exact_percentile([run.duration_ms for run in chosen], 0.95)
        assert data.duration_p95_ms == pytest.approx(exact, rel=ACCURACY)
    node_times: dict[tuple, list] = {}
    for run in chosen:
        for node in run.nodes:
            node_times.setdefault((run.workflow, node.node_id), []).append(node.duration_ms)
    for row in data.slowest_nodes:
        times = node_times[(row.workflow, row.node_id)]
        assert row.executions == len(times)
        assert row.p95_ms == pytest.approx(exact_percentile(times, 0.95), rel=ACCURACY)


def windows(rng: random.Random):
    midnight = datetime(2026, 10, 1, tzinfo=UTC)
    yield Filters()
    yield Filters(since=midnight)  # a run exactly at a month's first midnight is inside
    yield Filters(since=midnight, until=datetime(2026, 11, 1, tzinfo=UTC))  # one whole month
    yield Filters(until=datetime(2026, 10, 17, 13, 5, tzinfo=UTC))
    yield Filters(since=BASE + timedelta(days=3, hours=7), until=BASE + timedelta(days=3, hours=9))  # within a day
    yield Filters(since=datetime(2026, 10, 3, 22, 0, tzinfo=timezone(timedelta(hours=5))))  # local midnight is not UTC's
    yield Filters(since=midnight, workflows=["digest*"], status="success")
    yield Filters(model="gpt-4o", since=BASE + timedelta(days=10, minutes=17))
    for _ in range(3):
        start = BASE + timedelta(seconds=rng.uniform(-86400, 60 * 86400))
        yield Filters(since=start, until=start + timedelta(seconds=rng.uniform(3600, 40 * 86400)))


KEY_SETS = [["model"], ["workflow"], ["node"], ["phase"], ["provider"], ["day"], ["week"], ["month"],
            ["workflow", "model"], ["model", "node"], ["month", "provider", "phase"]]


def check_everything(ledger, runs, rng) -> None:
    for filters in windows(rng):
        for keys in KEY_SETS:
            assert_cost_by_matches(ledger, runs, filters, keys)
        assert_report_matches(ledger, runs, filters)


def test_reports_from_rollups_equal_the_run_records_through_later_writes(ledger_url):
    rng = random.Random(20261125)
    runs = random_runs(rng, 120)
    with Ledger.open(ledger_url) as ledger:
        ledger.finish_runs(runs)
        check_everything(ledger, runs, rng)  # the first query builds the roll-ups

        more = random_runs(rng, 30)  # into days and months that are rolled up already
        for record in more[:10]:
            ledger.begin_run(record)
            ledger.finish_run(record)
        ledger.finish_runs(more[10:])
        moved = runs[0]
        moved.started_at = moved.started_at + timedelta(days=9)  # ingested again with another start
        ledger.finish_run(moved)
        runs += more
        check_everything(ledger, runs, rng)


def test_prune_and_crash_marking_reach_the_rollups(ledger_url):
    rng = random.Random(3)
    runs = random_runs(rng, 40, days=30)
    running = make_run("digest", started_at=BASE + timedelta(days=2), status="running")
    running.pid = 2 ** 22 + 1  # no such process: the run will be marked crashed
    with Ledger.open(ledger_url) as ledger:
        ledger.finish_runs(runs)
        ledger.begin_run(running)
        assert report(ledger, Filters()).statuses.get("running") == 1

        ledger.mark_crashed_runs()
        assert report(ledger, Filters()).statuses["crashed"] == 1
        ledger.delete_runs_started_before(BASE + timedelta(days=15))
        kept = [run for run in runs if run.started_at >= BASE + timedelta(days=15)]
        assert_cost_by_matches(ledger, kept, Filters(), ["model"])
        assert report(ledger, Filters()).runs == len(kept)


def test_a_read_only_ledger_answers_from_raw_rows(tmp_path):
    path = tmp_path / "ledger.db"
    runs = random_runs(random.Random(5), 30)
    with Ledger.open(str(path)) as ledger:
        ledger.finish_runs(runs)  # its days are dirty: nothing has read them yet
    with Ledger.open(f"sqlite:///file:{path}?mode=ro&uri=true", upgrade=False) as read_only:
        assert_cost_by_matches(read_only, runs, Filters(), ["model", "day"])
        assert_report_matches(read_only, runs, Filters(since=datetime(2026, 10, 1, tzinfo=UTC)))
        assert refresh(read_only)  # could not rebuild: still dirty


def test_concurrent_refreshes_count_each_run_once(ledger_url):
    runs = random_runs(random.Random(11), 60)
    with Ledger.open(ledger_url) as ledger:
        ledger.finish_runs(runs)
        errors = []

        def rebuild():
            try:
                refresh(ledger)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=rebuild) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert refresh(ledger) == set()
        assert_cost_by_matches(ledger, runs, Filters(), ["model"])
        assert_report_matches(ledger, runs, Filters())


def test_runs_in_a_ledger_from_before_rollups_are_reported_after_the_upgrade(ledger_url):
    engine = create_ledger_engine(ledger_url)
    upgrade_to(engine, "0001")
    engine.dispose()
    runs = random_runs(random.Random(8), 20)
    engine = create_ledger_engine(ledger_url)
    tables = MetaData()
    tables.reflect(engine)
    with engine.begin() as conn:
        for name in ("runs", "llm_calls", "node_executions"):
            conn.execute(tables.tables[name].insert(),
                         [row for run in runs for row in rows_before_exact_money(run)[name]])
    engine.dispose()

    with Ledger.open(ledger_url) as ledger:
        assert_cost_by_matches(ledger, runs, Filters(), ["model"])
        assert_report_matches(ledger, runs, Filters())


def test_every_cost_key_is_checked():
    assert {key for keys in KEY_SETS for key in keys} == set(COST_KEYS)


def test_the_budget_spend_from_roll_ups_is_each_runs_spend_added_up(ledger_url):
    from pflow_metrics.ledger.queries import spend, window_spend

    runs = random_runs(random.Random(23), 80)
    with Ledger.open(ledger_url) as ledger:
        ledger.finish_runs(runs)
        windows = [Filters(), Filters(since=BASE + timedelta(days=3, hours=7)),
                   Filters(since=BASE + timedelta(days=10, minutes=13), until=BASE + timedelta(days=50, hours=2)),
                   Filters(since=BASE + timedelta(days=20), workflows=["digest*"], status="success")]
        for filters in windows:
            exact = spend(ledger, filters)
            expected = [run for run in runs if in_window(run, filters)]
            assert window_spend(ledger, filters) == {
                "cost_usd": exact["cost_usd"], "unpriced_calls": exact["unpriced_calls"], "runs": len(expected)}
            assert exact["cost_usd"] == sum((run.priced_cost_usd for run in expected), ZERO)
