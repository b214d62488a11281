"""WorkflowTraceCollector: a JSON-lines trace written as the run goes.

    $PFLOW_HOME/debug/workflow-trace-<name>-<UTC time>-<run id prefix>.jsonl   (mode 0600)

A header line, one line per node written and flushed when the node ends, a summary line at the
end: a killed run keeps every finished node. Values are serialized when the event happens
(never aliased to live objects), redacted and truncated by `redact.safe`.

The cost of a node event grows with what the node changed, not with the size of the store:
each top-level key keeps a cheap fingerprint (identity, size, and the identity of its items
one level down), and only keys whose fingerprint changed are serialized again. Changes deeper
than one level inside an unchanged container are not seen.
"""

from __future__ import annotations

import json
import os
import re
import traceback
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from pflow_metrics.config import PRIVATE_FILE_MODE, home_subdir
from pflow_metrics.instrumentation.redact import MAX_ITEMS, safe
from pflow_metrics.record import utcnow

DEFAULT_KEEP = 200
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


def sanitize_name(name: str) -> str:
    """A workflow name fit for a file name: no separators, `..` or control characters."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")
    return cleaned[:60] or "workflow"


def _fingerprint(value: Any) -> tuple:
    if isinstance(value, dict):
        return (id(value), len(value), tuple((k, id(v)) for k, v in list(value.items())[:MAX_ITEMS]))
    if isinstance(value, list):
        return (id(value), len(value), tuple(id(v) for v in value[:MAX_ITEMS]))
    return (id(value),)


def _keep_newest(folder: Path, keep: int) -> None:
    traces = sorted(folder.glob("*-trace-*.jsonl"), key=lambda p: p.stat().st_mtime)
    for old in traces[: max(0, len(traces) - keep)]:
        old.unlink(missing_ok=True)


class WorkflowTraceCollector:
    def __init__(self, workflow: str, run_id: str):
        folder = home_subdir("debug")
        keep = int(os.environ.get("PFLOW_TRACE_KEEP") or DEFAULT_KEEP)
        _keep_newest(folder, max(keep - 1, 0))
        self.max_bytes = int(os.environ.get("PFLOW_TRACE_MAX_BYTES") or DEFAULT_MAX_BYTES)
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
        self.path = folder / f"workflow-trace-{sanitize_name(workflow)}-{stamp}-{run_id[:8]}.jsonl"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        self._out = os.fdopen(descriptor, "w", encoding="utf-8")
        self._written = 0
        self._capped = False
        self._known: dict[str, tuple[tuple, Any]] = {}
        self._write({"event": "header", "workflow": workflow, "run_id": run_id, "started_at": utcnow().isoformat(),
                     "format": 1})

    def _write(self, event: dict[str, Any], always: bool = False) -> None:
        if self._out.closed or (self._capped and not always):
            return
        line = json.dumps(event, ensure_ascii=False, default=str) + "\n"
        if not always and self._written + len(line) > self.max_bytes:
            self._capped = True
            line = json.dumps({"event": "capped", "max_bytes": self.max_bytes}) + "\n"
        self._out.write(line)
        self._out.flush()
        self._written += len(line)

    def node_started(self, shared: MutableMapping) -> None:
        """Bring the key cache up to date with the store as the node finds it."""
        self._diff(shared)

    def node_finished(self, node, calls: list, shared: MutableMapping, error: BaseException | None,
                      template_resolutions: Any = None) -> None:
        before, changes = self._diff(shared)
        event: dict[str, Any] = {
            "event": "node",
            "at": utcnow().isoformat(),
            **node.to_dict(),
            "shared_before": before,
            "changes": changes,
            "llm_calls": [{**call.to_dict(), "prompt": safe(call.prompt), "response": safe(call.response)}
                          for call in calls],
        }
        if template_resolutions:
            event["template_resolutions"] = safe(template_resolutions)
        if error is not None:
            event["traceback"] = safe("".join(traceback.format_exception(error)))
        self._write(event)

    def _diff(self, shared: MutableMapping) -> tuple[dict[str, Any], dict[str, Any]]:
        """(old values of changed keys, {"added", "removed", "modified"}) since the last call."""
        before: dict[str, Any] = {}
        added: dict[str, Any] = {}
        modified: dict[str, Any] = {}
        current = {key if isinstance(key, str) else repr(key): value for key, value in dict(shared).items()}
        for key, value in current.items():
            if key == "__llm_calls__":
                continue
            print_now = _fingerprint(value)
            known = self._known.get(key)
            if known is not None and known[0] == print_now:
                continue
            serialized = safe({key: value})[key]
            self._known[key] = (print_now, serialized)
            if known is None:
                added[key] = serialized
            else:
                before[key] = known[1]
                modified[key] = serialized
        removed = [key for key in self._known if key not in current]
        for key in removed:
            before[key] = self._known.pop(key)[1]
        return before, {"added": added, "removed": removed, "modified": modified}

    def finish(self, summary: dict[str, Any], status: str, error: str | None) -> None:
        self._write({"event": "summary", "at": utcnow().isoformat(), "status": status, "error": error,
                     "metrics": summary}, always=True)
        self._out.close()
