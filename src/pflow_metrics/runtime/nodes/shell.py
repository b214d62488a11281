"""`shell`: runs a command with pflow's interface.

A non-zero exit (unless `ignore_errors`), a timeout or a command that cannot start writes
`error` and returns the `error` action; stdout, stderr and exit_code are written either way
(exit_code -1 after a timeout, -2 when the command could not run, as in pflow).
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from pflow_metrics.runtime.nodes.base import NodeParamError, WorkflowNode, fail, routes_errors


class ShellCommandFailed(RuntimeError):
    pass


DEFAULT_TIMEOUT = 60


class ShellNode(WorkflowNode):
    description = "Runs a shell command and captures its output; a non-zero exit takes the 'error' edge."
    params_doc = {
        "command": "the command line (run by /bin/sh; params only)",
        "stdin": "text given on standard input (shared store first, then params)",
        "cwd": "working directory (optional; must exist)",
        "env": "extra environment variables, an object (optional)",
        "timeout": f"seconds before the command is killed (default {DEFAULT_TIMEOUT})",
        "ignore_errors": "true to take the default edge after a non-zero exit (default false)",
    }
    writes = {
        "stdout": "standard output",
        "stderr": "standard error",
        "exit_code": "the exit status (-1 after a timeout, -2 when the command could not run)",
        "error": "why the command failed (action 'error')",
    }
    required = ("command",)

    def prep(self, shared: Any) -> dict[str, Any]:
        cwd = self.params.get("cwd")
        if cwd:
            cwd = os.path.normpath(os.path.abspath(os.path.expanduser(str(cwd))))
            if not os.path.isdir(cwd):
                raise NodeParamError(f"param 'cwd': working directory does not exist: {cwd}")
        env = self.params.get("env") or {}
        if not isinstance(env, dict):
            raise NodeParamError("param 'env' must be an object of variable names to values")
        timeout = self.param("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, str):
            try:
                timeout = float(timeout)
            except ValueError:
                pass
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise NodeParamError(f"param 'timeout' must be a positive number of seconds, got {timeout!r}")
        stdin = self.read(shared, "stdin", falsy=True)
        ignore = self.params.get("ignore_errors", False)
        return {
            "command": str(self.param("command")),
            "stdin": None if stdin is None else stdin if isinstance(stdin, str) else str(stdin),
            "cwd": cwd or None,
            "env": {**os.environ, **{str(k): str(v) for k, v in env.items()}} if env else None,
            "timeout": float(timeout),
            "ignore_errors": ignore.strip().lower() in ("1", "true", "yes") if isinstance(ignore, str) else bool(ignore),
        }

    def exec(self, prep_res: dict[str, Any]) -> dict[str, Any]:
        try:
            done = subprocess.run(
                prep_res["command"], shell=True, capture_output=True, text=True, input=prep_res["stdin"],
                cwd=prep_res["cwd"], env=prep_res["env"], timeout=prep_res["timeout"],
            )
        except subprocess.TimeoutExpired as exc:
            return {
                "stdout": _text(exc.stdout), "stderr": _text(exc.stderr), "exit_code": -1,
                "error": f"command timed out after {prep_res['timeout']:g} seconds",
            }
        result = {"stdout": done.stdout, "stderr": done.stderr, "exit_code": done.returncode}
        if done.returncode != 0 and not prep_res["ignore_errors"]:
            detail = done.stderr.strip().splitlines()[-1:] or [""]
            result["error"] = f"command exited with {done.returncode}: {detail[0]}".rstrip(": ")
        return result

    def exec_fallback(self, prep_res: dict[str, Any], exc: Exception) -> dict[str, Any]:
        return {"stdout": "", "stderr": str(exc), "exit_code": -2, "error": f"failed to execute command: {exc}",
                "exception": ShellCommandFailed(f"failed to execute command: {exc}")}

    def post(self, shared: Any, prep_res: Any, exec_res: dict[str, Any]) -> str:
        shared["stdout"] = exec_res["stdout"]
        shared["stderr"] = exec_res["stderr"]
        shared["exit_code"] = exec_res["exit_code"]
        if "error" in exec_res:
            return fail(self, shared, exec_res["error"],
                        exec_res.get("exception") or ShellCommandFailed(exec_res["error"]))
        # pflow's shell returns "success": follow a `success` edge when that is the one there is.
        return "success" if routes_errors(self, "success") and not routes_errors(self, "default") else "default"


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
