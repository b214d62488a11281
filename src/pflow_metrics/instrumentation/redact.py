"""Values made safe for a trace file: secrets redacted, large values truncated with their size,
bytes as a size, cycles and unserializable objects as a short repr. Always valid JSON.

Every walk is bounded (string length, items per container, depth, objects per value), so
serializing a value costs at most a constant, whatever its size. `fingerprint` walks the same
bounded part without building anything, so the trace can tell cheaply whether a value changed.
"""

from __future__ import annotations

import json
import operator
import re
from itertools import islice
from typing import Any

REDACTED = "[REDACTED]"
MAX_STRING = 4_000
MAX_ITEMS = 200
MAX_DEPTH = 12
MAX_OBJECTS = 5_000  # per serialized value
SECRET_KEY = re.compile(
    r"api[_-]?key|token|secret|passw(or)?d|authorization|cookie|credential|private[_-]?key|session[_-]?id",
    re.IGNORECASE,
)
SECRET_VALUE = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+[A-Za-z0-9._\-~+/=]{8,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|AKIA[0-9A-Z]{16}|xox[abpr]-[A-Za-z0-9\-]{10,})"
)
_SECRET_VALUE_HINTS = ("sk-", "Bearer", "AKIA", "gh", "xox")
# Counts of tokens are not secrets, whatever their key says.
NOT_SECRET_KEY = re.compile(r"_tokens$|^tokens$|token_count|max_tokens|tokens_", re.IGNORECASE)
_SCALARS = (type(None), bool, int, float, str, bytes)
_SCALAR_TYPES = frozenset(_SCALARS)


def is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and bool(SECRET_KEY.search(key)) and not NOT_SECRET_KEY.search(key)


def safe(value: Any, max_string: int = MAX_STRING) -> Any:
    """A JSON-ready copy of `value`, made now (later changes to `value` do not leak in)."""
    return _Walk(max_string).safe(value, 0)


def dumps(value: Any, max_string: int = MAX_STRING) -> str:
    return json.dumps(safe(value, max_string), ensure_ascii=False)


def safe_text(value: str | None, max_string: int = MAX_STRING) -> str | None:
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
                name = key if isinstance(key, str) else _short_repr(key, 200)
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


def _text(value: str, max_string: int) -> str:
    if any(hint in value for hint in _SECRET_VALUE_HINTS):
        value = SECRET_VALUE.sub(REDACTED, value)
    if len(value) > max_string:
        return f"{value[:max_string]}…[truncated: {len(value)} chars]"
    return value


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
