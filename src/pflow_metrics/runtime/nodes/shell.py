"""`shell`: runs a command; a non-zero exit fails the node unless `ignore_errors` is set."""

from __future__ import annotations

import subprocess
from typing import Any

from pflow_metrics.runtime.nodes.base import WorkflowNode


class ShellCommandFailed(RuntimeError):
    pass


class ShellNode(WorkflowNode):
    description = "Runs a shell command and captures its output."
    params_doc = {
        "command": "the command line (run by /bin/sh)",
        "stdin": "text given on standard input (optional)",
        "timeout": "seconds before the command is killed (default 60)",
        "ignore_errors": "true to carry on after a non-zero exit (default false)",
    }
    writes = {"stdout": "standard output", "stderr": "standard error", "exit_code": "the exit status"}
    required = ("command",)

    def prep(self, shared: Any) -> dict[str, Any]:
        return {
            "command": str(self.param("command")),
            "stdin": self.param("stdin"),
            "timeout": float(self.param("timeout", 60)),
            "ignore_errors": bool(self.param("ignore_errors", False)),
        }

    def exec(self, prep_res: dict[str, Any]) -> dict[str, Any]:
        stdin = prep_res["stdin"]
        try:
            done = subprocess.run(
                prep_res["command"], shell=True, capture_output=True, text=True,
                input=None if stdin is None else str(stdin), timeout=prep_res["timeout"],
            )
        except subprocess.TimeoutExpired:
            raise ShellCommandFailed(f"command timed out after {prep_res['timeout']:g}s") from None
        if done.returncode != 0 and not prep_res["ignore_errors"]:
            detail = done.stderr.strip().splitlines()[-1:] or [""]
            raise ShellCommandFailed(f"command exited with {done.returncode}: {detail[0]}".rstrip(": "))
        return {"stdout": done.stdout, "stderr": done.stderr, "exit_code": done.returncode}

    def post(self, shared: Any, prep_res: Any, exec_res: dict[str, Any]) -> str:
        shared.update(exec_res)
        return "default"
