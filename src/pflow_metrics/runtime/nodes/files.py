"""`read-file`, `write-file` and `copy-file`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from pflow_metrics.runtime.nodes.base import WorkflowNode


class ReadFileNode(WorkflowNode):
    description = "Reads a text file."
    params_doc = {"path": "the file to read", "encoding": "text encoding (default utf-8)"}
    writes = {"content": "the file's text"}
    required = ("path",)

    def prep(self, shared: Any) -> tuple[Path, str]:
        return Path(str(self.param("path"))).expanduser(), str(self.param("encoding", "utf-8"))

    def exec(self, prep_res: tuple[Path, str]) -> str:
        path, encoding = prep_res
        return path.read_text(encoding=encoding)

    def post(self, shared: Any, prep_res: Any, exec_res: str) -> str:
        shared["content"] = exec_res
        return "default"


class WriteFileNode(WorkflowNode):
    description = "Writes text to a file, creating missing directories."
    params_doc = {
        "path": "the file to write",
        "content": "the text to write",
        "append": "true to append instead of replacing (default false)",
        "encoding": "text encoding (default utf-8)",
    }
    writes = {"path": "the file written", "bytes_written": "how many bytes were written"}
    required = ("path", "content")

    def prep(self, shared: Any) -> dict[str, Any]:
        content = self.param("content")
        return {
            "path": Path(str(self.param("path"))).expanduser(),
            "data": (content if isinstance(content, str) else str(content)).encode(
                str(self.param("encoding", "utf-8"))
            ),
            "append": bool(self.param("append", False)),
        }

    def exec(self, prep_res: dict[str, Any]) -> dict[str, Any]:
        path: Path = prep_res["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab" if prep_res["append"] else "wb") as out:
            out.write(prep_res["data"])
        return {"path": str(path), "bytes_written": len(prep_res["data"])}

    def post(self, shared: Any, prep_res: Any, exec_res: dict[str, Any]) -> str:
        shared.update(exec_res)
        return "default"


class CopyFileNode(WorkflowNode):
    description = "Copies a file."
    params_doc = {
        "source": "the file to copy",
        "destination": "where to copy it",
        "overwrite": "true to replace an existing destination (default false)",
    }
    writes = {"destination": "the path of the copy"}
    required = ("source", "destination")

    def prep(self, shared: Any) -> tuple[Path, Path, bool]:
        return (
            Path(str(self.param("source"))).expanduser(),
            Path(str(self.param("destination"))).expanduser(),
            bool(self.param("overwrite", False)),
        )

    def exec(self, prep_res: tuple[Path, Path, bool]) -> str:
        source, destination, overwrite = prep_res
        if destination.exists() and not overwrite:
            raise FileExistsError(f"{destination} exists (set overwrite to replace it)")
        destination.parent.mkdir(parents=True, exist_ok=True)
        return str(shutil.copy2(source, destination))

    def post(self, shared: Any, prep_res: Any, exec_res: str) -> str:
        shared["destination"] = exec_res
        return "default"
