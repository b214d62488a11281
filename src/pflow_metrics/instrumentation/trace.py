"""WorkflowTraceCollector: a JSON-lines trace of one run, written as the run goes.

`$PFLOW_HOME/debug/workflow-trace-<name>-<UTC time>-<run id prefix>.jsonl`, mode 0600: a header
line, one line per node (written and flushed when the node ends, so a killed run keeps every
finished node), and a summary line.

Each node line holds the shared store before the node, serialized at that moment, and what the
node changed. The cost follows what changed, not the store size: every top-level key keeps its
serialized form and a Fingerprint, and only keys whose fingerprint moved are serialized again
(every serialization is bounded, see redact.py). Retention: at most `PFLOW_TRACE_KEEP` (default
200) trace files are kept, and one file stops taking store snapshots past
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

from pflow_metrics.config import PRIVATE_FILE_MODE, home_subdir
from pflow_metrics.instrumentation.redact import Fingerprint, dumps, is_secret_key, safe, safe_text
from pflow_metrics.record import LLMCallRecord, NodeRecord, utcnow

TRACE_PREFIX = "workflow-trace-"
DEFAULT_KEEP = 200
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def sanitized_name(workflow: str) -> str:
    """A file-name part: no path separators, `..`, control characters; at most 60 characters."""
    name = _UNSAFE_NAME.sub("-", workflow).replace("..", "-").strip(".-")
    return name[:60] or "workflow"


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


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
        return "{" + ",".join(f"{json.dumps(key, ensure_ascii=False)}:{state[key].json}" for key in chosen) + "}"


class WorkflowTraceCollector:
    def __init__(self, workflow: str, run_id: str, header: dict[str, Any] | None = None):
        directory = home_subdir("debug")
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
        self.path: Path = directory / f"{TRACE_PREFIX}{sanitized_name(workflow)}-{stamp}-{run_id[:8]}.jsonl"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        self._out = os.fdopen(descriptor, "w", encoding="utf-8")
        self.max_bytes = _env_int("PFLOW_TRACE_MAX_BYTES", DEFAULT_MAX_BYTES)
        self.written = 0
        self.capped = False
        self.snapshots = StoreSnapshots()
        self._before: dict[int, str] = {}  # id(observation) -> store before, as JSON
        self._write_line(json.dumps({"type": "header", "workflow": workflow, "run_id": run_id,
                                     "started_at": utcnow().isoformat(), **(header or {})}, ensure_ascii=False))
        prune_traces(directory, _env_int("PFLOW_TRACE_KEEP", DEFAULT_KEEP), keep=self.path)

    def node_started(self, token: int, shared: Mapping) -> None:
        if self.capped:
            return
        state, *_ = self.snapshots.refresh(shared)
        self._before[token] = self.snapshots.as_json(state)

    def node_finished(self, token: int, node: NodeRecord, calls: list[LLMCallRecord], shared: Mapping,
                      error: BaseException | None, resolutions: dict | None, entries: list[dict[str, Any]]) -> None:
        before = self._before.pop(token, None)
        event: dict[str, Any] = {"type": "node", "at": utcnow().isoformat(), **node.to_dict()}
        if error is not None:
            event["traceback"] = safe_text("".join(traceback.format_exception(error)), 20_000)
        if resolutions:
            event["template_resolutions"] = safe(resolutions)
        if calls:
            event["llm_calls"] = [_call_event(call, entry) for call, entry in zip(calls, entries)]
        line = json.dumps(event, ensure_ascii=False, default=str)
        if before is not None and not self.capped:
            state, added, removed, modified = self.snapshots.refresh(shared)
            changes = (f'{{"added":{self.snapshots.as_json(state, added)},"removed":'
                       f'{json.dumps(removed, ensure_ascii=False)},"modified":{self.snapshots.as_json(state, modified)}}}')
            line = f'{line[:-1]},"shared_before":{before},"changes":{changes}}}'
        if self.written + len(line) > self.max_bytes and not self.capped:
            self.capped = True
            self._before.clear()
            event["snapshots_dropped"] = f"trace reached its size cap of {self.max_bytes} bytes"
            line = json.dumps(event, ensure_ascii=False, default=str)
        self._write_line(line)

    def finish(self, summary: dict[str, Any]) -> None:
        try:
            self._write_line(json.dumps({"type": "summary", **summary}, ensure_ascii=False, default=str))
        finally:
            self._out.close()

    def _write_line(self, line: str) -> None:
        if self._out.closed:
            return
        self._out.write(line + "\n")
        self._out.flush()
        self.written += len(line) + 1


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
