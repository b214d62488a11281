"""What the gate prints: the JSON shape of the issue, markdown for a job summary, the text
table, and its exit codes and one-line usage errors."""

from __future__ import annotations

import pytest

from tests.gate.conftest import BASELINE, CANDIDATE, runs, scaled, steady

CHECK_KEYS = ["metric", "baseline", "candidate", "change", "limit", "p_value", "status"]
METRICS = ["cost_per_run", "tokens_per_run", "llm_calls_per_run", "duration_p50_ms", "duration_p95_ms",
           "failure_rate"]


@pytest.fixture
def regressed(seed):
    before = steady(20)
    return seed(runs("digest", before, tags=BASELINE), runs("digest", scaled(before, "1.2"), tags=CANDIDATE),
                runs("fresh", steady(2), tags=CANDIDATE))


def test_json_has_the_issues_shape(regressed, gate):
    result = gate("--candidate-tag", "git_sha=c0ffee", "--format", "json")

    data = result.json
    assert list(data) == ["status", "baseline", "candidate", "workflows"]
    assert data["status"] == "regression"
    assert data["candidate"] == {"source": "ledger", "tags": {"git_sha": "c0ffee"}, "workflows": [], "runs": 22}
    assert data["baseline"]["source"] == "ledger" and data["baseline"]["runs"] == 20
    digest, fresh = data["workflows"]
    assert list(digest) == ["workflow", "baseline_runs", "candidate_runs", "checks"]
    assert (digest["workflow"], digest["baseline_runs"], digest["candidate_runs"]) == ("digest", 20, 20)
    assert [check["metric"] for check in digest["checks"]] == METRICS
    assert all(list(check) == CHECK_KEYS for check in digest["checks"])
    assert fresh == {"workflow": "fresh", "baseline_runs": 0, "candidate_runs": 2, "checks": []}
    # Money is an exact number in JSON, not a float's digits.
    assert '"baseline": 0.01,' in result.stdout and '"candidate": 0.012,' in result.stdout


def test_markdown_has_a_verdict_header_and_one_row_per_check_with_arrows(regressed, gate):
    result = gate("--candidate-tag", "git_sha=c0ffee", "--format", "markdown")

    lines = result.stdout.splitlines()
    assert lines[0] == "### ❌ pflow-metrics gate: regression in 1 of 6 checks"
    header = next(i for i, line in enumerate(lines) if line.startswith("| workflow"))
    assert [cell.strip() for cell in lines[header].strip("|").split("|")] == \
        ["workflow", "check", "baseline", "candidate", "change", "limit", "p-value", "status"]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[header + 2:header + 8]]
    assert rows[0] == ["digest", "cost per run", "$0.0100", "$0.0120", "↑ +20.0%", "+10%", "<0.0001",
                       "❌ regression"]
    assert rows[1][:5] == ["digest", "tokens per run", "150", "150", "→ 0.0%"]
    assert rows[5][0:2] == ["digest", "failure rate"] and rows[5][5] == "≤ 10%"
    assert "New workflows (no baseline runs; not checked): fresh (2 runs)" in result.stdout
    assert result.exit_code == 1


def test_a_passing_gate_says_so_in_markdown(seed, gate):
    seed(runs("digest", steady(20), tags=BASELINE), runs("digest", steady(20), tags=CANDIDATE))
    result = gate("--candidate-tag", "git_sha=c0ffee", "--format", "markdown")
    assert result.stdout.startswith("### ✅ pflow-metrics gate: pass (6 checks)")
    assert result.exit_code == 0


def test_the_table_shows_each_workflow_with_its_checks(regressed, gate):
    result = gate("--candidate-tag", "git_sha=c0ffee")

    assert result.stdout.startswith("gate: regression in 1 of 6 checks\ncandidate git_sha=c0ffee: 22 runs; "
                                    "baseline in the last 14d: 20 runs; 95% confidence")
    assert "digest: 20 runs in the baseline, 20 runs in the candidate" in result.stdout
    cost_line = next(line for line in result.stdout.splitlines() if line.startswith("cost per run"))
    assert cost_line.split() == ["cost", "per", "run", "$0.0100", "$0.0120", "↑", "+20.0%", "+10%", "<0.0001",
                                 "regression"]
    assert result.exit_code == 1


def test_workflow_names_cannot_drive_the_terminal_or_break_the_markdown(seed, gate):
    name = "evil|\x1b]0;pwned\x07 [x](http://e.x) <b>"
    seed(runs(name, steady(5), tags=BASELINE), runs(name, steady(5), tags=CANDIDATE))

    text = gate("--candidate-tag", "git_sha=c0ffee").stdout
    markdown = gate("--candidate-tag", "git_sha=c0ffee", "--format", "markdown").stdout

    assert "\x1b" not in text + markdown and "\x07" not in text + markdown
    row = next(line for line in markdown.splitlines() if "cost per run" in line)
    assert row.count(" | ") == 7  # eight cells: the name's | is escaped
    assert "\\[x\\](http://e.x) \\<b\\>" in row


def test_no_ledger_passes_with_a_warning_unless_data_is_required(cli, tmp_path):
    missing = tmp_path / "none.db"

    result = cli("--db", missing, "gate", "--candidate-tag", "git_sha=c0ffee")
    assert result.exit_code == 0
    assert result.stderr == "pflow-metrics: warning: no finished candidate runs with git_sha=c0ffee\n"
    assert result.stdout.startswith("gate: pass (0 checks)")

    required = cli("--db", missing, "gate", "--candidate-tag", "git_sha=c0ffee", "--require-data")
    assert required.exit_code == 1
    assert required.stdout.startswith("gate: insufficient data (no runs)")
    assert not missing.exists()


@pytest.mark.parametrize(("options", "message"), [
    ([], "--candidate-tag is required"),
    (["--candidate-tag", "git_sha"], "--candidate-tag: expected K=V, got 'git_sha'"),
    (["--candidate-tag", "git_sha="], "--candidate-tag: git_sha= has no value"),
    (["--candidate-tag", "a=b", "--baseline-tag", "=x"], "--baseline-tag: expected K=V"),
    (["--candidate-tag", "a=b", "--max-cost-increase", "10"], "--max-cost-increase: expected a percentage from 0%"),
    (["--candidate-tag", "a=b", "--max-cost-increase", "-5%"], "--max-cost-increase: expected a percentage"),
    (["--candidate-tag", "a=b", "--max-p95-increase", "nan%"], "--max-p95-increase: expected a percentage"),
    (["--candidate-tag", "a=b", "--max-tokens-increase", "1e999999999%"], "--max-tokens-increase: expected"),
    (["--candidate-tag", "a=b", "--max-failure-rate", "101%"],
     "--max-failure-rate: expected a percentage from 0% to 100%,"),
    (["--candidate-tag", "a=b", "--confidence", "100%"], "--confidence: expected a percentage between 0% and 100%"),
    (["--candidate-tag", "a=b", "--confidence", "0%"], "--confidence: expected a percentage between"),
    (["--candidate-tag", "a=b", "--confidence", "0.95"], "--confidence: expected a percentage"),
    (["--candidate-tag", "a=b", "--min-runs", "0"], "--min-runs: expected a whole number from 1 to 1,000,000"),
    (["--candidate-tag", "a=b", "--min-runs", "1000001"], "--min-runs: expected a whole number from 1 to"),
    (["--baseline-tag", "no-equals"], "--baseline-tag: expected K=V"),  # named before --candidate-tag is missed
    (["--candidate-tag", "a=b", "--min-runs", "1.5"], "'--min-runs'"),
    (["--candidate-tag", "a=b", "--format", "csv"], "'--format': 'csv' is not one of 'table', 'json', 'markdown'"),
    (["--candidate-tag", "a=b", "--baseline-since", "500000000000000d"], "--baseline-since: "),
    (["--candidate-tag", "a=b", "--baseline-since", "soon"], "--baseline-since: cannot read 'soon'"),
    (["--candidate-tag", "a=b", "--workflow", "x" * 1001], "--workflow: a pattern of 1,001 characters"),
    (["--candidate-tag", "a=b", "--baseline-file", "b.json", "--save-baseline", "c.json"], "would only copy"),
    (["--candidate-tag", "a=b", "--baseline-file", "b.json", "--baseline-tag", "x=y"], "--baseline-file gives"),
    (["--candidate-tag", "a=b", "--baseline-file", "b.json", "--baseline-since", "3d"], "--baseline-file gives"),
])
def test_bad_options_are_one_line_usage_errors(cli, tmp_path, options, message):
    result = cli("--db", tmp_path / "ledger.db", "gate", *options)

    assert result.exit_code == 2
    assert result.stderr.startswith("pflow-metrics: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_the_gate_runs_as_a_process_with_its_exit_code(regressed, cli_process, ledger_url):
    done = cli_process.run("--db", ledger_url, "gate", "--candidate-tag", "git_sha=c0ffee", "--format", "markdown")
    assert done.returncode == 1
    assert done.stdout.startswith("### ❌ pflow-metrics gate: regression")
