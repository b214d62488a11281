"""Importing what the `llm` command line logged (its logs.db) as runs, so ad-hoc prompts and
workflows sit in one ledger.

    logs = read_llm_logs()                  # llm's own logs.db, or a path; store_prompts=False
    result = import_llm_logs(ledger, logs)  # .new, .already, .runs_new, .runs_updated, .problems

What llm logged: current versions (0.36) write each prompt to `turns` (its conversation is
`thread_id`); older ones wrote `responses` (`conversation_id`); an upgraded database holds both.
As `llm logs` does, every turn counts, plus each `responses` row whose id is not also a turn.
Usage columns came with llm 0.19; a database without them is refused, naming them.

One run per conversation: workflow `llm` (or the caller's), the conversation id as the tag
`llm_conversation`, one call per response (node `prompt`), each priced at its own time. The
run id is derived from the database's identity and the conversation id, so an import finds
what an earlier one wrote: a conversation that gained responses since gets them added (its
run is written again as a whole, its earlier calls as they were), one that did not is left
alone. The database's identity is the moment llm first migrated it (the oldest
`_llm_migrations` stamp): it survives moving the file and `llm logs backup`.

The database is opened read-only and read in one short transaction, then closed before the
ledger is written: llm does not use WAL, so a long read would keep its writers waiting.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pflow_metrics.config import llm_logs_db, sqlite_busy_timeout_ms
from pflow_metrics.errors import EXIT_FAILURE, LedgerUnavailable, PflowMetricsError, UsageError
from pflow_metrics.instrumentation.usage import RejectedUsage, call_from_usage
from pflow_metrics.ledger.store import Ledger
from pflow_metrics.record import MAX_DURATION_MS, LLMCallRecord, RunRecord
from pflow_metrics.timewindow import EARLIEST, LATEST

WORKFLOW = "llm"
NODE_ID = "prompt"
CONVERSATION_TAG = "llm_conversation"
# The namespace of run ids derived from (database identity, conversation id); never change it,
# or a second import would not find the runs of the first.
RUN_ID_NAMESPACE = uuid.UUID("5c3e0f7a-2b1d-4c55-9a57-7f1e4c9d2a61")
BATCH = 500  # runs per ledger transaction (and ids per lookup)

# The columns an import reads, per table (resolved_model came later to `responses`: optional).
TURN_COLUMNS = ("id", "thread_id", "model", "resolved_model", "input_tokens", "output_tokens",
                "token_details", "duration_ms", "datetime_utc")
RESPONSE_COLUMNS = ("id", "conversation_id", "model", "input_tokens", "output_tokens",
                    "token_details", "duration_ms", "datetime_utc")
PROMPT_COLUMNS = ("prompt", "response")  # of `responses`, and of `turn_search` for turns


class LogsBusy(PflowMetricsError):
    """llm held its database locked for longer than we wait: try again (exit 1)."""

    exit_code = EXIT_FAILURE


@dataclass
class LoggedResponse:
    """One response as llm logged it, its values as they are in the database."""

    id: str
    conversation: str
    model: Any
    resolved_model: Any
    input_tokens: Any
    output_tokens: Any
    token_details: Any
    duration_ms: Any
    datetime_utc: Any
    prompt: Any = None
    response: Any = None


@dataclass
class LlmImport:
    """What an import did."""

    responses: int = 0  # logged by llm (skipped ones included)
    new: int = 0  # added to the ledger now
    already: int = 0  # in the ledger from an earlier import
    runs_new: int = 0
    runs_updated: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (response id, why it was skipped)


@dataclass
class LlmLogs:
    """What an llm logs database held when it was read."""

    identity: str  # the same for the database wherever it is copied or moved
    responses: list[LoggedResponse]
    store_prompts: bool  # whether the text was read


def import_llm_logs(ledger: Ledger, logs: LlmLogs, *, workflow: str = WORKFLOW,
                    progress: Callable[[int, int], None] | None = None) -> LlmImport:
    """Bring what llm logged (`read_llm_logs`) into `ledger`. `progress(done, total)` hears how
    many responses have been dealt with. Prompt text comes along when it was read."""
    from pflow_metrics.ledger.rollups import refresh

    identity, logged, store_prompts = logs.identity, logs.responses, logs.store_prompts
    result = LlmImport(responses=len(logged))
    conversations: dict[str, list[LoggedResponse]] = {}
    for row in logged:
        conversations.setdefault(row.conversation, []).append(row)
    run_ids = {conversation: run_id(identity, conversation) for conversation in conversations}
    provider = functools.cache(_provider)  # per import: plugins may change between imports
    done = 0
    items = list(conversations.items())
    for start in range(0, len(items), BATCH):
        chunk = items[start:start + BATCH]
        earlier = {record.run_id: record for record in ledger.iter_runs([run_ids[c] for c, _ in chunk])}
        batch = []
        for conversation, rows in chunk:
            record = _run(run_ids[conversation], conversation, rows, earlier.get(run_ids[conversation]),
                          workflow, store_prompts, provider, result)
            if record is not None:
                batch.append(record)
            done += len(rows)
        if batch:
            ledger.finish_runs(batch)
        if progress is not None:
            progress(done, len(logged))
    if result.new:
        try:
            refresh(ledger)  # many days changed at once: their roll-ups now, not in the next report
        except LedgerUnavailable:
            pass  # the next report rebuilds them
    return result


def run_id(identity: str, conversation: str) -> str:
    """The run id of a conversation of the database with this identity: the same on every import."""
    return str(uuid.uuid5(RUN_ID_NAMESPACE, f"{identity}\x00{conversation}"))


def read_llm_logs(path: str | Path | None = None, *, store_prompts: bool = False) -> LlmLogs:
    """Every response llm logged at `path` (default: llm's own logs.db), read read-only in one
    transaction. A database that is not llm's, or lacks a column the import needs, is a
    UsageError (exit 2)."""
    path = Path(path) if path is not None else llm_logs_db()
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not llm's logs database")
    if not path.exists():
        raise UsageError(f"no llm logs database at {path}")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                               timeout=sqlite_busy_timeout_ms() / 1000)
    except sqlite3.Error as exc:
        raise UsageError(f"cannot open {path}: {exc}") from None
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.execute("BEGIN")  # one snapshot: llm may be writing while this reads
        identity, responses = _read(conn, path, store_prompts)
        return LlmLogs(identity, responses, store_prompts)
    except sqlite3.DatabaseError as exc:
        message = str(exc)
        if "locked" in message or "busy" in message:
            raise LogsBusy(f"llm logs database {path} stayed locked by a writer; try again") from None
        if "not a database" in message or "malformed" in message:
            raise UsageError(f"{path} is not an llm logs database ({message})") from None
        raise UsageError(f"cannot read llm logs database {path}: {message}") from None
    finally:
        conn.close()  # ends the read transaction


def _read(conn: sqlite3.Connection, path: Path, store_prompts: bool) -> tuple[str, list[LoggedResponse]]:
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    if "_llm_migrations" not in tables:
        raise UsageError(f"{path} is not an llm logs database (it has no _llm_migrations table)")
    if "turns" not in tables and "responses" not in tables:
        raise UsageError(f"llm logs database {path} has no turns or responses table: "
                         f"it was written by an llm that logged no token usage")
    wanted = {"turns": TURN_COLUMNS, "responses": RESPONSE_COLUMNS}
    if store_prompts:
        wanted["responses"] += PROMPT_COLUMNS
        if "turns" in tables:
            wanted["turn_search"] = ("turn_id", *PROMPT_COLUMNS)
    columns = {}
    for table, needed in wanted.items():
        if table not in tables:
            if table == "turn_search":
                raise UsageError(f"llm logs database {path} has no turn_search table (needed for --store-prompts)")
            continue
        columns[table] = {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}
        missing = [name for name in needed if name not in columns[table]]
        if missing:
            raise UsageError(f"llm logs database {path}: table {table} has no {', '.join(missing)} "
                             f"column{'s' if len(missing) > 1 else ''}; run `llm logs` with llm 0.19 or "
                             f"later once to upgrade it")
    (identity,) = conn.execute("SELECT min(applied_at) FROM _llm_migrations").fetchone()
    logged = []
    if "turns" in columns:
        text = ", s.prompt, s.response" if store_prompts else ""
        join = " LEFT JOIN turn_search s ON s.turn_id = t.id" if store_prompts else ""
        logged += _rows(conn.execute(
            "SELECT t.id, t.thread_id, t.model, t.resolved_model, t.input_tokens, t.output_tokens, "
            f"t.token_details, t.duration_ms, t.datetime_utc{text} FROM turns t{join}"))
    if "responses" in columns:
        resolved = "r.resolved_model" if "resolved_model" in columns["responses"] else "NULL"
        text = ", r.prompt, r.response" if store_prompts else ""
        only = " WHERE r.id NOT IN (SELECT id FROM turns)" if "turns" in columns else ""
        logged += _rows(conn.execute(
            f"SELECT r.id, r.conversation_id, r.model, {resolved}, r.input_tokens, r.output_tokens, "
            f"r.token_details, r.duration_ms, r.datetime_utc{text} FROM responses r{only}"))
    return str(identity or ""), logged


def _rows(cursor: Iterable[tuple]) -> list[LoggedResponse]:
    rows = []
    for values in cursor:
        row = LoggedResponse(*values)
        row.id = str(row.id)
        # A response without a conversation (none in practice) is a conversation of its own.
        row.conversation = str(row.conversation) if row.conversation is not None else row.id
        rows.append(row)
    return rows


# -- one conversation -> one run ----------------------------------------------------------------


def _run(run_id: str, conversation: str, rows: list[LoggedResponse], earlier: RunRecord | None,
         workflow: str, store_prompts: bool, provider: Callable[[str], str | None],
         result: LlmImport) -> RunRecord | None:
    """The conversation's run to write, or None when the ledger has every response already.
    A run already there keeps its calls as stored (cost, rates, prompts) and its workflow and
    tags; calls the database no longer holds stay too: the ledger outlives llm's logs."""
    from pflow_metrics import __version__
    from pflow_metrics.redaction import redact_record

    stored = Counter(call.started_at for call in earlier.llm_calls) if earlier else Counter()
    new_calls = []
    for row in rows:
        try:
            started_at = _moment(row.datetime_utc)
            if stored[started_at]:  # in the ledger already: not built nor priced again
                stored[started_at] -= 1
                result.already += 1
                continue
            new_calls.append(_call(row, started_at, store_prompts, provider))
        except RejectedUsage as problem:
            result.problems.append((row.id, str(problem)))
    if not new_calls:
        return None
    result.new += len(new_calls)
    if earlier is None:
        result.runs_new += 1
        record = RunRecord(run_id=run_id, workflow=workflow, status="success", tags={CONVERSATION_TAG: conversation},
                           tool_version=__version__)
    else:
        result.runs_updated += 1
        record = earlier
    record.llm_calls = sorted([*record.llm_calls, *new_calls], key=lambda call: call.started_at)
    _span(record)
    return redact_record(record)


def _span(record: RunRecord) -> None:
    """A conversation's run starts with its first response and ends when its last one did; its
    duration is the time its responses took, not the days that may lie between them."""
    calls = record.llm_calls
    record.started_at = calls[0].started_at
    record.ended_at = max(_end(call) for call in calls)
    record.duration_ms = min(float(sum(call.duration_ms or 0 for call in calls)), MAX_DURATION_MS)


def _end(call: LLMCallRecord) -> datetime:
    """When the call ended, kept inside the ledger's range (a call logged on 9998-12-31 that
    took a year ends on its last moment)."""
    last = LATEST - timedelta(microseconds=1)
    try:
        return min(call.started_at + timedelta(milliseconds=call.duration_ms or 0), last)
    except OverflowError:
        return last


def _call(row: LoggedResponse, started_at: datetime, store_prompts: bool,
          provider: Callable[[str], str | None]) -> LLMCallRecord:
    """The response as a priced call; RejectedUsage says why it cannot be one."""
    from pflow_metrics.pricing import price_call

    entry = {
        "model": row.model,
        "resolved_model": row.resolved_model,
        "provider": provider(row.model) if isinstance(row.model, str) else None,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "details": _details(row.token_details),
        "duration_ms": row.duration_ms,
    }
    call = call_from_usage(entry, NODE_ID, "workflow")  # the provider details -> our five buckets
    call.started_at = started_at
    if store_prompts:
        call.prompt = row.prompt if isinstance(row.prompt, str) and row.prompt else None
        call.response = row.response if isinstance(row.response, str) and row.response else None
    if row.input_tokens is None and row.output_tokens is None:
        return call  # no usage logged (a model that reports none): its cost is unknown, not $0
    price_call(call, at=started_at)  # the prices of the response's own day
    return call


def _moment(value: Any) -> datetime:
    """llm's datetime_utc: ISO text, with +00:00 since 0.36 and naive UTC before."""
    try:
        moment = datetime.fromisoformat(value)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (TypeError, ValueError, OverflowError):
        raise RejectedUsage(f"datetime_utc is not a time: {value!r:.60}") from None
    if not EARLIEST <= moment < LATEST:
        raise RejectedUsage(f"datetime_utc lies outside {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}: {value!r:.60}")
    return moment


def _details(value: Any) -> dict:
    """token_details: a JSON object of the provider's own usage fields, or nothing."""
    if value is None or value == "":
        return {}
    try:
        details = json.loads(value)
    except (TypeError, ValueError, RecursionError):
        details = None
    if not isinstance(details, dict):
        raise RejectedUsage(f"token_details is not a JSON object: {str(value)!r:.60}")
    return details


def _provider(model_id: str) -> str | None:
    """The plugin serving the model here (as for captured calls), or None: the database may
    come from a machine with other plugins, and a plugin that fails to load names nothing."""
    try:
        import llm

        from pflow_metrics.instrumentation.llm_capture import provider_of

        return provider_of(llm.get_model(model_id))
    except Exception:  # noqa: BLE001 - unknown model, broken plugin: no provider, priced by name
        return None
