"""--save-baseline and --baseline-file: a snapshot of the baseline's per-run values, for CI
runners that share no ledger; and a file that is not one, however hostile, is one line."""

from __future__ import annotations

import json

import pytest

from pflow_metrics.ledger.gate import SNAPSHOT_FORMAT
from pflow_metrics.ledger.store import Ledger
from tests.gate.conftest import BASELINE, CANDIDATE, runs, scaled, steady

CHECKS = ("--candidate-tag", "git_sha=c0ffee", "--format", "json")


def test_a_saved_baseline_gives_the_same_verdict_from_another_ledger(seed, gate, cli, tmp_path, ledger_url):
    before = steady(20)
    candidate = runs("digest", scaled(before, "1.2"), tags=CANDIDATE)
    seed(runs("digest", before, tags=BASELINE), runs("flaky", steady(4, "0.5"), tags=BASELINE,
                                                      statuses=["failed", "success", "success", "crashed"]),
         runs("other", [None] * 5, tags=BASELINE), candidate)
    snapshot = tmp_path / "baseline.json"
    from_ledger = gate(*CHECKS)

    saved = gate("--save-baseline", snapshot, "--baseline-tag", "git_sha=base")
    assert (saved.exit_code, saved.stdout) == (0, f"saved 29 runs of 3 workflows to {snapshot}\n")
    document = json.loads(snapshot.read_text())
    assert document["format"] == SNAPSHOT_FORMAT
    assert document["selection"]["tags"] == {"git_sha": "base"}
    assert [run["cost_usd"] for run in document["workflows"]["other"]] == [None] * 5

    # A CI runner with only the candidate runs in its own ledger.
    elsewhere = f"sqlite:///{tmp_path / 'runner.db'}"
    with Ledger.open(elsewhere) as ledger:
        ledger.finish_runs(candidate)
    from_file = cli("--db", elsewhere, "gate", *CHECKS, "--baseline-file", snapshot)

    assert from_file.exit_code == from_ledger.exit_code == 1
    assert json.loads(from_file.stdout)["workflows"] == from_ledger.json["workflows"]
    assert json.loads(from_file.stdout)["baseline"] == {"source": "file", "file": str(snapshot),
                                                        "saved": document["selection"], "runs": 29}


def test_saving_alongside_a_gate_leaves_the_candidate_runs_out_of_the_snapshot(seed, gate, tmp_path):
    before = steady(20)
    seed(runs("digest", before), runs("digest", scaled(before, "1.2"), tags=CANDIDATE))
    snapshot = tmp_path / "baseline.json"

    result = gate(*CHECKS, "--save-baseline", snapshot)

    assert result.exit_code == 1 and result.json["status"] == "regression"  # stdout stays JSON
    assert result.stderr == f"saved 20 runs of 1 workflow to {snapshot}\n"
    assert len(json.loads(snapshot.read_text())["workflows"]["digest"]) == 20


def test_the_workflow_option_also_picks_from_a_baseline_file(seed, gate, tmp_path):
    before = steady(20)
    seed(runs("digest", before, tags=BASELINE), runs("summary", before, tags=BASELINE),
         runs("digest", scaled(before, "1.2"), tags=CANDIDATE), runs("summary", before, tags=CANDIDATE))
    snapshot = tmp_path / "baseline.json"
    gate("--save-baseline", snapshot, "--baseline-tag", "git_sha=base")

    result = gate(*CHECKS, "--baseline-file", snapshot, "--workflow", "s?mmary")

    assert [w["workflow"] for w in result.json["workflows"]] == ["summary"]
    assert result.exit_code == 0


def test_a_baseline_that_cannot_be_written_is_one_line(seed, gate, tmp_path):
    seed(runs("digest", steady(3), tags=BASELINE))
    for target in (tmp_path, tmp_path / "no" / "such" / "dir.json"):
        result = gate("--save-baseline", target)
        assert result.exit_code == 2
        assert result.stderr.startswith(f"pflow-metrics: error: --save-baseline {target}: cannot write it: ")
        assert result.stderr.count("\n") == 1
    leftovers = [path.name for path in tmp_path.parent.iterdir() if path.name.startswith(f".{tmp_path.name}.")]
    assert leftovers == []  # the temporary file beside the target is gone


def _run(**changes) -> dict:
    run = {"run_id": "r1", "status": "success", "duration_ms": 12.5, "llm_calls": 1, "tokens": 150, "cost_usd": 0.01}
    return {**run, **changes}


def _document(*entries, **changes) -> str:
    document = {"format": SNAPSHOT_FORMAT, "created_at": "2026-11-25T00:00:00+00:00", "selection": {},
                "workflows": {"digest": list(entries) or [_run()]}}
    return json.dumps({**document, **changes})


HOSTILE = [
    (b"", "not JSON"),
    (b"\xff\xfe{}", "not UTF-8 text"),
    (b"[1, 2]", "not a baseline file"),
    (b"{}", "not a baseline file"),
    (b'{"format": 2}', "format 2 is not one this version reads"),
    (b'{"format": "pflow-metrics-gate-baseline/9"}', "is not one this version reads"),
    ('{"format": "%s", "format": "%s"}' % (SNAPSHOT_FORMAT, SNAPSHOT_FORMAT), "appears twice"),
    (b"[" * 100_000 + b"]" * 100_000, "not a baseline"),
    (_document(extra=1), "expected the keys format, created_at, selection and workflows"),
    (_document(workflows=5), "workflows: expected an object"),
    (_document(workflows={"digest": {"run": 1}}), "workflows['digest']: expected a list of runs"),
    (_document(selection=[]), "selection: expected an object"),
    (_document("run"), "workflows['digest'][0]: expected an object with the keys"),
    (_document({**_run(), "surprise": 1}), "expected an object with the keys"),
    (_document(_run(run_id=7)), ".run_id: expected text"),
    (_document(_run(run_id="x" * 37)), ".run_id: expected text of 1 to 36 characters"),
    (_document(_run(status="weird")), ".status: expected one of"),
    (_document(_run(tokens=True)), ".tokens: expected a whole number"),
    (_document(_run(tokens=1.5)), ".tokens: expected a whole number"),
    (_document(_run(tokens=-1)), ".tokens: expected a whole number"),
    (_document(_run(tokens=2**64)), ".tokens: expected a whole number"),
    (_document(_run(llm_calls="3")), ".llm_calls: expected a whole number"),
    (_document(_run(duration_ms=-1e12)), ".duration_ms: expected null or milliseconds"),
    (_document(_run(duration_ms=1e308)), ".duration_ms: expected null or milliseconds"),
    (_document(_run(duration_ms="fast")), ".duration_ms: expected null or milliseconds"),
    (_document(_run(cost_usd=-0.01)), ".cost_usd: expected null (unpriced) or dollars"),
    (_document(_run(cost_usd=1e300)), ".cost_usd: expected null (unpriced) or dollars"),
    (_document(_run(cost_usd="0.01")), ".cost_usd: expected null (unpriced) or dollars"),
    (_document(_run(cost_usd=False)), ".cost_usd: expected null (unpriced) or dollars"),
    (_document().replace("12.5", "NaN"), "NaN is not a number JSON allows"),
    (_document().replace("12.5", "Infinity"), "Infinity is not a number JSON allows"),
    (_document().replace("150", "1" * 5000), "not a baseline"),
    (_document().replace('"digest"', '"\\u001b]0;pwned\\u0007"').replace("150", "-1"), "\\x1b]0;pwned\\x07"),
]


@pytest.mark.parametrize(("content", "message"), HOSTILE)
def test_a_hostile_baseline_file_is_a_one_line_usage_error(cli, tmp_path, content, message):
    snapshot = tmp_path / "baseline.json"
    snapshot.write_bytes(content.encode() if isinstance(content, str) else content)

    result = cli("--db", tmp_path / "l.db", "gate", "--candidate-tag", "a=b", "--baseline-file", snapshot)

    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith(f"pflow-metrics: error: --baseline-file {snapshot}: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "\x1b" not in result.stderr
    assert len(result.stderr) < 400


@pytest.mark.parametrize("kind", ["missing", "directory", "huge"])
def test_a_baseline_file_that_cannot_be_read_is_one_line(cli, tmp_path, kind):
    from pflow_metrics.ledger.gate import MAX_SNAPSHOT_BYTES

    path = tmp_path / "baseline.json"
    if kind == "directory":
        path.mkdir()
    elif kind == "huge":
        with path.open("wb") as file:
            file.truncate(MAX_SNAPSHOT_BYTES + 10)  # sparse: no disk used

    result = cli("--db", tmp_path / "l.db", "gate", "--candidate-tag", "a=b", "--baseline-file", path)

    assert result.exit_code == 2
    assert result.stderr.startswith("pflow-metrics: error: --baseline-file ") and result.stderr.count("\n") == 1
    assert {"missing": "No such file", "directory": "Is a directory", "huge": "at most"}[kind] in result.stderr


def test_a_valid_baseline_file_with_values_at_their_limits_is_read(cli, tmp_path):
    snapshot = tmp_path / "baseline.json"
    snapshot.write_text(_document(_run(run_id="x" * 36, tokens=2**63 - 1, duration_ms=10**11, cost_usd=9223372036,
                                       llm_calls=0),
                                  _run(run_id="y", duration_ms=None, cost_usd=None, status="running")))

    result = cli("--db", tmp_path / "l.db", "gate", "--candidate-tag", "a=b", "--baseline-file", snapshot)

    assert result.exit_code == 0, result.stderr
    assert "vanished workflows (no candidate runs; not checked): digest (1 run)" in result.stdout  # not the running one
