"""`pflow-metrics gate`: fail a CI job when a change made workflows cost more, run slower or fail
more often than their baseline. The library (ledger/gate.py) decides; this parses and renders."""

from __future__ import annotations

import dataclasses
import os
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

import typer

from pflow_metrics.cli.options import open_existing_ledger, parse_pairs
from pflow_metrics.cli.query_options import GateFormat, Workflow, build_filters
from pflow_metrics.cli.render import Column, clean, duration, money, render_rows, to_json, warning_line
from pflow_metrics.errors import EXIT_FAILURE, UsageError
from pflow_metrics.money import plain
from pflow_metrics.timewindow import describe_window, parse_moment

DEFAULT_SINCE = "14d"
MOST_RUNS = 1_000_000
MOST_PERCENT = Decimal(1_000_000)  # a limit past 10,000 times the baseline is no limit
LABELS = {"cost_per_run": "cost per run", "tokens_per_run": "tokens per run", "llm_calls_per_run": "LLM calls per run",
          "duration_p50_ms": "p50 duration", "duration_p95_ms": "p95 duration", "failure_rate": "failure rate"}
MARKS = {"ok": "✅", "regression": "❌", "improved": "✅", "insufficient": "⚠️"}
COLUMNS = [Column(name, title=title) for name, title in (
    ("workflow", ""), ("check", ""), ("baseline", ""), ("candidate", ""), ("change", ""), ("limit", ""),
    ("p_value", "p-value"), ("status", ""))]


def _limit_option(flag: str, default: str, what: str):
    return typer.Option(default, flag, metavar="PERCENT", help=f"{what} Example: {flag} 15%.")


def gate(ctx: typer.Context,
         candidate_tag: list[str] = typer.Option(
             None, "--candidate-tag", metavar="K=V",
             help="The candidate runs: those with this tag (repeatable; all must match). The CI context's "
             "git_sha and git_branch count as tags. Example: --candidate-tag git_sha=$GITHUB_SHA"),
         baseline_tag: list[str] = typer.Option(
             None, "--baseline-tag", metavar="K=V",
             help="The baseline runs: those with this tag (repeatable). Default: every run not in the "
             "candidate set. Example: --baseline-tag git_branch=main"),
         baseline_since: str = typer.Option(
             None, "--baseline-since", metavar="WHEN",
             help=f"Baseline runs started since then (30m, 24h, 7d, 2026-11-01). Default: {DEFAULT_SINCE}. "
             "Example: --baseline-since 30d"),
         workflow: Workflow = None,
         max_cost_increase: str = _limit_option("--max-cost-increase", "10%", "Highest rise of the mean cost per run."),
         max_tokens_increase: str = _limit_option("--max-tokens-increase", "10%",
                                                  "Highest rise of the mean tokens per run."),
         max_calls_increase: str = _limit_option("--max-calls-increase", "10%",
                                                 "Highest rise of the mean LLM calls per run."),
         max_p50_increase: str = _limit_option("--max-p50-increase", "25%", "Highest rise of the median duration."),
         max_p95_increase: str = _limit_option("--max-p95-increase", "25%",
                                               "Highest rise of the 95th percentile duration."),
         max_failure_rate: str = _limit_option("--max-failure-rate", "10%",
                                               "Highest failure rate of the candidate runs (not a rise)."),
         confidence: str = typer.Option("95%", "--confidence", metavar="PERCENT",
                                        help="How sure a regression must be (one-sided tests). "
                                        "Example: --confidence 99%."),
         min_runs: int = typer.Option(5, "--min-runs", metavar="N",
                                      help="Fewer runs than this on either side: insufficient, never a guess. "
                                      "Example: --min-runs 10."),
         require_data: bool = typer.Option(False, "--require-data",
                                           help="Fail (exit 1) when a check has insufficient runs, or none match."),
         baseline_file: Path = typer.Option(None, "--baseline-file", metavar="FILE",
                                            help="Take the baseline from a snapshot saved with --save-baseline, "
                                            "not from the ledger. Example: --baseline-file baseline.json"),
         save_baseline: Path = typer.Option(None, "--save-baseline", metavar="FILE",
                                            help="Write the baseline runs' values to FILE (JSON), to commit or "
                                            "pass to another CI job; needs no --candidate-tag. "
                                            "Example: --save-baseline baseline.json"),
         format: GateFormat = typer.Option(GateFormat.table, "--format", metavar="FORMAT",
                                           help="table, json or markdown (for $GITHUB_STEP_SUMMARY). "
                                           "Example: --format markdown >> $GITHUB_STEP_SUMMARY"),
         ) -> None:
    """Compare candidate runs with baseline runs per workflow: exit 0 when no check is a
    regression, 1 on any regression (or missing data with --require-data), 2 on usage errors.

    A regression needs its limit exceeded and a one-sided Mann-Whitney U test (Fisher exact test
    for the failure rate) at --confidence. Example: pflow-metrics gate --candidate-tag git_sha=abc123
    """
    from pflow_metrics.ledger import gate as gates
    from pflow_metrics.record import utcnow

    settings = gates.Settings(
        limits={"cost_per_run": _percent(max_cost_increase, "--max-cost-increase"),
                "tokens_per_run": _percent(max_tokens_increase, "--max-tokens-increase"),
                "llm_calls_per_run": _percent(max_calls_increase, "--max-calls-increase"),
                "duration_p50_ms": _percent(max_p50_increase, "--max-p50-increase"),
                "duration_p95_ms": _percent(max_p95_increase, "--max-p95-increase"),
                "failure_rate": _percent(max_failure_rate, "--max-failure-rate", most=Decimal(100))},
        confidence=_confidence(confidence), min_runs=_min_runs(min_runs), require_data=require_data)
    candidate_tags = _tags(candidate_tag, "--candidate-tag")
    since_text = baseline_since or DEFAULT_SINCE
    candidate_filters = dataclasses.replace(build_filters(None, None, workflow, None, None, None), tags=candidate_tags)
    baseline_filters = dataclasses.replace(candidate_filters, since=parse_moment(since_text, "--baseline-since"),
                                           tags=_tags(baseline_tag, "--baseline-tag"))
    snapshot = None
    if baseline_file is not None:
        if save_baseline is not None:
            raise UsageError("--baseline-file and --save-baseline together would only copy the file; use one")
        if baseline_tag or baseline_since is not None:
            raise UsageError("--baseline-tag and --baseline-since choose ledger runs; "
                             "--baseline-file gives the baseline instead")
        snapshot = gates.read_snapshot(_read(baseline_file), f"--baseline-file {baseline_file}")
    if not candidate_tags and save_baseline is None:
        raise UsageError("--candidate-tag is required (e.g. --candidate-tag git_sha=$GITHUB_SHA), "
                         "unless you only --save-baseline")

    ledger = open_existing_ledger(ctx)
    if snapshot is None:
        baseline = gates.select_runs(ledger, baseline_filters)
        baseline_selection = {"source": "ledger", "tags": baseline_filters.tags, "since": baseline_filters.since,
                              "workflows": baseline_filters.workflows}
    else:
        baseline = gates.keep_workflows(snapshot[0], baseline_filters.workflows)
        baseline_selection = {"source": "file", "file": str(baseline_file), "saved": snapshot[1]}
    candidate = gates.select_runs(ledger, candidate_filters) if candidate_tags else {}
    candidate_selection = {"source": "ledger", "tags": candidate_tags, "workflows": candidate_filters.workflows}
    if save_baseline is not None:
        saved = gates.without(baseline, candidate)
        _write(save_baseline, to_json(gates.snapshot(saved, baseline_selection, utcnow())))
        typer.echo(f"saved {_runs(sum(map(len, saved.values())))} of {_runs(len(saved), 'workflow')} to "
                   f"{clean(save_baseline, limit=None)}", err=format != "table" or bool(candidate_tags))
        if not candidate_tags:
            return
    verdict = gates.compare(candidate, baseline, settings, candidate_selection, baseline_selection)
    if not verdict.candidate["runs"]:
        typer.echo(warning_line(f"no finished candidate runs with {_pairs(candidate_tags)}"), err=True)
    window = (f"file {clean(baseline_file, limit=None)}" if baseline_file is not None
              else describe_window(baseline_filters.since, None, since_text))
    if format == "json":
        typer.echo(to_json(verdict.to_dict()))
    elif format == "markdown":
        typer.echo(_markdown(verdict, candidate_tags, window, settings))
    else:
        typer.echo(_text(verdict, candidate_tags, window, settings))
    if verdict.failed:
        sys.exit(EXIT_FAILURE)


# -- options ------------------------------------------------------------------------------------


def _percent(text: str, option: str, most: Decimal = MOST_PERCENT) -> Decimal:
    """"15%" as 0.15. The % is required: a bare 10 could mean 10% or 1000%."""
    number = None
    if text.strip().endswith("%"):
        try:
            number = Decimal(text.strip()[:-1])
        except InvalidOperation:
            pass
    if number is None or not number.is_finite() or not 0 <= number <= most:
        raise UsageError(f"{option}: expected a percentage from 0% to {plain(most)}%, like 10%; got '{text:.40}'")
    return number / 100


def _confidence(text: str) -> Decimal:
    value = _percent(text, "--confidence", most=Decimal(100))
    if not 0 < value < 1:
        raise UsageError(f"--confidence: expected a percentage between 0% and 100%, like 95%; got '{text:.40}'")
    return value


def _min_runs(value: int) -> int:
    if not 1 <= value <= MOST_RUNS:
        raise UsageError(f"--min-runs: expected a whole number from 1 to {MOST_RUNS:,}, got {str(value)[:40]}")
    return value


def _tags(pairs: list[str] | None, option: str) -> dict[str, str]:
    tags = parse_pairs(pairs, lambda pair: f"{option}: expected K=V, got '{pair:.60}'")
    for key, value in tags.items():
        if not value:  # --candidate-tag git_sha=$GITHUB_SHA with the variable unset
            raise UsageError(f"{option}: {key:.60}= has no value (is the variable you meant set?)")
    return tags


def _read(path: Path) -> bytes:
    from pflow_metrics.ledger.gate import MAX_SNAPSHOT_BYTES

    try:
        with path.open("rb") as file:
            return file.read(MAX_SNAPSHOT_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"--baseline-file {path}: cannot read it: {exc.strerror or exc}") from None


def _write(path: Path, text: str) -> None:
    """Write the snapshot whole or not at all: a temporary file beside it, then a rename."""
    import tempfile

    temporary = None
    try:
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.",
                                         delete=False) as file:
            temporary = file.name
            file.write(text + "\n")
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise UsageError(f"--save-baseline {path}: cannot write it: {exc.strerror or exc}") from None


# -- rendering ------------------------------------------------------------------------------------


def _pairs(tags: dict[str, str]) -> str:
    return clean(", ".join(f"{key}={value}" for key, value in tags.items()), limit=None)


def _headline(verdict, candidate_tags: dict[str, str], window: str, settings) -> tuple[str, str]:
    """(the verdict in a few words, the sets compared)."""
    checks = [check for w in verdict.compared() for check in w.checks]
    failed = sum(check.status == "regression" for check in checks)
    short = sum(check.status == "insufficient" for check in checks)
    if verdict.status == "regression":
        words = f"regression in {failed} of {len(checks)} checks"
    elif verdict.status == "insufficient":
        words = f"insufficient data ({short} of {len(checks)} checks)" if checks else "insufficient data (no runs)"
    else:
        words = f"pass ({len(checks)} checks" + (f", {short} with too few runs)" if short else ")")
    sets = (f"candidate {_pairs(candidate_tags)}: {_runs(verdict.candidate['runs'])}; baseline {window}: "
            f"{_runs(verdict.baseline['runs'])}; {plain(settings.confidence * 100)}% confidence")
    return words, sets


def _row(workflow: str, check, status: str) -> dict[str, str]:
    """A check as table cells: the values in the metric's unit, an arrow and the change."""
    def show(value):
        if value is None:
            return "-"
        if check.metric == "cost_per_run":
            return money(value)
        if check.metric == "failure_rate":
            return f"{value:.1%}"
        if check.metric.startswith("duration"):
            return duration(float(value))
        return f"{int(value):,}" if value == value.to_integral_value() else f"{value:,.2f}"

    if check.change is None:
        change = "-" if check.baseline is None or check.candidate is None else "↑ from 0"
    else:
        arrow, sign = ("↑", "+") if check.change > 0 else ("↓", "") if check.change < 0 else ("→", "")
        change = f"{arrow} {sign}{check.change * 100:.1f} pts" if check.metric == "failure_rate" \
            else f"{arrow} {sign}{check.change:.1%}"
    limit = f"≤ {plain(check.limit * 100)}%" if check.metric == "failure_rate" else f"+{plain(check.limit * 100)}%"
    if check.p_value is None:
        p_value = "-"
    else:
        p_value = "<0.0001" if check.p_value < 0.0001 else f"{check.p_value:.4f}"
    return {"workflow": workflow, "check": LABELS[check.metric], "baseline": show(check.baseline),
            "candidate": show(check.candidate), "change": change, "limit": limit, "p_value": p_value, "status": status}


def _runs(count: int, noun: str = "run") -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _listed(workflows, what: str) -> str:
    return f"{what}: " + ", ".join(f"{clean(w.workflow)} ({_runs(w.candidate_runs or w.baseline_runs)})"
                                   for w in workflows)


def _text(verdict, candidate_tags: dict[str, str], window: str, settings) -> str:
    words, sets = _headline(verdict, candidate_tags, window, settings)
    sections = [f"gate: {words}\n{sets}"]
    for w in verdict.compared():
        rows = [_row(w.workflow, check, check.status) for check in w.checks]
        sections.append(f"{clean(w.workflow)}: {_runs(w.baseline_runs)} in the baseline, "
                        f"{_runs(w.candidate_runs)} in the candidate\n"
                        + render_rows(rows, COLUMNS[1:], "table"))
    if verdict.new():
        sections.append(_listed(verdict.new(), "new workflows (no baseline runs; not checked)"))
    if verdict.vanished():
        sections.append(_listed(verdict.vanished(), "vanished workflows (no candidate runs; not checked)"))
    return "\n\n".join(sections)


def _markdown(verdict, candidate_tags: dict[str, str], window: str, settings) -> str:
    words, sets = _headline(verdict, candidate_tags, window, settings)
    mark = {"pass": "✅", "regression": "❌", "insufficient": "⚠️"}[verdict.status]
    lines = [f"### {mark} pflow-metrics gate: {words}", "", _md(sets)]
    rows = [_row(_md(w.workflow), check, f"{MARKS[check.status]} {check.status}")
            for w in verdict.compared() for check in w.checks]
    if rows:
        lines += ["", render_rows(rows, COLUMNS, "markdown")]
    for listed, what in ((verdict.new(), "New workflows (no baseline runs; not checked)"),
                         (verdict.vanished(), "Vanished workflows (no candidate runs; not checked)")):
        if listed:
            lines += ["", _md(_listed(listed, what))]
    return "\n".join(lines)


def _md(text: str) -> str:
    """Text that stays text in a pull-request comment: no table break, link, tag or emphasis."""
    text = clean(text, limit=None)
    for char in "\\`*_[]<>|#":
        text = text.replace(char, "\\" + char)
    return text
