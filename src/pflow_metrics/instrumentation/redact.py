"""Values made safe for a trace file: secrets redacted, large values truncated with their size,
bytes as a size, cycles and unserializable objects as a short repr. Always valid JSON."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[REDACTED]"
MAX_STRING = 4_000
MAX_ITEMS = 200
MAX_DEPTH = 12
SECRET_KEY = re.compile(r"api[_-]?key|token|secret|password|passwd|authorization|cookie|credential|private[_-]?key",
                        re.IGNORECASE)
SECRET_VALUE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+[A-Za-z0-9._\-~+/=]{8,}|gh[pousr]_[A-Za-z0-9]{20,}"
                          r"|AKIA[0-9A-Z]{16}|xox[abpr]-[A-Za-z0-9\-]{10,})")
# Counts of tokens are not secrets, whatever their key says.
NOT_SECRET_KEY = re.compile(r"_tokens$|^tokens$|token_count|max_tokens", re.IGNORECASE)


def is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and bool(SECRET_KEY.search(key)) and not NOT_SECRET_KEY.search(key)


def safe(value: Any, max_string: int = MAX_STRING) -> Any:
    """A JSON-ready copy of `value`, made now (later changes to `value` do not leak in)."""
    return _safe(value, max_string, 0, set())


def _safe(value: Any, max_string: int, depth: int, active: set[int]) -> Any:
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else repr(value)
    if isinstance(value, str):
        return _text(value, max_string)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<bytes: {len(value)}>"
    if depth >= MAX_DEPTH:
        return f"<{type(value).__name__}: too deep>"
    if id(value) in active:
        return f"<cycle: {type(value).__name__}>"
    if isinstance(value, dict):
        active.add(id(value))
        try:
            result = {}
            for index, (key, item) in enumerate(value.items()):
                if index >= MAX_ITEMS:
                    result["…"] = f"[truncated: {len(value)} keys]"
                    break
                name = key if isinstance(key, str) else repr(key)
                result[name] = REDACTED if is_secret_key(name) else _safe(item, max_string, depth + 1, active)
            return result
        finally:
            active.discard(id(value))
    if isinstance(value, (list, tuple, set, frozenset)):
        active.add(id(value))
        try:
            items = list(value)
            result = [_safe(item, max_string, depth + 1, active) for item in items[:MAX_ITEMS]]
            if len(items) > MAX_ITEMS:
                result.append(f"[truncated: {len(items)} items]")
            return result
        finally:
            active.discard(id(value))
    try:
        text = repr(value)
    except Exception:
        text = f"<unprintable {type(value).__name__}>"
    return _text(text if len(text) <= 200 else text[:200] + "…", max_string)


def _text(value: str, max_string: int) -> str:
    value = SECRET_VALUE.sub(REDACTED, value) if ("sk-" in value or "Bearer" in value or
                                                 "AKIA" in value or "gh" in value or "xox" in value) else value
    if len(value) > max_string:
        return f"{value[:max_string]}…[truncated: {len(value)} chars]"
    return value
