"""plan_window, without a database: which parts of a window come from month roll-ups, day
roll-ups and raw rows. A plan is a few ranges, however long the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pflow_metrics.ledger.rollups import WindowPlan, plan_window
from pflow_metrics.record import EARLIEST, LATEST


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_runs_spanning_the_whole_supported_range_plan_as_a_few_ranges():
    plan = plan_window(EARLIEST, LATEST - timedelta(seconds=1), None, None, set())
    assert plan == WindowPlan(months=[("1970-01", "9999-01")])
    by_day = plan_window(EARLIEST, LATEST - timedelta(seconds=1), None, None, set(), by_day=True)
    assert by_day == WindowPlan(days=[("1970-01-01", "9999-01-01")])


def test_partial_days_at_the_edges_are_raw_and_partial_months_are_days():
    plan = plan_window(at("2026-01-01"), at("2026-12-31T10:00"), at("2026-03-10T12:00"), at("2026-06-05T08:00"), set())
    assert plan.raw == [(at("2026-03-10T12:00"), at("2026-03-11")), (at("2026-06-05"), at("2026-06-05T08:00"))]
    assert plan.months == [("2026-04", "2026-06")]
    assert plan.days == [("2026-03-11", "2026-04-01"), ("2026-06-01", "2026-06-05")]


def test_a_dirty_day_is_raw_and_keeps_its_month_out_of_the_month_rows():
    plan = plan_window(at("2026-01-01"), at("2026-04-30"), None, None, {"2026-02-14"})
    assert plan.raw == [(at("2026-02-14"), at("2026-02-15"))]
    assert plan.months == [("2026-01", "2026-02"), ("2026-03", "2026-05")]
    assert plan.days == [("2026-02-01", "2026-02-14"), ("2026-02-15", "2026-03-01")]


def test_a_month_with_a_dirty_day_outside_the_window_is_read_by_day():
    plan = plan_window(at("2026-01-01"), at("2026-04-30"), at("2026-02-01"), None, {"2026-01-20"})
    assert plan.months == [("2026-02", "2026-05")] and plan.raw == []


def test_a_window_within_one_day_is_raw():
    plan = plan_window(at("2026-01-01"), at("2026-04-30"), at("2026-02-01T01:00"), at("2026-02-01T05:00"), set())
    assert plan == WindowPlan(raw=[(at("2026-02-01T01:00"), at("2026-02-01T05:00"))])


def test_too_many_dirty_days_read_the_window_raw():
    dirty = {f"2026-01-{day:02d}" for day in range(1, 31)} | {f"2026-03-{day:02d}" for day in range(1, 31)} | \
            {f"2026-05-{day:02d}" for day in range(1, 10)}
    plan = plan_window(at("2026-01-01"), at("2026-06-30"), None, None, dirty)
    assert plan == WindowPlan(raw=[(at("2026-01-01"), at("2026-07-01"))])


def test_every_instant_is_read_from_exactly_one_place():
    """Random windows: the plan's months, days and raw ranges cover every instant of the window
    that can hold a run exactly once, and no instant outside it that holds runs."""
    import random

    rng = random.Random(5)
    first, last = at("2025-11-03T07:00"), at("2026-08-20T22:00")
    runs_from, runs_to = at("2025-11-03"), at("2026-08-21")  # whole days of the runs
    for _ in range(300):
        since = first + timedelta(hours=rng.randrange(-2000, 7000)) if rng.random() < 0.8 else None
        until = (since or first) + timedelta(hours=rng.randrange(1, 6000)) if rng.random() < 0.6 else None
        dirty = {(first + timedelta(days=rng.randrange(0, 300))).date().isoformat() for _ in range(rng.randrange(0, 6))}
        plan = plan_window(first, last, since, until, dirty, by_day=rng.random() < 0.3)
        rolled = [*((at(f"{a}-01"), at(f"{b}-01")) for a, b in plan.months), *((at(a), at(b)) for a, b in plan.days)]
        spans = [*plan.raw, *rolled]
        for probe in (runs_from - timedelta(days=2) + timedelta(hours=h) for h in range(0, 7400, 5)):
            in_window = (since is None or probe >= since) and (until is None or probe < until)
            can_hold_runs = runs_from <= probe < runs_to
            covering = sum(start <= probe < end for start, end in spans)
            context = (since, until, sorted(dirty), probe, plan)
            assert covering <= 1, context
            if in_window and can_hold_runs:
                assert covering == 1, context
            if can_hold_runs and not in_window:
                assert covering == 0, context
        for day in dirty:  # a dirty day never comes from roll-up rows
            noon = at(day) + timedelta(hours=12)
            assert not any(start <= noon < end for start, end in rolled), (since, until, day, plan)
