"""`ingest`: run records into the ledger (idempotent by run id), or the `llm` CLI's own logs."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from enum import Enum
from pathlib import Path
from typing import BinaryIO

import typer

from pflow_metrics.cli.options import open_ledger
from pflow_metrics.cli.render import progress_bar, warning_line
from pflow_metrics.errors import EXIT_FAILURE, UsageError


class Source(str, Enum):
    jsonl = "jsonl"
    llm = "llm"


def ingest(
    ctx: typer.Context,
    files: list[str] = typer.Argument(
        None, metavar="[FILE]...",
        help="JSON-lines files, or - for stdin (--from jsonl). With --from llm: llm's logs database "
        "(default: llm's own, $LLM_USER_PATH/logs.db). Example: ingest runs.jsonl",
    ),
    source: Source = typer.Option(
        Source.jsonl, "--from", metavar="SOURCE", show_default=False,
        help="What to read: run records as JSON lines (from `export`), or the prompts the `llm` command "
        "line logged. Default: jsonl. Example: --from llm",
    ),
    workflow: str = typer.Option(
        None, "--workflow", metavar="NAME",
        help="--from llm: the workflow of conversations imported for the first time. Default: llm. "
        "Example: --workflow adhoc",
    ),
    store_prompts: bool = typer.Option(
        False, "--store-prompts",
        help="--from llm: copy prompt and response text into the ledger too. Default: off (usage "
        "only). Example: --from llm --store-prompts",
    ),
) -> None:
    """Add run records to the ledger (idempotent by run id), or import the `llm` command line's
    logs (--from llm). Exit 1 if any line or response was bad."""
    if source is Source.llm:
        _ingest_llm(ctx, files or [], workflow, store_prompts)
        return
    if workflow is not None or store_prompts:
        raise UsageError(f"{'--workflow' if workflow is not None else '--store-prompts'} is for --from llm")
    if not files:
        raise UsageError("give one or more JSON-lines files, or - for stdin")
    _ingest_jsonl(ctx, files)


def _ingest_jsonl(ctx: typer.Context, files: list[str]) -> None:
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
        with source as stream, progress_bar(f"ingesting {name}", "bytes") as advance:
            size = _size(stream)
            lines = _read_lines(stream, name)
            if size and advance:
                lines = _counted(lines, lambda done, size=size: advance(done, size))
            result = ingest_lines(ledger, lines)
        landed += result.landed
        new += result.new
        bad += len(result.problems)
        for number, message in result.problems:
            typer.echo(f"{name}:{number}: skipped: {message}", err=True)
    again = f" ({landed - new} already in the ledger, written again)" if landed - new else ""
    typer.echo(f"ingested {landed} runs{again}" + (f"; {bad} bad lines skipped" if bad else ""))
    if bad:
        sys.exit(EXIT_FAILURE)


def _ingest_llm(ctx: typer.Context, paths: list[str], workflow: str | None, store_prompts: bool) -> None:
    from pflow_metrics.ledger.llm_logs import WORKFLOW, import_llm_logs, read_llm_logs

    if len(paths) > 1:
        raise UsageError("--from llm reads one database: give at most one PATH")
    if workflow is not None and not workflow.strip():
        raise UsageError("--workflow: must not be empty")
    logs = read_llm_logs(paths[0] if paths else None, store_prompts=store_prompts)  # refused before the ledger opens
    ledger = open_ledger(ctx)
    with progress_bar("importing llm logs", "responses") as advance:
        result = import_llm_logs(ledger, logs, workflow=workflow or WORKFLOW, progress=advance)
    for response_id, message in result.problems:
        typer.echo(warning_line(f"llm response {response_id}: skipped: {message}"), err=True)
    runs = result.runs_new + result.runs_updated
    if result.new:
        line = (f"imported {result.new} new llm responses into {runs} runs "
                f"({result.runs_new} new, {result.runs_updated} updated)")
    else:
        line = "no new llm responses"
    line += f"; {result.already} already in the ledger"
    typer.echo(line + (f"; {len(result.problems)} skipped" if result.problems else ""))
    if result.problems:
        sys.exit(EXIT_FAILURE)


def _size(stream: BinaryIO) -> int | None:
    """The size of a regular file (for the bar); None for a pipe or a terminal."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _counted(lines: Iterator[bytes], report: Callable[[int], None], every: int = 1 << 16) -> Iterator[bytes]:
    """The lines, reporting the bytes read so far every `every` bytes and at the end."""
    done = shown = 0
    for line in lines:
        done += len(line)
        if done - shown >= every:
            report(done)
            shown = done
        yield line
    report(done)


def _read_lines(stream: BinaryIO, name: str) -> Iterator[bytes]:
    try:
        yield from stream
    except OSError as exc:  # the file went away or the disk failed while reading it
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
