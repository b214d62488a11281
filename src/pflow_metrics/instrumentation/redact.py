"""Values made safe for a trace file: secrets redacted, large values truncated with their size,
bytes as a size, cycles and unserializable objects as a short repr. Always valid JSON.

Every walk is bounded (string length, items per container, depth, objects per value), so
serializing a value costs at most a constant, whatever its size. `fingerprint` walks the same
bounded part without building anything, so the trace can tell cheaply whether a value changed.

What is a secret is decided in `pflow_metrics.redaction`: a value under a key that
`is_secret_key` names is replaced whole, and every string (dict keys too) goes through
`redact_text`, which masks secrets inside text.
"""

from __future__ import annotations

import functools
import json
import operator
from itertools import islice
from typing import Any

# The text redactor lives in a neutral module the ledger and the CLI use too; these names are
# re-exported for the trace and its callers.
from pflow_metrics.redaction import REDACTED, SECRET_KEY, WINDOW_MARGIN, is_secret_key, redact_text

__all__ = ["REDACTED", "SECRET_KEY", "Fingerprint", "dumps", "is_secret_key", "redact_text", "safe", "safe_key", "safe_text"]

MAX_STRING = 4_000
MAX_ITEMS = 200
MAX_DEPTH = 12
MAX_OBJECTS = 5_000  # per serialized value
_SCALARS = (type(None), bool, int, float, str, bytes)
_SCALAR_TYPES = frozenset(_SCALARS)


def safe(value: Any, max_string: int = MAX_STRING) -> Any:
    """A JSON-ready copy of `value`, made now (later changes to `value` do not leak in)."""
    return _Walk(max_string).safe(value, 0)


def dumps(value: Any, max_string: int = MAX_STRING) -> str:
    return json.dumps(safe(value, max_string), ensure_ascii=False)


def safe_text(value: str | None, max_string: int = MAX_STRING) -> str | None:
    """`value` redacted, then cut at `max_string` characters (its size said)."""
    return None if value is None else _text(value, max_string)


class _Walk:
    def __init__(self, max_string: int):
        self.max_string = max_string
        self.active: set[int] = set()
        self.budget = MAX_OBJECTS

    def safe(self, value: Any, depth: int) -> Any:
        self.budget -= 1
        if value is None or isinstance(value, (bool, int)):
            return value
        if isinstance(value, float):
            return value if value == value and abs(value) != float("inf") else repr(value)
        if isinstance(value, str):
            return _text(value, self.max_string)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return f"<bytes: {len(value)}>"
        if depth >= MAX_DEPTH or self.budget <= 0:
            return f"<{type(value).__name__}: truncated>"
        if id(value) in self.active:
            return f"<cycle: {type(value).__name__}>"
        if isinstance(value, dict):
            return self._mapping(value, depth)
        if isinstance(value, (list, tuple, set, frozenset)):
            return self._sequence(value, depth)
        return _short_repr(value, self.max_string)

    def _mapping(self, value: dict, depth: int) -> dict:
        self.active.add(id(value))
        try:
            result = {}
            for index, (key, item) in enumerate(list(value.items())):
                if index >= MAX_ITEMS:
                    result["…"] = f"[truncated: {len(value)} keys]"
                    break
                name = safe_key(key)
                result[name] = REDACTED if is_secret_key(name) else self.safe(item, depth + 1)
            return result
        finally:
            self.active.discard(id(value))

    def _sequence(self, value: Any, depth: int) -> list:
        self.active.add(id(value))
        try:
            items = list(value)
            result = [self.safe(item, depth + 1) for item in items[:MAX_ITEMS]]
            if len(items) > MAX_ITEMS:
                result.append(f"[truncated: {len(items)} items]")
            return result
        finally:
            self.active.discard(id(value))


def _short_repr(value: Any, max_string: int) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<unprintable {type(value).__name__}>"
    return _text(text if len(text) <= 200 else text[:200] + "…", max_string)


def safe_key(key: Any) -> str:
    """A dict key as the trace shows it: a string, redacted (a key can be a secret itself)."""
    if not isinstance(key, str):
        return _short_repr(key, 200)
    return redact_text(key) if len(key) > 200 else _redacted_key(key)


@functools.lru_cache(maxsize=8192)
def _redacted_key(key: str) -> str:
    return redact_text(key)


def _text(value: str, max_string: int) -> str:
    size = len(value)
    if size <= max_string:
        return redact_text(value)
    # Only what is shown is redacted (a bounded cost, whatever the size), with a margin so
    # that a secret running past the cut is still recognized and its shown part masked.
    shown = redact_text(value[: max_string + WINDOW_MARGIN])
    return f"{shown[:max_string]}…[truncated: {size} chars]"


class Fingerprint:
    """The objects and container sizes a bounded walk of a value sees. Two fingerprints are
    equal when the same objects sit in the same places with the same sizes: immutable leaves
    are compared by identity (kept alive here, so their ids cannot be reused), containers by
    their size and contents. A change deep inside a container is therefore seen, without
    serializing anything."""

    __slots__ = ("objects", "sizes")

    def __init__(self, value: Any):
        self.objects: list[Any] = []
        self.sizes: list[int] = []
        self._walk(value, 0, set())

    def _walk(self, value: Any, depth: int, active: set[int]) -> None:
        self.objects.append(value)
        if isinstance(value, _SCALARS) or depth >= MAX_DEPTH or len(self.objects) > MAX_OBJECTS:
            return
        if id(value) in active:
            return
        if isinstance(value, dict):
            self.sizes.append(len(value))
            self.objects.extend(islice(value, MAX_ITEMS))
            children = list(islice(value.values(), MAX_ITEMS))
        elif isinstance(value, (list, tuple, set, frozenset)):
            self.sizes.append(len(value))
            children = list(islice(value, MAX_ITEMS))
        else:
            return
        if _SCALAR_TYPES.issuperset(map(type, children)):  # leaves only: no walk, C-speed
            self.objects.extend(children)
            return
        active.add(id(value))
        for child in children:
            self._walk(child, depth + 1, active)
        active.discard(id(value))

    def same_as(self, other: Fingerprint) -> bool:
        return (
            self.sizes == other.sizes
            and len(self.objects) == len(other.objects)
            and all(map(operator.is_, self.objects, other.objects))
        )
