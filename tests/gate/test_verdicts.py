"""The gate's verdicts on seeded ledgers, on SQLite and PostgreSQL: real regressions fail, too
few runs are insufficient, noise and small changes pass, improvements are called so."""

from __future__ import annotations

from decimal import Decimal

from tests.gate.conftest import BASELINE, CANDIDATE, runs, scaled, steady

JSON = ("--candidate-tag", "git_sha=c0ffee", "--format", "json")


def test_a_20_percent_cost_increase_over_20_runs_fails(seed, gate):
    before = steady(20)
    seed(runs("digest", before, tags=BASELINE), runs("digest", scaled(before, "1.2"), tags=CANDIDATE))

    result = gate(*JSON)

    assert result.exit_code == 1
    assert result.json["status"] == "regression"
    cost = result.check("digest", "cost_per_run")
    assert cost["status"] == "regression"
    assert Decimal(str(cost["change"])) == Decimal("0.2")
    assert cost["baseline"] == 0.01 and cost["candidate"] == 0.012
    assert cost["p_value"] < 0.05
    others = {c["metric"]: c["status"] for w in result.json["workflows"] for c in w["checks"]}
    assert others == {"cost_per_run": "regression", "tokens_per_run": "ok", "llm_calls_per_run": "ok",
                      "duration_p50_ms": "ok", "duration_p95_ms": "ok", "failure_rate": "ok"}


def test_the_same_increase_over_2_runs_each_is_insufficient(seed, gate):
    before = steady(2)
    seed(runs("digest", before, tags=BASELINE), runs("digest", scaled(before, "1.2"), tags=CANDIDATE))

    result = gate(*JSON)

    assert result.exit_code == 0
    assert result.json["status"] == "pass"
    checks = result.json["workflows"][0]["checks"]
    assert {c["status"] for c in checks} == {"insufficient"}
    assert all(c["p_value"] is None for c in checks)
    assert Decimal(str(result.check("digest", "cost_per_run")["change"])) == Decimal("0.2")  # shown, not judged

    required = gate(*JSON, "--require-data")
    assert required.exit_code == 1
    assert required.json["status"] == "insufficient"


def test_a_2_percent_increase_passes(seed, gate):
    before = steady(20)
    seed(runs("digest", before, tags=BASELINE), runs("digest", scaled(before, "1.02"), tags=CANDIDATE))

    result = gate(*JSON)

    assert result.exit_code == 0
    cost = result.check("digest", "cost_per_run")
    assert (Decimal(str(cost["change"])), cost["status"]) == (Decimal("0.02"), "ok")


def test_a_noisy_workflow_whose_means_differ_by_chance_passes(seed, gate):
    # The same spread of costs on both sides, but one candidate run happened to cost 5x: the mean
    # rises past the 10% limit, the ranks barely move, and the test finds no evidence.
    before = [Decimal("0.0100") + Decimal("0.0005") * i for i in range(20)]
    after = sorted(before, reverse=True)
    after[0] = Decimal("0.0700")
    seed(runs("digest", before, tags=BASELINE), runs("digest", after, tags=CANDIDATE))

    result = gate(*JSON)

    cost = result.check("digest", "cost_per_run")
    assert cost["change"] > 0.1
    assert cost["p_value"] > 0.05
    assert cost["status"] == "ok"
    assert result.exit_code == 0


def test_improvements_are_reported_as_improved(seed, gate):
    before = steady(20)
    seed(runs("digest", before, tags=BASELINE, durations=[200.0 + i for i in range(20)]),
         runs("digest", scaled(before, "0.7"), tags=CANDIDATE, durations=[100.0 + i for i in range(20)]))

    result = gate(*JSON)

    assert result.exit_code == 0
    assert result.json["status"] == "pass"
    for metric in ("cost_per_run", "duration_p50_ms", "duration_p95_ms"):
        assert result.check("digest", metric)["status"] == "improved"
        assert result.check("digest", metric)["change"] < 0


def test_slower_runs_fail_the_duration_checks(seed, gate):
    costs = steady(20)
    seed(runs("digest", costs, tags=BASELINE, durations=[100.0 + i for i in range(20)]),
         runs("digest", costs, tags=CANDIDATE, durations=[140.0 + i for i in range(20)]))

    result = gate(*JSON)

    assert result.exit_code == 1
    p50 = result.check("digest", "duration_p50_ms")
    assert (p50["baseline"], p50["candidate"], p50["status"]) == (109.5, 149.5, "regression")
    assert result.check("digest", "duration_p95_ms")["status"] == "regression"
    assert result.check("digest", "cost_per_run")["status"] == "ok"


def test_more_failures_than_the_limit_fail_the_failure_rate_check(seed, gate):
    costs = steady(20)
    failing = ["failed"] * 4 + ["crashed", "budget_exceeded"] + ["success"] * 14
    seed(runs("digest", costs, tags=BASELINE), runs("digest", costs, tags=CANDIDATE, statuses=failing))

    result = gate(*JSON)

    rate = result.check("digest", "failure_rate")
    assert (rate["baseline"], rate["candidate"], rate["limit"], rate["status"]) == (0, 0.3, 0.1, "regression")
    assert Decimal(str(rate["change"])) == Decimal("0.3")
    assert result.exit_code == 1


def test_a_failure_rate_as_high_as_the_baselines_is_no_regression(seed, gate):
    costs = steady(20)
    failing = ["failed"] * 6 + ["success"] * 14
    seed(runs("digest", costs, tags=BASELINE, statuses=failing), runs("digest", costs, tags=CANDIDATE,
                                                                     statuses=failing))
    assert gate(*JSON).check("digest", "failure_rate")["status"] == "ok"


def test_new_and_vanished_workflows_are_listed_not_failed(seed, gate):
    seed(runs("digest", steady(20), tags=BASELINE), runs("digest", steady(20), tags=CANDIDATE),
         runs("old-flow", steady(6), tags=BASELINE), runs("new-flow", steady(3, "5"), tags=CANDIDATE))

    result = gate(*JSON, "--require-data")

    assert result.exit_code == 0
    listed = {w["workflow"]: (w["baseline_runs"], w["candidate_runs"], w["checks"]) for w in result.json["workflows"]}
    assert listed["new-flow"] == (0, 3, [])
    assert listed["old-flow"] == (6, 0, [])
    text = gate("--candidate-tag", "git_sha=c0ffee").stdout
    assert "new workflows (no baseline runs; not checked): new-flow (3 runs)" in text
    assert "vanished workflows (no candidate runs; not checked): old-flow (6 runs)" in text


def test_unpriced_runs_are_left_out_of_the_cost_check_not_counted_as_free(seed, gate):
    before = steady(20)
    # Half the candidate runs called a model nobody prices: as $0 they would halve the mean.
    after = scaled(before[:10], "1.2") + [None] * 10
    seed(runs("digest", before, tags=BASELINE), runs("digest", after, tags=CANDIDATE))

    cost = gate(*JSON).check("digest", "cost_per_run")

    assert cost["candidate"] > cost["baseline"]
    assert cost["status"] == "regression"
    assert gate(*JSON, "--min-runs", "11").check("digest", "cost_per_run")["status"] == "insufficient"


def test_the_default_baseline_is_every_other_recent_run(seed, gate):
    before = steady(20)
    seed(runs("digest", before), runs("digest", before, hours_ago=24 * 20),  # untagged; the old ones too old
         runs("digest", scaled(before, "1.2"), tags=CANDIDATE))

    result = gate(*JSON)

    assert (result.json["baseline"]["runs"], result.json["candidate"]["runs"]) == (20, 20)
    assert result.check("digest", "cost_per_run")["status"] == "regression"
    assert gate(*JSON, "--baseline-since", "30d").json["baseline"]["runs"] == 40


def test_candidate_runs_are_found_by_the_ci_context_commit(seed, gate):
    before = steady(20)
    from_ci = runs("digest", scaled(before, "1.2"))
    for run in from_ci:
        run.ci = {"provider": "github", "git_sha": "c0ffee", "git_branch": "feature"}
    seed(runs("digest", before, tags={"branch": "main"}), from_ci)

    result = gate(*JSON, "--baseline-tag", "branch=main")

    assert (result.json["candidate"]["runs"], result.json["baseline"]["runs"]) == (20, 20)
    assert result.json["candidate"]["tags"] == {"git_sha": "c0ffee"}
    assert result.exit_code == 1


def test_workflow_patterns_choose_the_workflows_checked(seed, gate):
    before = steady(20)
    seed(runs("digest", before, tags=BASELINE), runs("digest", scaled(before, "1.2"), tags=CANDIDATE),
         runs("summary", before, tags=BASELINE), runs("summary", before, tags=CANDIDATE))

    result = gate(*JSON, "--workflow", "sum*")

    assert [w["workflow"] for w in result.json["workflows"]] == ["summary"]
    assert result.exit_code == 0


def test_limits_and_confidence_are_the_users(seed, gate):
    before = steady(5)
    seed(runs("digest", before, tags=BASELINE), runs("digest", scaled(before, "1.2"), tags=CANDIDATE))

    # 5 runs each, every candidate run dearer: an exact p of 1/252.
    assert gate(*JSON).check("digest", "cost_per_run")["p_value"] == round(1 / 252, 6)
    assert gate(*JSON).exit_code == 1
    assert gate(*JSON, "--max-cost-increase", "25%").exit_code == 0
    assert gate(*JSON, "--max-cost-increase", "19.5%").exit_code == 1
    assert gate(*JSON, "--confidence", "99.9%").check("digest", "cost_per_run")["status"] == "ok"
    assert gate(*JSON, "--min-runs", "6").check("digest", "cost_per_run")["status"] == "insufficient"
