"""Duration sketches without a database: percentiles within ACCURACY of the exact ones, merging
is the sketch of the union, and the stored JSON form existing ledgers hold."""

from __future__ import annotations

import json
import math
import random

import pytest

from pflow_metrics.ledger.sketch import ACCURACY, GAMMA, SMALLEST_MS, Sketch

FRACTIONS = (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0)


def exact_quantile(values: list[float], fraction: float) -> float:
    """Nearest rank, as Sketch.quantile ranks."""
    ordered = sorted(values)
    return ordered[round(fraction * (len(ordered) - 1))]


def random_durations(rng: random.Random, count: int) -> list[float]:
    shape = rng.choice(["uniform", "lognormal", "wide"])
    if shape == "uniform":
        return [rng.uniform(5, 50_000) for _ in range(count)]
    if shape == "lognormal":
        return [rng.lognormvariate(6, 2) for _ in range(count)]
    return [10 ** rng.uniform(-2, 9) for _ in range(count)]  # 10 µs to 11 days


@pytest.mark.parametrize("seed", range(20))
def test_quantiles_are_within_accuracy_of_the_exact_ones(seed):
    rng = random.Random(seed)
    values = random_durations(rng, rng.randint(1, 3000))
    sketch = Sketch.of(values)
    assert sketch.count == len(values)
    for fraction in FRACTIONS:
        assert sketch.quantile(fraction) == pytest.approx(exact_quantile(values, fraction), rel=ACCURACY)


def test_an_empty_sketch_has_no_quantiles():
    assert Sketch().count == 0
    assert Sketch().quantile(0.5) is None
    assert Sketch.from_json(None) == Sketch() == Sketch.from_json({})


def test_durations_too_small_for_a_logarithm_count_as_the_smallest():
    sketch = Sketch.of([0, 0.0, SMALLEST_MS / 10, -5])
    assert sketch.count == 4 and len(sketch.counts) == 1
    assert sketch.quantile(0.5) == pytest.approx(SMALLEST_MS, rel=ACCURACY)


def test_one_value_comes_back_within_accuracy():
    for value in (SMALLEST_MS, 1, GAMMA, 999.5, 86_400_000.0):
        assert Sketch.of([value]).quantile(0.5) == pytest.approx(value, rel=ACCURACY)


@pytest.mark.parametrize("seed", range(10))
def test_merging_gives_the_sketch_of_the_union(seed):
    rng = random.Random(seed)
    parts = [random_durations(rng, rng.randint(0, 500)) for _ in range(rng.randint(2, 5))]
    merged = Sketch()
    for part in parts:
        merged.merge(Sketch.of(part))
    union = [value for part in parts for value in part]
    assert merged == Sketch.of(union)
    if union:
        for fraction in FRACTIONS:
            assert merged.quantile(fraction) == pytest.approx(exact_quantile(union, fraction), rel=ACCURACY)


def test_merging_leaves_the_other_sketch_alone():
    one, other = Sketch.of([1, 2, 3]), Sketch.of([3, 400])
    one.merge(other)
    assert other == Sketch.of([3, 400]) and one.count == 5


def test_the_stored_form_is_bucket_indexes_as_text():
    # What roll-up rows of existing ledgers hold: {"<ceil(log_gamma(ms))>": count}.
    sketch = Sketch.of([1.0, 1.0, 100.0])
    assert sketch.to_json() == {"0": 2, "231": 1}
    assert json.loads(json.dumps(sketch.to_json())) == sketch.to_json()
    assert Sketch.from_json({"0": 2, "231": 1}) == sketch
    assert Sketch.from_json({"-345": 1}).quantile(0.5) == pytest.approx(SMALLEST_MS, rel=ACCURACY)


def stored_before(values: list[float]) -> dict[str, int]:
    """How ledgers written before Sketch existed built a stored sketch (rollups.sketch_add)."""
    sketch: dict[str, int] = {}
    for value in values:
        bucket = str(math.ceil(math.log(max(value, 0.001)) / math.log((1 + 0.01) / (1 - 0.01))))
        sketch[bucket] = sketch.get(bucket, 0) + 1
    return sketch


@pytest.mark.parametrize("seed", range(5))
def test_the_stored_form_is_the_one_existing_ledgers_hold(seed):
    rng = random.Random(seed)
    values = random_durations(rng, 2000)
    assert list(Sketch.of(values).to_json().items()) == list(stored_before(values).items())
    assert Sketch.from_json(stored_before(values)) == Sketch.of(values)


def test_a_stored_sketch_reads_back_the_same():
    rng = random.Random(5)
    sketch = Sketch.of(random_durations(rng, 1000))
    stored = json.loads(json.dumps(sketch.to_json()))
    assert Sketch.from_json(stored) == sketch
    assert Sketch.from_json(stored).to_json() == sketch.to_json()
