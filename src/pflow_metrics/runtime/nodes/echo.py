"""`echo`: writes its params back to the shared store; deterministic, for tests and demos.

Used with pflow's echo params (`message`, `count`, `data`, `prefix`, `suffix`, `uppercase`, or
`message`/`count`/`data` in the shared store) it also writes pflow's outputs: `echo` (the message,
prefixed, suffixed, repeated `count` times, upper-cased), `data` passed through, and `metadata`.
"""

from __future__ import annotations

from typing import Any

from pflow_metrics.runtime.nodes.base import WorkflowNode

PFLOW_PARAMS = ("message", "count", "data", "prefix", "suffix", "uppercase")
PFLOW_INPUTS = ("message", "count", "data")


class EchoNode(WorkflowNode):
    description = ("Writes each of its params to the shared store unchanged (param 'action' picks the next "
                   "edge); with pflow's 'message' it also writes 'echo' and 'metadata'.")
    params_doc = {
        "<any>": "any value; written under the same key",
        "action": "the action to return (default 'default')",
        "message": "pflow's echo: the message (shared store first, then params)",
        "count": "pflow's echo: how many times to repeat the message (default 1)",
        "data": "pflow's echo: any value passed through (shared store first, then params)",
        "prefix": "pflow's echo: text before the message",
        "suffix": "pflow's echo: text after the message",
        "uppercase": "pflow's echo: true to upper-case the result",
    }
    writes = {
        "<each param>": "the param's value",
        "echo": "pflow's echo: the echoed message",
        "metadata": "pflow's echo: original_message, count, modified",
    }

    def prep(self, shared: Any) -> dict[str, Any]:
        values = dict(self.params)
        stored = {name: self.read(shared, name) for name in PFLOW_INPUTS}
        if any(name in values for name in PFLOW_PARAMS) or any(v is not None for v in stored.values()):
            values.update(_pflow_echo(self.params, stored))
        return values

    def exec(self, params: dict[str, Any]) -> dict[str, Any]:
        return params

    def post(self, shared: Any, prep_res: Any, exec_res: dict[str, Any]) -> str:
        for key, value in exec_res.items():
            shared[key] = value
        return str(exec_res.get("action") or "default")


def _pflow_echo(params: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    message = stored["message"] or params.get("message") or "Hello, World!"
    message = message if isinstance(message, str) else str(message)
    count = stored["count"] or params.get("count") or 1
    try:
        count = max(int(count), 1)
    except (TypeError, ValueError):
        count = 1
    prefix, suffix = str(params.get("prefix") or ""), str(params.get("suffix") or "")
    uppercase = bool(params.get("uppercase", False))
    text = f"{prefix}{message}{suffix}"
    if count > 1:
        text = " ".join([text] * count)
    if uppercase:
        text = text.upper()
    result = {
        "echo": text,
        "metadata": {"original_message": message, "count": count,
                     "modified": bool(prefix or suffix or uppercase or count > 1)},
    }
    data = stored["data"] if stored["data"] is not None else params.get("data")
    if data is not None:
        result["data"] = data
    return result
