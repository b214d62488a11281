"""WorkflowTraceCollector: a JSON-lines trace of one run, written as the run goes.

`$PFLOW_HOME/debug/workflow-trace-<name>-<UTC time>-<run id prefix>.jsonl`, mode 0600: a header
line, one line per node (written and flushed when the node ends, so a killed run keeps every
finished node), and a summary line.

The shared store before each node is serialized at that moment, as a chain of store lines:
the first holds the whole store, each later one only the top-level keys set or removed since
the one before, and a node line names the store line it started on (`store_before`).
`read_trace` rebuilds every node's `shared_before` from the chain. So the cost follows what
changed, not the store size: every key keeps its serialized form and a Fingerprint, and only
keys whose fingerprint moved are serialized and written again (every serialization is bounded,
see redact.py). Node lines also carry their own changes. Retention: at most `PFLOW_TRACE_KEEP`
(default 200) trace files are kept, and one file stops taking store snapshots past
`PFLOW_TRACE_MAX_BYTES` (default 50 MB).
"""

from __future__ import annotations

import json
import os
import re
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pflow_metrics import money
from pflow_metrics.config import PRIVATE_FILE_MODE, home_subdir, trace_keep, trace_max_bytes
from pflow_metrics.errors import UsageError
from pflow_metrics.instrumentation.redact import Fingerprint, dumps, is_secret_key, safe, safe_key, safe_text
from pflow_metrics.record import LLMCallRecord, NodeRecord, utcnow

TRACE_PREFIX = "workflow-trace-"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def sanitized_name(workflow: str) -> str:
    """A file-name part: no path separators, `..`, control characters; at most 60 characters."""
    name = _UNSAFE_NAME.sub("-", workflow).replace("..", "-").strip(".-")
    return name[:60] or "workflow"


class _KeyState:
    __slots__ = ("fingerprint", "json")

    def __init__(self, value: Any, key: str):
        self.fingerprint = Fingerprint(value)
        self.json = json.dumps("[REDACTED]") if is_secret_key(key) else dumps(value)


class StoreSnapshots:
    """Serialized snapshots of a shared store that reserialize only the keys that changed."""

    def __init__(self) -> None:
        self.keys: dict[str, _KeyState] = {}

    def refresh(self, shared: Mapping) -> tuple[dict[str, _KeyState], list[str], list[str], list[str]]:
        """Bring the cache up to date: (state, added, removed, modified keys)."""
        previous = self.keys
        current: dict[str, _KeyState] = {}
        added, modified = [], []
        for raw_key, value in list(shared.items()):
            key = raw_key if isinstance(raw_key, str) else repr(raw_key)
            known = previous.get(key)
            if known is not None and known.fingerprint.same_as(Fingerprint(value)):
                current[key] = known
                continue
            current[key] = _KeyState(value, key)
            (modified if known is not None else added).append(key)
        removed = [key for key in previous if key not in current]
        self.keys = current
        return current, added, removed, modified

    @staticmethod
    def as_json(state: dict[str, _KeyState], keys: list[str] | None = None) -> str:
        chosen = state if keys is None else keys
        return "{" + ",".join(f"{json.dumps(safe_key(key), ensure_ascii=False)}:{state[key].json}" for key in chosen) + "}"


class WorkflowTraceCollector:
    def __init__(self, workflow: str, run_id: str, header: dict[str, Any] | None = None):
        directory = home_subdir("debug")
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
        self.path: Path = directory / f"{TRACE_PREFIX}{sanitized_name(workflow)}-{stamp}-{run_id[:8]}.jsonl"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        self._out = os.fdopen(descriptor, "w", encoding="utf-8")
        self.max_bytes = trace_max_bytes()
        self.written = 0
        self.capped = False
        self.snapshots = StoreSnapshots()
        self.written_state: dict[str, _KeyState] | None = None  # the store as of the last store line
        self.store_lines = 0
        self._before: dict[int, int] = {}  # id(observation) -> the store line it started on
        self._write_line(json.dumps({"type": "header", "workflow": safe_text(workflow), "run_id": run_id,
                                     "started_at": utcnow().isoformat(), **safe(header or {})}, ensure_ascii=False))
        prune_traces(directory, trace_keep(), keep=self.path)

    def node_started(self, token: int, shared: Mapping) -> None:
        if self.capped:
            return
        state, *_ = self.snapshots.refresh(shared)
        written = self.written_state
        if written is None:
            line = self._store_line(state, list(state), [])
        else:
            # Unchanged keys keep their very _KeyState object: identity says what to write.
            changed = [key for key, known in state.items() if written.get(key) is not known]
            removed = [key for key in written if key not in state]
            line = self._store_line(state, changed, removed) if changed or removed else None
        if line is not None:
            if self.written + len(line) > self.max_bytes:
                self._drop_snapshots()
                return
            self._write_line(line)
            self.written_state = state
            self.store_lines += 1
        self._before[token] = self.store_lines - 1

    def _store_line(self, state: dict[str, _KeyState], keys: list[str], removed: list[str]) -> str:
        return (f'{{"type":"store","store":{self.store_lines},"set":{self.snapshots.as_json(state, keys)},'
                f'"removed":{_key_list(removed)}}}')

    def _drop_snapshots(self) -> None:
        self.capped = True
        self._before.clear()

    def node_finished(self, token: int, node: NodeRecord, calls: list[LLMCallRecord], shared: Mapping,
                      error: BaseException | None, resolutions: dict | None, entries: list[dict[str, Any]]) -> None:
        before = self._before.pop(token, None)
        event: dict[str, Any] = {"type": "node", "at": utcnow().isoformat(), **node.to_dict()}
        if event.get("error"):  # the session redacted it; a collector used alone gets it done here
            event["error"] = safe_text(event["error"], 20_000)
        if error is not None:
            event["traceback"] = safe_text("".join(traceback.format_exception(error)), 20_000)
        if resolutions:
            event["template_resolutions"] = safe(resolutions)
        if calls:
            event["llm_calls"] = [_call_event(call, entry) for call, entry in zip(calls, entries)]
        line = money.dumps(event, ensure_ascii=False, fallback=str)
        if before is not None and not self.capped:
            state, added, removed, modified = self.snapshots.refresh(shared)
            changes = (f'{{"added":{self.snapshots.as_json(state, added)},"removed":'
                       f'{_key_list(removed)},"modified":{self.snapshots.as_json(state, modified)}}}')
            line = f'{line[:-1]},"store_before":{before},"changes":{changes}}}'
            if self.written + len(line) > self.max_bytes:
                self._drop_snapshots()
        if self.capped:
            event["snapshots_dropped"] = f"trace reached its size cap of {self.max_bytes} bytes"
            line = money.dumps(event, ensure_ascii=False, fallback=str)
        self._write_line(line)

    def finish(self, summary: dict[str, Any]) -> None:
        if isinstance(summary.get("error"), str):
            summary = {**summary, "error": safe_text(summary["error"], 20_000)}
        try:
            self._write_line(money.dumps({"type": "summary", **summary}, ensure_ascii=False, fallback=str))
        finally:
            self._out.close()

    def _write_line(self, line: str) -> None:
        if self._out.closed:
            return
        self._out.write(line + "\n")
        self._out.flush()
        self.written += len(line) + 1


MAX_LINE_DEPTH = 64  # containers within a trace line; the writer's values stop at redact.MAX_DEPTH


def read_trace(path: Path) -> list[dict[str, Any]]:
    """The header, node and summary events of a trace file, each node with its `shared_before`
    rebuilt from the store lines. A half-written last line (a killed run) is left out.

    A file that is not a trace is a UsageError naming the line; the fields of an event are
    handed over as they are, of whatever JSON type (readers must not trust them)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read trace {path}: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    # Lines end in "\n" only: values may hold U+2028, U+0085 and the like, which splitlines() splits on.
    lines = text.split("\n")
    if lines and not lines[-1]:
        lines.pop()
    events: list[dict[str, Any]] = []
    stores: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        event = _trace_event(path, number, line, last=number == len(lines))
        if event is None:
            break
        if event["type"] == "store":
            added, removed = event.get("set") or {}, event.get("removed") or []
            if not isinstance(added, dict) or not isinstance(removed, list):
                raise UsageError(f"{path}:{number}: not a trace line (a store line has an object \"set\" "
                                 f"and a list \"removed\")")
            store = {**(stores[-1] if stores else {}), **added}
            for key in removed:
                if isinstance(key, str):
                    store.pop(key, None)
            stores.append(store)
            continue
        before = event.pop("store_before", None)
        if type(before) is int and 0 <= before < len(stores):
            event["shared_before"] = stores[before]
        events.append(event)
    if not events or events[0].get("type") != "header":
        raise UsageError(f"{path}: not a workflow trace (no header line)")
    return events


def _trace_event(path: Path, number: int, line: str, last: bool) -> dict[str, Any] | None:
    """One line as an event (a JSON object with a text "type"); None for a half-written last line."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        if last:
            return None
        raise UsageError(f"{path}:{number}: not a trace line (invalid JSON)") from None
    except RecursionError:
        raise UsageError(f"{path}:{number}: not a trace line (nested deeper than {MAX_LINE_DEPTH} levels)") from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise UsageError(f"{path}:{number}: not a trace line ({' '.join(str(exc).split())[:80]})") from None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise UsageError(f"{path}:{number}: not a trace line (no event type)")
    if _nested_deeper(event, MAX_LINE_DEPTH):
        raise UsageError(f"{path}:{number}: not a trace line (nested deeper than {MAX_LINE_DEPTH} levels)")
    return event


def _nested_deeper(value: Any, limit: int) -> bool:
    """Whether containers nest more than `limit` levels in `value` (without recursing)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _key_list(keys: list[str]) -> str:
    return json.dumps([safe_key(key) for key in keys], ensure_ascii=False)


def _call_event(call: LLMCallRecord, entry: dict[str, Any]) -> dict[str, Any]:
    data = {key: value for key, value in call.to_dict().items() if key not in ("prompt", "response", "node_id")}
    for key in ("prompt", "system", "response"):
        if isinstance(entry, dict) and isinstance(entry.get(key), str):
            data[key] = safe_text(entry[key])
    return data


def prune_traces(directory: Path, limit: int, keep: Path | None = None) -> None:
    """Delete the oldest workflow traces beyond `limit` files."""
    try:
        traces = sorted(directory.glob(f"{TRACE_PREFIX}*.jsonl"), key=lambda p: p.stat().st_mtime_ns)
    except OSError:
        return
    for old in traces[: max(0, len(traces) - limit)]:
        if old != keep:
            try:
                old.unlink()
            except OSError:
                pass
