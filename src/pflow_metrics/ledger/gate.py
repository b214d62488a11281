"""The regression gate: did a change make workflows cost more, use more, run slower or fail more?

Candidate runs (those with a tag, say `git_sha=abc`) are compared, workflow by workflow, with
baseline runs (other runs of the last 14 days, or a saved snapshot). A check is a regression
only when two things hold: its limit is exceeded (cost 10% over the baseline, say) and the
difference is unlikely to be chance, by a one-sided test at the chosen confidence:

- cost, tokens and LLM calls per run compare means (what a workflow spends adds up, so a few
  runs that make an extra call count), and p50/p95 durations compare those percentiles. The
  evidence for all five is a one-sided Mann-Whitney U test on the per-run values: exact for
  small samples (without ties, the counts of the Gaussian binomial coefficient; with ties, the
  permutation distribution of the rank sum given them), else the normal approximation with tie
  and continuity corrections (Hollander & Wolfe, Nonparametric Statistical Methods, ch. 4).
- failure rate (failed, crashed and budget_exceeded runs over finished runs) must stay at or
  below its limit, an absolute rate; evidence is a one-sided Fisher exact test on the counts.

Per-run values come from successful runs (a run that failed early is neither cheap nor fast);
the failure rate counts every finished run. A run with an unpriced call has no known cost and
is left out of the cost check (unknown is not zero). Fewer than `min_runs` values on either
side make a check `insufficient`, never a guess. Improvements mirror regressions: a change as
large the other way, with the same evidence.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING, Any

from pflow_metrics.errors import UsageError
from pflow_metrics.money import usd
from pflow_metrics.record import MAX_COUNT, MAX_DURATION_MS, MAX_RUN_ID, RUN_STATUSES

if TYPE_CHECKING:
    from pflow_metrics.ledger.filters import Filters

FAILED = ("failed", "crashed", "budget_exceeded")
STATUSES = ("ok", "regression", "improved", "insufficient")
SNAPSHOT_FORMAT = "pflow-metrics-gate-baseline/1"
MAX_SNAPSHOT_BYTES = 64 * 2**20
EXACT_WORK = 50_000  # the exact U distribution costs about min(m, n) * m * n steps (20 ms at 50,000)
EXACT_TIED = 30  # runs in both sets up to which tied values get an exact (permutation) p-value
_PLACES = Decimal("0.0001")  # changes, rates and per-run means are shown to four places


@dataclass(frozen=True)
class RunValues:
    """The figures of one run that the gate compares. `cost_usd` is None when any of its calls
    was unpriced: its cost is unknown."""

    run_id: str
    status: str
    duration_ms: float | None
    llm_calls: int
    tokens: int
    cost_usd: Decimal | None


@dataclass(frozen=True)
class Settings:
    """Limits are relative increases (0.1 is 10%), except failure_rate: the highest rate allowed."""

    limits: dict[str, Decimal] = field(default_factory=lambda: {
        "cost_per_run": Decimal("0.1"), "tokens_per_run": Decimal("0.1"), "llm_calls_per_run": Decimal("0.1"),
        "duration_p50_ms": Decimal("0.25"), "duration_p95_ms": Decimal("0.25"), "failure_rate": Decimal("0.1")})
    confidence: Decimal = Decimal("0.95")
    min_runs: int = 5
    require_data: bool = False


@dataclass(frozen=True)
class Check:
    metric: str
    baseline: Decimal | None  # the mean, percentile or rate; None when nothing to measure
    candidate: Decimal | None
    change: Decimal | None  # relative (0.2 is +20%); for failure_rate the difference in rate
    limit: Decimal
    p_value: float | None  # one-sided, in the direction of the change; None when insufficient
    status: str


@dataclass(frozen=True)
class WorkflowGate:
    """A workflow's checks; none for a new workflow (no baseline runs) or a vanished one (no
    candidate runs): those are listed, never failed."""

    workflow: str
    baseline_runs: int
    candidate_runs: int
    checks: list[Check]


@dataclass(frozen=True)
class Gate:
    status: str  # pass, regression, or insufficient (only with require_data)
    baseline: dict[str, Any]  # how each set was selected, and its runs
    candidate: dict[str, Any]
    workflows: list[WorkflowGate]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (`gate --format json`)."""
        return asdict(self)

    @property
    def failed(self) -> bool:
        return self.status != "pass"

    def compared(self) -> list[WorkflowGate]:
        return [w for w in self.workflows if w.baseline_runs and w.candidate_runs]

    def new(self) -> list[WorkflowGate]:
        return [w for w in self.workflows if not w.baseline_runs]

    def vanished(self) -> list[WorkflowGate]:
        return [w for w in self.workflows if not w.candidate_runs]


# -- selecting runs -----------------------------------------------------------------------------


def _by_workflow(rows: Iterable[dict[str, Any]]) -> dict[str, list[RunValues]]:
    """queries.run_values rows as RunValues per workflow; unfinished runs are left out."""
    runs: dict[str, list[RunValues]] = {}
    for row in rows:
        if row["status"] == "running":
            continue
        cost = None if row["unpriced_calls"] else row["cost_usd"]
        runs.setdefault(row["workflow"], []).append(RunValues(row["run_id"], row["status"], row["duration_ms"],
                                                              row["llm_calls"], row["tokens"], cost))
    return runs


def select_runs(ledger, filters: Filters) -> dict[str, list[RunValues]]:
    """The finished runs matching `filters` by workflow (none without a ledger)."""
    from pflow_metrics.ledger.queries import run_values

    return _by_workflow(run_values(ledger, filters)) if ledger is not None else {}


def keep_workflows(runs: dict[str, list[RunValues]], patterns: list[str]) -> dict[str, list[RunValues]]:
    """The workflows that match any of the `--workflow` globs (all without any)."""
    return {name: values for name, values in runs.items()
            if not patterns or any(glob_match(pattern, name) for pattern in patterns)}


def without(baseline: dict[str, list[RunValues]], candidate: dict[str, list[RunValues]]
            ) -> dict[str, list[RunValues]]:
    """The baseline without the candidate runs (by run id), and without workflows left empty."""
    chosen = {run.run_id for runs in candidate.values() for run in runs}
    return {name: kept for name, runs in baseline.items()
            if (kept := [run for run in runs if run.run_id not in chosen])}


def glob_match(pattern: str, name: str) -> bool:
    """`--workflow` globs as the ledger filters read them: `*` and `?`, case exact. Matched by
    walking both strings (back to the last `*` on a mismatch), not by a regular expression,
    which a pattern like `*a*a*a*a*b` would send into exponential backtracking."""
    p = n = 0
    star, resume = -1, 0
    while n < len(name):
        if p < len(pattern) and pattern[p] == "*":
            star, resume = p, n
            p += 1
        elif p < len(pattern) and pattern[p] in ("?", name[n]):
            p, n = p + 1, n + 1
        elif star >= 0:
            p, resume = star + 1, resume + 1
            n = resume
        else:
            return False
    return pattern[p:].strip("*") == ""


# -- the verdict ----------------------------------------------------------------------------------


def compare(candidate: dict[str, list[RunValues]], baseline: dict[str, list[RunValues]], settings: Settings,
            candidate_selection: dict[str, Any], baseline_selection: dict[str, Any]) -> Gate:
    """The gate's verdict for these runs; candidate runs are never part of the baseline."""
    baseline = without(baseline, candidate)
    workflows = []
    for name in sorted(set(candidate) | set(baseline)):
        ours, theirs = candidate.get(name, []), baseline.get(name, [])
        checks = _checks(theirs, ours, settings) if ours and theirs else []
        workflows.append(WorkflowGate(name, len(theirs), len(ours), checks))
    statuses = {check.status for w in workflows for check in w.checks}
    if "regression" in statuses:
        status = "regression"
    elif settings.require_data and ("insufficient" in statuses or not statuses):
        status = "insufficient"
    else:
        status = "pass"
    return Gate(status, {**baseline_selection, "runs": _count(baseline)},
                {**candidate_selection, "runs": _count(candidate)}, workflows)


def _count(runs: dict[str, list[RunValues]]) -> int:
    return sum(len(values) for values in runs.values())


def _checks(baseline: list[RunValues], candidate: list[RunValues], settings: Settings) -> list[Check]:
    def values(runs: list[RunValues], name: str) -> list:
        return [getattr(run, name) for run in runs if run.status == "success" and getattr(run, name) is not None]

    shifts = (("cost_per_run", "cost_usd", _mean), ("tokens_per_run", "tokens", _mean),
              ("llm_calls_per_run", "llm_calls", _mean), ("duration_p50_ms", "duration_ms", _percentile(0.5)),
              ("duration_p95_ms", "duration_ms", _percentile(0.95)))
    p_values: dict[str, dict[bool, float]] = {name: {} for _, name, _ in shifts}  # p50 and p95 share theirs
    with localcontext() as context:
        context.prec = 60  # room for any ratio of in-range values (2**63 tokens over 0.0001) at four places
        checks = [_shift_check(metric, values(baseline, name), values(candidate, name), measure, settings,
                               p_values[name])
                  for metric, name, measure in shifts]
        return [*checks, _failure_check(baseline, candidate, settings)]


def _mean(values: list) -> Decimal:
    mean = sum(map(_decimal, values), Decimal(0)) / len(values)
    return usd(mean) if isinstance(values[0], Decimal) else mean.quantize(_PLACES)


def _percentile(q: float):
    def measure(values: list) -> Decimal:
        """The q-th percentile, interpolated between the closest ranks (as numpy's default)."""
        ordered = sorted(values)
        position = (len(ordered) - 1) * q
        low = math.floor(position)
        high = min(low + 1, len(ordered) - 1)
        value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
        return _decimal(value).quantize(Decimal("0.01"))
    return measure


def _decimal(value: Any) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _shift_check(metric: str, baseline: list, candidate: list, measure, settings: Settings,
                 p_values: dict[bool, float]) -> Check:
    """A comparison of means or percentiles; `p_values` keeps the test's answer for each
    direction (up: True), for the next check on the same values."""
    limit = settings.limits[metric]
    before = measure(baseline) if baseline else None
    after = measure(candidate) if candidate else None
    change = None
    if before is not None and after is not None:
        change = ((after - before) / before).quantize(_PLACES) if before else (Decimal(0) if not after else None)
    if min(len(baseline), len(candidate)) < settings.min_runs:
        return Check(metric, before, after, change, limit, None, "insufficient")
    worse = after > before
    upward = worse or after == before
    if upward not in p_values:
        p_values[upward] = mann_whitney_p(candidate, baseline) if upward else mann_whitney_p(baseline, candidate)
    p_value = p_values[upward]
    significant = p_value < float(1 - settings.confidence)
    if worse and after > before * (1 + limit) and significant:
        status = "regression"
    elif after < before and after * (1 + limit) < before and significant:
        status = "improved"
    else:
        status = "ok"
    return Check(metric, before, after, change, limit, _rounded(p_value), status)


def _failure_check(baseline: list[RunValues], candidate: list[RunValues], settings: Settings) -> Check:
    limit = settings.limits["failure_rate"]
    failed_before = sum(run.status in FAILED for run in baseline)
    failed_after = sum(run.status in FAILED for run in candidate)
    before = (Decimal(failed_before) / len(baseline)).quantize(_PLACES)
    after = (Decimal(failed_after) / len(candidate)).quantize(_PLACES)
    change = after - before
    if min(len(baseline), len(candidate)) < settings.min_runs:
        return Check("failure_rate", before, after, change, limit, None, "insufficient")
    # Exact comparison of the counts, not the rounded rates: 1 of 3 is more than 0.3333.
    worse = failed_after * len(baseline) > failed_before * len(candidate)
    better = failed_after * len(baseline) < failed_before * len(candidate)
    if better:
        p_value = fisher_p(failed_before, len(baseline), failed_after, len(candidate))
    else:
        p_value = fisher_p(failed_after, len(candidate), failed_before, len(baseline))
    significant = p_value < float(1 - settings.confidence)
    if worse and failed_after > limit * len(candidate) and significant:
        status = "regression"
    elif better and significant:
        status = "improved"
    else:
        status = "ok"
    return Check("failure_rate", before, after, change, limit, _rounded(p_value), status)


def _rounded(p_value: float) -> float:
    return float(f"{p_value:.4g}")


# -- the statistics -----------------------------------------------------------------------------


def mann_whitney_p(x: list, y: list) -> float:
    """One-sided Mann-Whitney U test: the probability, if x and y came from one distribution,
    of x's values ranking at least as high above y's as they do (small: x tends to be larger).
    U counts the pairs where x's value is larger (ties count a half). Exact for small samples
    (with ties, conditional on them, as a permutation test); else the normal approximation with
    tie and continuity corrections, which is close once there are a few dozen runs."""
    m, n = len(x), len(y)
    ranks = _midranks([*x, *y])
    u = sum(ranks[:m]) - m * (m + 1) / 2
    ties = _tie_sizes([*x, *y])
    if not ties and min(m, n) * m * n <= EXACT_WORK:
        counts = u_distribution(m, n)
        return sum(counts[math.ceil(u):]) / math.comb(m + n, m)
    if m + n <= EXACT_TIED:
        return _tied_rank_sum_tail(m, [round(2 * rank) for rank in ranks], round(2 * sum(ranks[:m])))
    total = m + n
    variance = m * n / 12 * ((total + 1) - sum(t**3 - t for t in ties) / (total * (total - 1)))
    if variance <= 0:  # every value equal: no evidence either way
        return 1.0
    z = (u - m * n / 2 - 0.5) / math.sqrt(variance)  # 0.5: continuity correction
    return min(1.0, 0.5 * math.erfc(z / math.sqrt(2)))


def _tied_rank_sum_tail(m: int, doubled_ranks: list[int], observed: int) -> float:
    """The share of the C(N, m) ways to pick m of the N runs whose doubled midranks add up to at
    least `observed`: counts by (runs picked, rank sum), one group of equal ranks at a time."""
    groups: dict[int, int] = {}
    for rank in doubled_ranks:
        groups[rank] = groups.get(rank, 0) + 1
    ways: list[dict[int, int]] = [{0: 1}] + [{} for _ in range(m)]
    for rank, size in groups.items():
        grown: list[dict[int, int]] = [{} for _ in range(m + 1)]
        for picked, sums in enumerate(ways):
            for total, count in sums.items():
                for more in range(min(size, m - picked) + 1):
                    key = total + more * rank
                    grown[picked + more][key] = grown[picked + more].get(key, 0) + count * math.comb(size, more)
        ways = grown
    return sum(count for total, count in ways[m].items() if total >= observed) / math.comb(len(doubled_ranks), m)


def u_distribution(m: int, n: int) -> list[int]:
    """How many of the C(m+n, m) orderings of m x's and n y's without ties give U = 0 .. m*n:
    the coefficients of the Gaussian binomial [m+n choose m](q) = prod (1 - q^(n+i)) / (1 - q^i)
    for i in 1..m, built one factor at a time (truncated at degree m*n, which is exact)."""
    m, n = sorted((m, n))
    top = m * n
    counts = [1] + [0] * top
    for i in range(1, m + 1):
        for u in range(top, n + i - 1, -1):  # times (1 - q^(n+i))
            counts[u] -= counts[u - n - i]
        for u in range(i, top + 1):  # divided by (1 - q^i)
            counts[u] += counts[u - i]
    return counts


def _midranks(values: list) -> list[float]:
    """Each value's rank among all (1-based), tied values sharing the mean of their ranks."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for index in order[start:end + 1]:
            ranks[index] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _tie_sizes(values: list) -> list[int]:
    counts: dict = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return [count for count in counts.values() if count > 1]


def fisher_p(a: int, n: int, b: int, m: int) -> float:
    """One-sided Fisher exact test: the probability, if both groups shared one failure rate, of
    the first group (a failures of n runs) having at least a of the a + b failures when the
    second had b of m. Hypergeometric terms through lgamma, so ledgers of any size are quick."""
    failures, total = a + b, n + m

    def log_comb(top: int, k: int) -> float:
        return math.lgamma(top + 1) - math.lgamma(k + 1) - math.lgamma(top - k + 1)

    whole = log_comb(total, n)
    tail = sum(math.exp(log_comb(failures, k) + log_comb(total - failures, n - k) - whole)
               for k in range(a, min(failures, n) + 1))
    return min(1.0, tail)


# -- baseline snapshots -----------------------------------------------------------------------


def snapshot(baseline: dict[str, list[RunValues]], selection: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A baseline as a JSON-ready document (`gate --save-baseline`), read back by read_snapshot."""
    return {"format": SNAPSHOT_FORMAT, "created_at": now, "selection": selection,
            "workflows": {name: [asdict(run) for run in runs] for name, runs in sorted(baseline.items())}}


_RUN_KEYS = set(RunValues.__dataclass_fields__)


def read_snapshot(data: bytes, source: str) -> tuple[dict[str, list[RunValues]], dict[str, Any]]:
    """(runs by workflow, the selection it was saved with) from a snapshot file's bytes. Anything
    else is a UsageError naming `source` and the place: a file that is not one, a newer format,
    a wrong type or a value out of range at any depth."""
    def fail(message: str) -> UsageError:
        return UsageError(f"{source}: {message}")

    if len(data) > MAX_SNAPSHOT_BYTES:
        raise fail(f"{len(data):,} bytes; a baseline file holds at most {MAX_SNAPSHOT_BYTES:,}")
    try:
        document = json.loads(data.decode("utf-8"), parse_float=Decimal, parse_constant=_no_constant,
                              object_pairs_hook=_unique_keys)
    except UnicodeDecodeError as exc:
        raise fail(f"not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise fail(f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:  # duplicate keys, NaN, 5,000-digit integers, deep nesting
        raise fail(f"not a baseline: {str(exc)[:120] or type(exc).__name__}") from None
    if not isinstance(document, dict) or "format" not in document:
        raise fail(f"not a baseline file (no \"format\": \"{SNAPSHOT_FORMAT}\")")
    if document["format"] != SNAPSHOT_FORMAT:
        raise fail(f"format {_shown(document['format'])} is not one this version reads ({SNAPSHOT_FORMAT})")
    if set(document) != {"format", "created_at", "selection", "workflows"}:
        raise fail(f"expected the keys format, created_at, selection and workflows, got {_shown(sorted(document))}")
    if not isinstance(document["selection"], dict):
        raise fail("selection: expected an object")
    workflows = document["workflows"]
    if not isinstance(workflows, dict):
        raise fail("workflows: expected an object of workflow names to lists of runs")
    runs = {}
    for name, entries in workflows.items():
        if not isinstance(entries, list):
            raise fail(f"workflows[{_shown(name)}]: expected a list of runs")
        values = [_run_values(entry, f"workflows[{_shown(name)}][{i}]", fail) for i, entry in enumerate(entries)]
        runs[name] = [run for run in values if run.status != "running"]  # as from the ledger: finished runs
    return runs, document["selection"]


def _run_values(entry: Any, where: str, fail) -> RunValues:
    if not isinstance(entry, dict) or set(entry) != _RUN_KEYS:
        raise fail(f"{where}: expected an object with the keys {', '.join(sorted(_RUN_KEYS))}")
    run_id, status, duration, calls, tokens, cost = (entry[key] for key in RunValues.__dataclass_fields__)
    if not isinstance(run_id, str) or not 0 < len(run_id) <= MAX_RUN_ID:
        raise fail(f"{where}.run_id: expected text of 1 to {MAX_RUN_ID} characters")
    if status not in RUN_STATUSES:
        raise fail(f"{where}.status: expected one of {', '.join(RUN_STATUSES)}")
    for key, count in (("llm_calls", calls), ("tokens", tokens)):
        if type(count) is not int or not 0 <= count <= MAX_COUNT:
            raise fail(f"{where}.{key}: expected a whole number from 0 to {MAX_COUNT}")
    # Any size a ledger may hold (a clock that stepped back can store a run's duration below 0).
    if duration is not None and (type(duration) not in (int, Decimal) or not abs(duration) <= MAX_DURATION_MS):
        raise fail(f"{where}.duration_ms: expected null or milliseconds, at most {MAX_DURATION_MS} either way")
    if cost is not None:
        if type(cost) not in (int, Decimal) or not 0 <= cost <= MAX_COUNT // 10**9:
            raise fail(f"{where}.cost_usd: expected null (unpriced) or dollars from 0 to {MAX_COUNT // 10**9}")
        cost = usd(cost)
    return RunValues(run_id, status, None if duration is None else float(duration), calls, tokens, cost)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"the key {_shown(key)} appears twice")
        document[key] = value
    return document


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"
