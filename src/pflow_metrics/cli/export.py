"""`export`: run records out of the ledger, as JSON lines or CSV, or as OpenTelemetry spans
sent to an OTLP/HTTP endpoint."""

from __future__ import annotations

import csv
import functools
import sys
from itertools import islice

import typer

from pflow_metrics.cli.options import open_existing_ledger
from pflow_metrics.cli.query_options import Since, Status, Tag, Until, Workflow, build_filters
from pflow_metrics.errors import EXIT_FAILURE, PflowMetricsError, UsageError

CSV_COLUMNS = ("run_id", "workflow", "status", "started_at", "ended_at", "duration_ms", "cost_usd",
               "unpriced_calls", "host")


def export(ctx: typer.Context,
           format: str = typer.Option("jsonl", "--format", metavar="FORMAT",
                                      help="jsonl (run records), csv (one row per run) or "
                                      "otlp (spans sent to an OpenTelemetry endpoint). Example: --format csv."),
           endpoint: str = typer.Option(None, "--endpoint", metavar="URL",
                                        help="With --format otlp: the OTLP/HTTP endpoint. Default: "
                                        "$OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318. "
                                        "Example: --format otlp --endpoint http://localhost:4318"),
           since: Since = "30d", until: Until = None, workflow: Workflow = None, status: Status = None,
           tag: Tag = None) -> None:
    """Write run records to stdout: JSON lines in the run-record shape, or CSV; or send them as
    OpenTelemetry spans (--format otlp): re-sending a run gives the same trace and span ids."""
    from decimal import Decimal

    from pflow_metrics.ledger.queries import iter_records
    from pflow_metrics.money import plain

    if format not in ("jsonl", "csv", "otlp"):
        raise UsageError(f"--format: must be jsonl, csv or otlp, got '{format}'")
    if endpoint is not None and format != "otlp":
        raise UsageError("--endpoint: only with --format otlp")
    send = _otlp_sender(endpoint) if format == "otlp" else None  # refuses a bad endpoint before reading
    filters = build_filters(since, until, workflow, None, status, tag)
    ledger = open_existing_ledger(ctx)
    records = iter_records(ledger, filters) if ledger is not None else iter(())
    if send is not None:
        send(records)
        return
    out = sys.stdout
    if format == "jsonl":
        for record in records:
            out.write(record.to_json() + "\n")
        return
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        data = record.to_dict()
        writer.writerow([plain(data[c]) if isinstance(data[c], Decimal) else data[c] for c in CSV_COLUMNS])


RUNS_PER_REQUEST = 50  # one OTLP request per 50 runs: far below the size collectors refuse


class ExportFailed(PflowMetricsError):
    """The endpoint did not take the spans (exit 1); runs sent before stay sent."""

    exit_code = EXIT_FAILURE


def _otlp_sender(endpoint: str | None):
    """The function that sends records as spans, after checking the extra and the endpoint."""
    from urllib.parse import urlsplit

    from pflow_metrics.config import otel_timeout

    if endpoint is not None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"--endpoint: must be an http:// or https:// URL, got {endpoint[:80]!r}")
    timeout = otel_timeout()
    try:
        from pflow_metrics.instrumentation import otel
    except ImportError as exc:
        raise UsageError(f"--format otlp needs the otel extra (pip install 'pflow-metrics[otel]'): {exc}") from None

    return functools.partial(_send_as_spans, otel, endpoint, timeout)


def _send_as_spans(otel, endpoint: str | None, timeout: float, records) -> None:
    """Send the records as spans, RUNS_PER_REQUEST runs a request."""
    builder, exporter = otel.SpanBuilder(), otel.new_exporter(endpoint, timeout)
    fit = _exportable(otel, records)
    runs = spans = 0
    try:
        while batch := list(islice(fit, RUNS_PER_REQUEST)):
            built = builder.spans(batch)
            try:
                otel.send(exporter, built)
            except otel.OtelExportError as exc:
                raise ExportFailed(f"sent {runs} runs, then OpenTelemetry export {exc}") from None
            runs, spans = runs + len(batch), spans + len(built)
    finally:
        exporter.shutdown()
    typer.echo(f"sent {runs} run{'s' if runs != 1 else ''} ({spans} spans) to {otel.endpoint_of(exporter)}")


def _exportable(otel, records):
    """The records that can become spans; each other one is a warning line."""
    from pflow_metrics.cli.render import warning_line

    for record in records:
        unfit = otel.exportable(record)
        if unfit is None:
            yield record
        else:
            typer.echo(warning_line(f"run {record.run_id} not sent: {unfit}"), err=True)
