"""The gate's tests of evidence against the literature and against brute-force counts: the
Mann-Whitney U test (exact and normal approximation) and Fisher's exact test."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pflow_metrics.ledger import gate
from pflow_metrics.ledger.gate import fisher_p, mann_whitney_p, u_distribution


def brute_force_mann_whitney(x: list, y: list) -> float:
    """The one-sided p-value by trying every way to split the pooled values into groups of
    len(x) and len(y): the share of splits whose U is at least the observed one."""
    def u(first, second):
        return sum((a > b) + (a == b) / 2 for a in first for b in second)

    pooled = [*x, *y]
    observed = u(x, y)
    splits = list(itertools.combinations(range(len(pooled)), len(x)))
    at_least = 0
    for chosen in splits:
        first = [pooled[i] for i in chosen]
        second = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        at_least += u(first, second) >= observed - 1e-9
    return at_least / len(splits)


# One-tailed critical values of U at the 5% level (Mann & Whitney 1947; the tables in Siegel &
# Castellan, Nonparametric Statistics, table J): the largest u with P(U <= u) <= 0.05.
CRITICAL_U_5_PERCENT = [(5, 5, 4), (5, 10, 11), (10, 10, 27), (8, 12, 26), (20, 20, 138)]


@pytest.mark.parametrize(("m", "n", "critical"), CRITICAL_U_5_PERCENT)
def test_the_exact_u_distribution_gives_the_published_critical_values(m, n, critical):
    counts = u_distribution(m, n)
    total = math.comb(m + n, m)
    assert sum(counts) == total
    assert sum(counts[:critical + 1]) / total <= 0.05 < sum(counts[:critical + 2]) / total


def test_the_p_values_match_a_published_example_exactly_and_approximately(monkeypatch):
    # scipy.stats.mannwhitneyu's documented example (two-sided 0.1111 exact, 0.11134688653314041
    # asymptotic with continuity correction): one-sided, half of each.
    males, females = [19, 22, 16, 29, 24], [20, 11, 17, 12]
    assert mann_whitney_p(males, females) == pytest.approx(7 / 126)
    monkeypatch.setattr(gate, "EXACT_WORK", 0)  # force the normal approximation
    monkeypatch.setattr(gate, "EXACT_TIED", 0)
    assert mann_whitney_p(males, females) == pytest.approx(0.11134688653314041 / 2, rel=1e-12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=6, unique=True).flatmap(
    lambda pooled: st.tuples(st.just(pooled), st.integers(1, len(pooled)))))
def test_the_exact_p_value_equals_a_brute_force_count(case):
    pooled, cut = case
    x, y = pooled[:cut], pooled[cut:] or [10_001]
    assert mann_whitney_p(x, y) == pytest.approx(brute_force_mann_whitney(x, y), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=7), st.lists(st.integers(0, 3), min_size=1, max_size=7))
def test_with_ties_the_small_sample_p_value_is_the_exact_permutation_one(x, y):
    # Tied values (costs often are) are ranked by their mean rank; small samples get the exact
    # distribution of the rank sum given those ties.
    assert mann_whitney_p(x, y) == pytest.approx(brute_force_mann_whitney(x, y), abs=1e-12)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=20, max_size=20), st.lists(st.integers(0, 6), min_size=20, max_size=20))
def test_with_ties_the_normal_approximation_stays_close_to_a_permutation_estimate(x, y):
    # Past EXACT_TIED runs, the normal approximation with tie correction: compared with the
    # permutation p-value estimated from 4,000 random splits (standard error under 0.008). Not
    # for pools of two or three distinct values, where U takes too few values for any curve.
    import random

    assume(len(set(x + y)) >= 4)
    rng = random.Random(0)
    pooled = [*x, *y]

    def u(first, second):
        return sum((a > b) + (a == b) / 2 for a in first for b in second)

    observed, hits = u(x, y), 0
    for _ in range(4_000):
        rng.shuffle(pooled)
        hits += u(pooled[:20], pooled[20:]) >= observed
    assert mann_whitney_p(x, y) == pytest.approx(hits / 4_000, abs=0.04)


def test_equal_samples_give_no_evidence():
    assert mann_whitney_p([1, 1, 1], [1, 1, 1]) == 1.0
    assert mann_whitney_p([5.0] * 20, [5.0] * 20) == 1.0


def test_a_clear_shift_is_significant_and_the_other_direction_is_not():
    low, high = list(range(20)), list(range(100, 120))
    assert mann_whitney_p(high, low) < 1e-9
    assert mann_whitney_p(low, high) == pytest.approx(1.0)


def brute_force_fisher(a: int, n: int, b: int, m: int) -> float:
    """P(first group has >= a of the failures) over every way to deal a + b failures into n + m runs."""
    runs = [True] * (a + b) + [False] * (n + m - a - b)
    splits = list(itertools.combinations(range(n + m), n))
    return sum(sum(runs[i] for i in chosen) >= a for chosen in splits) / len(splits)


def test_fisher_matches_the_lady_tasting_tea():
    # Fisher (1935): 3 of 4 cups right, one-sided p = 17/70.
    assert fisher_p(3, 4, 1, 4) == pytest.approx(17 / 70, rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 7), st.integers(1, 7), st.data())
def test_fisher_equals_a_brute_force_count(n, m, data):
    a = data.draw(st.integers(0, n))
    b = data.draw(st.integers(0, m))
    assert fisher_p(a, n, b, m) == pytest.approx(brute_force_fisher(a, n, b, m), rel=1e-9, abs=1e-12)


def test_fisher_is_quick_and_finite_on_large_counts():
    p_value = fisher_p(900, 10_000, 500, 10_000)
    assert 0 <= p_value < 1e-20
    assert fisher_p(0, 100_000, 0, 100_000) == pytest.approx(1.0)


RUN = st.builds(
    gate.RunValues,
    run_id=st.uuids().map(str),
    status=st.sampled_from(["success", "success", "failed", "crashed", "budget_exceeded"]),
    duration_ms=st.none() | st.floats(0, 10**11) | st.sampled_from([0.0, 10.0**11]),
    llm_calls=st.integers(0, 2**63 - 1) | st.sampled_from([0, 1]),
    tokens=st.integers(0, 2**63 - 1) | st.sampled_from([0, 1, 2**63 - 1]),
    cost_usd=st.none() | st.decimals(0, 9_223_372_036, places=9) | st.sampled_from([gate.Decimal(0)]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(RUN, max_size=12), st.lists(RUN, max_size=12), st.integers(1, 6))
def test_any_values_in_range_give_a_verdict_and_its_json(baseline, candidate, min_runs):
    from pflow_metrics.cli.render import to_json

    verdict = gate.compare({"w": candidate} if candidate else {}, {"w": baseline} if baseline else {},
                           gate.Settings(min_runs=min_runs), {}, {})

    assert verdict.status in ("pass", "regression")
    assert all(check.status in gate.STATUSES for w in verdict.workflows for check in w.checks)
    assert to_json(verdict.to_dict())
