"""`ingest`: run records into the ledger (idempotent by run id)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import BinaryIO

import typer

from pflow_metrics.cli.options import open_ledger
from pflow_metrics.errors import EXIT_FAILURE, UsageError


def ingest(ctx: typer.Context, files: list[str] = typer.Argument(..., help="JSON-lines files, or - for stdin.")) -> None:
    """Add run records to the ledger (idempotent by run id). Exit 1 if any line was bad."""
    from pflow_metrics.ledger.ingest import ingest_lines

    ledger = open_ledger(ctx)
    landed, new, bad = 0, 0, 0
    for name in files:
        # Bytes, split on b"\n" only: each line is decoded on its own, so a byte that is not
        # UTF-8 costs its line, not the file.
        try:
            source = nullcontext(sys.stdin.buffer) if name == "-" else Path(name).open("rb")
        except OSError as exc:
            raise UsageError(f"cannot read {name}: {exc.strerror}") from None
        with source as stream:
            result = ingest_lines(ledger, _read_lines(stream, name))
        landed += result.landed
        new += result.new
        bad += len(result.problems)
        for number, message in result.problems:
            typer.echo(f"{name}:{number}: skipped: {message}", err=True)
    again = f" ({landed - new} already in the ledger, written again)" if landed - new else ""
    typer.echo(f"ingested {landed} runs{again}" + (f"; {bad} bad lines skipped" if bad else ""))
    if bad:
        sys.exit(EXIT_FAILURE)


def _read_lines(stream: BinaryIO, name: str) -> Iterator[bytes]:
    try:
        yield from stream
    except OSError as exc:  # the file went away or the disk failed while reading it
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
