"""Reading spans back from Phoenix's REST answers."""

from __future__ import annotations

from datetime import datetime, timedelta


def by_name(spans: list[dict]) -> dict[str, list[dict]]:
    named: dict[str, list[dict]] = {}
    for span in spans:
        named.setdefault(span["name"], []).append(span)
    return named


def one(spans: list[dict], name: str) -> dict:
    [span] = [span for span in spans if span["name"] == name]
    return span


def start(span: dict) -> datetime:
    return datetime.fromisoformat(span["start_time"])


def end(span: dict) -> datetime:
    return datetime.fromisoformat(span["end_time"])


def trace_hex(run_id: str) -> str:
    return run_id.replace("-", "")


def node_start(record, node) -> datetime:
    return record.started_at + timedelta(milliseconds=node.start_offset_ms)


def node_end(record, node) -> datetime:
    return node_start(record, node) + timedelta(milliseconds=node.duration_ms)
