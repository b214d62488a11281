"""Self-contained HTML pages: the report (`report --format html`) and one run's waterfall
(`runs show ID --format html`).

Charts are Vega-Lite specifications rendered to SVG here, offline, by `vl-convert` (the
`html` extra), and inlined: a page needs no network, no JavaScript library and no font to
show its charts, and prints as it looks. Nothing of the extra is imported until a page is
asked for, so the text commands start as fast as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pflow_metrics.errors import UsageError

if TYPE_CHECKING:
    from pflow_metrics.ledger.filters import Filters
    from pflow_metrics.ledger.queries import Report, ReportBreakdown
    from pflow_metrics.record import RunRecord

MISSING_EXTRA = '--format html needs the html extra: pip install "pflow-metrics[html]"'


def check_extra() -> None:
    """UsageError (exit 2) naming the extra when its library is not installed."""
    try:
        import vl_convert  # noqa: F401
    except ImportError:
        raise UsageError(MISSING_EXTRA) from None


def report_page(report: Report, filters: Filters, breakdown: ReportBreakdown) -> str:
    """The report of a window as one HTML page; `breakdown` (queries.report_breakdown for the
    same window) gives its cost per day by model, runs per day by status and p95 by workflow."""
    check_extra()
    from pflow_metrics.html.report import render

    return render(report, filters, breakdown)


def run_page(record: RunRecord) -> str:
    """One run as one HTML page: its figures, a waterfall of its nodes and LLM calls, tables."""
    check_extra()
    from pflow_metrics.html.run import render

    return render(record)
