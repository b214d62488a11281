"""`${input}` and `${node_id.key.path}` templates in node params and workflow outputs.

A string that is exactly one template takes the referenced value as is (a dict stays a dict);
templates inside longer text are rendered as text (dicts and lists as JSON).
Path segments walk dicts by key and lists by index: `${fetch.items.0.title}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

TEMPLATE = re.compile(r"\$\{([A-Za-z_][\w-]*(?:\.[\w-]+)*)\}")


class TemplateError(LookupError):
    """A template names something that is not in the shared store when the node runs."""


def references(value: Any) -> Iterator[tuple[str, str]]:
    """(where, path) for every template in a nested value; `where` is a JSON-ish suffix."""
    if isinstance(value, str):
        for match in TEMPLATE.finditer(value):
            yield "", match.group(1)
    elif isinstance(value, dict):
        for key, item in value.items():
            for where, path in references(item):
                yield f".{key}{where}", path
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for where, path in references(item):
                yield f"[{index}]{where}", path


def lookup(path: str, context: Mapping[str, Any]) -> Any:
    """The value at a dotted path; raises TemplateError naming the first missing segment."""
    current: Any = context
    walked: list[str] = []
    for segment in path.split("."):
        walked.append(segment)
        if isinstance(current, Mapping) and segment in current:
            current = current[segment]
        elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            raise TemplateError(f"${{{path}}}: '{'.'.join(walked)}' is not in the shared store")
    return current


def resolve(value: Any, context: Mapping[str, Any], resolutions: dict[str, Any] | None = None) -> Any:
    """`value` with every template replaced; each resolved path goes into `resolutions`."""
    if isinstance(value, str):
        return _resolve_text(value, context, resolutions)
    if isinstance(value, dict):
        return {key: resolve(item, context, resolutions) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, context, resolutions) for item in value]
    return value


def _resolve_text(text: str, context: Mapping[str, Any], resolutions: dict[str, Any] | None) -> Any:
    whole = TEMPLATE.fullmatch(text)
    if whole:
        return _found(whole.group(1), context, resolutions)

    def render(match: re.Match[str]) -> str:
        found = _found(match.group(1), context, resolutions)
        return found if isinstance(found, str) else json.dumps(found, default=str)

    return TEMPLATE.sub(render, text)


def _found(path: str, context: Mapping[str, Any], resolutions: dict[str, Any] | None) -> Any:
    found = lookup(path, context)
    if resolutions is not None:
        resolutions[path] = found
    return found
