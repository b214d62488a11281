"""`read-file`, `write-file`, `copy-file`, `move-file` and `delete-file`, with pflow's interfaces.

Inputs are read from the shared store first, then from the params, under pflow's names
(`file_path`, `source_path`, `dest_path`, ...); our older param names (`path`, `source`,
`destination`) still work as params. A file operation that fails writes `error` and returns the
`error` action; a missing required input raises NodeParamError (a broken workflow, not a failure
to route).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pflow_metrics.runtime.nodes.base import WorkflowNode, fail


def _path(value: Any) -> Path:
    """pflow's normalization: ~ expanded, made absolute, `..` folded."""
    return Path(os.path.normpath(os.path.abspath(os.path.expanduser(str(value)))))


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class _FileNode(WorkflowNode):
    """A file node's exec returns its output keys, or its fallback an error: post writes either."""

    def exec_fallback(self, prep_res: Any, exc: Exception) -> dict[str, Any]:
        return {"error": self.error_message(prep_res, exc), "exception": exc}

    def post(self, shared: Any, prep_res: Any, exec_res: dict[str, Any]) -> str:
        if "error" in exec_res:
            return fail(self, shared, exec_res["error"], exec_res.get("exception"))
        shared.update(exec_res)
        return "default"

    def error_message(self, prep_res: Any, exc: Exception) -> str:
        return f"Error: {exc}"


class ReadFileNode(_FileNode):
    description = "Reads a text file (pflow's read-file: with `file_path` the content gets 1-indexed line numbers)."
    params_doc = {
        "file_path": "the file to read (shared store first, then params)",
        "path": "the file to read, our older name (params only); content without line numbers",
        "encoding": "text encoding (default utf-8)",
        "line_numbers": "true to prefix each line with 'N: ' (default: true with file_path, false with path)",
    }
    writes = {"content": "the file's text", "error": "why the file could not be read (action 'error')"}

    def prep(self, shared: Any) -> dict[str, Any]:
        pflow_path = self.read(shared, "file_path")
        path = pflow_path if pflow_path is not None else self.read(shared, "file_path", aliases=("path",),
                                                                    required=True)
        numbered = self.params.get("line_numbers")
        return {
            "path": _path(path),
            "encoding": str(self.read(shared, "encoding", default="utf-8")),
            "line_numbers": pflow_path is not None if numbered is None else _flag(numbered),
        }

    def exec(self, prep_res: dict[str, Any]) -> dict[str, str]:
        text = prep_res["path"].read_text(encoding=prep_res["encoding"])
        if prep_res["line_numbers"]:
            text = "".join(f"{number}: {line}" for number, line in enumerate(text.splitlines(True), 1))
        return {"content": text}

    def error_message(self, prep_res: dict[str, Any], exc: Exception) -> str:
        path = prep_res["path"]
        if isinstance(exc, FileNotFoundError):
            return f"Error: File '{path}' does not exist"
        if isinstance(exc, IsADirectoryError):
            return f"Error: '{path}' is a directory, not a file"
        if isinstance(exc, PermissionError):
            return f"Error: Permission denied when reading '{path}'"
        if isinstance(exc, (UnicodeDecodeError, LookupError)):
            return f"Error: Cannot read '{path}' with {prep_res['encoding']} encoding"
        return f"Error: Could not read '{path}': {exc}"


class WriteFileNode(_FileNode):
    description = "Writes text to a file (atomically, unless appending), creating missing directories."
    params_doc = {
        "file_path": "the file to write (shared store first, then params; `path` is our older name)",
        "content": "the text to write (shared store first, then params)",
        "append": "true to append instead of replacing (default false)",
        "encoding": "text encoding (default utf-8)",
    }
    writes = {
        "written": "a success message naming the file (pflow's key; truthy)",
        "path": "the file written",
        "bytes_written": "how many bytes were written",
        "error": "why the file could not be written (action 'error')",
    }

    def prep(self, shared: Any) -> dict[str, Any]:
        content = self.read(shared, "content", required=True, falsy=True)  # "" is content too
        encoding = str(self.read(shared, "encoding", default="utf-8"))
        return {
            "path": _path(self.read(shared, "file_path", aliases=("path",), required=True)),
            "data": (content if isinstance(content, str) else str(content)).encode(encoding),
            "append": _flag(self.params.get("append", False)),
        }

    def exec(self, prep_res: dict[str, Any]) -> dict[str, Any]:
        path: Path = prep_res["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        if prep_res["append"]:
            with path.open("ab") as out:
                out.write(prep_res["data"])
            message = f"Successfully appended to '{path}'"
        else:
            _atomic_write(path, prep_res["data"])
            message = f"Successfully wrote to '{path}'"
        return {"written": message, "path": str(path), "bytes_written": len(prep_res["data"])}

    def error_message(self, prep_res: dict[str, Any], exc: Exception) -> str:
        path = prep_res["path"]
        if isinstance(exc, IsADirectoryError):
            return f"Error: '{path}' is a directory, not a file"
        if isinstance(exc, PermissionError):
            return f"Error: Permission denied when writing to '{path}'"
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return f"Error: No space left on device when writing to '{path}'"
        return f"Error: Could not write to '{path}': {exc}"


def _atomic_write(path: Path, data: bytes) -> None:
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
        if path.exists():
            shutil.copymode(path, temporary)
        else:
            os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _TransferNode(_FileNode):
    """copy-file and move-file: `source_path` to `dest_path`, refusing to overwrite by default."""

    verb, gerund = "copy", "copying"

    def prep(self, shared: Any) -> dict[str, Any]:
        return {
            "source": _path(self.read(shared, "source_path", aliases=("source",), required=True)),
            "dest": _path(self.read(shared, "dest_path", aliases=("destination",), required=True)),
            "overwrite": _flag(self.read(shared, "overwrite", default=False, falsy=True)),
        }

    def check(self, prep_res: dict[str, Any]) -> tuple[Path, Path]:
        source, dest = prep_res["source"], prep_res["dest"]
        if not source.exists():
            raise FileNotFoundError(errno.ENOENT, "no such file", str(source))
        if not source.is_file():
            raise FileOperationRefused(f"Source path '{source}' is not a file; this node only {self.verb}s files")
        if dest.exists() and not prep_res["overwrite"]:
            raise DestinationExists(f"Destination file '{dest}' already exists; set overwrite to true to replace it")
        dest.parent.mkdir(parents=True, exist_ok=True)
        return source, dest

    def error_message(self, prep_res: dict[str, Any], exc: Exception) -> str:
        source, dest = prep_res["source"], prep_res["dest"]
        if isinstance(exc, FileOperationRefused):
            return f"Error: {exc}"
        if isinstance(exc, FileNotFoundError):
            return f"Error: Source file '{source}' does not exist"
        if isinstance(exc, PermissionError):
            return f"Error: Permission denied when {self.gerund} '{source}' to '{dest}'"
        return f"Error: Could not {self.verb} '{source}' to '{dest}': {exc}"


class FileOperationRefused(Exception):
    """A request the node will not carry out (not a file, deletion not confirmed)."""


class DestinationExists(FileOperationRefused, FileExistsError):
    """The destination exists and overwrite is off."""


class CopyFileNode(_TransferNode):
    description = "Copies a file, creating missing directories; refuses to overwrite unless told to."
    params_doc = {
        "source_path": "the file to copy (shared store first, then params; `source` is our older name)",
        "dest_path": "where to copy it (shared store first, then params; `destination` is our older name)",
        "overwrite": "true to replace an existing destination (default false)",
    }
    writes = {
        "copied": "a success message naming both files (pflow's key; truthy)",
        "destination": "the path of the copy",
        "error": "why the file could not be copied (action 'error')",
    }
    verb, gerund = "copy", "copying"

    def exec(self, prep_res: dict[str, Any]) -> dict[str, str]:
        source, dest = self.check(prep_res)
        shutil.copy2(source, dest)
        return {"copied": f"Successfully copied '{source}' to '{dest}'", "destination": str(dest)}


class MoveFileNode(_TransferNode):
    description = "Moves a file, creating missing directories; refuses to overwrite unless told to."
    params_doc = {
        "source_path": "the file to move (shared store first, then params; `source` also works)",
        "dest_path": "where to move it (shared store first, then params; `destination` also works)",
        "overwrite": "true to replace an existing destination (default false)",
    }
    writes = {
        "moved": "a success message naming both files (pflow's key; truthy)",
        "destination": "the file's new path",
        "warning": "set when the file was copied across devices but the source could not be removed",
        "error": "why the file could not be moved (action 'error')",
    }
    verb, gerund = "move", "moving"

    def exec(self, prep_res: dict[str, Any]) -> dict[str, str]:
        source, dest = self.check(prep_res)
        try:
            os.replace(source, dest)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.copy2(source, dest)  # across file systems: copy, then remove the source
            try:
                source.unlink()
            except OSError as removal:
                warning = f"warning: file copied but the source could not be removed: {removal}"
                return {"moved": f"Successfully moved '{source}' to '{dest}' ({warning})",
                        "destination": str(dest), "warning": warning}
        return {"moved": f"Successfully moved '{source}' to '{dest}'", "destination": str(dest)}


class DeleteFileNode(_FileNode):
    description = ("Deletes a file, only when the shared store holds confirm_delete = true "
                   "(a workflow input named confirm_delete); a missing file counts as deleted.")
    params_doc = {
        "file_path": "the file to delete (shared store first, then params; `path` also works)",
        "confirm_delete": "read from the shared store only, never from params: must be true",
    }
    writes = {
        "deleted": "a success message naming the file (pflow's key; truthy)",
        "error": "why the file was not deleted (action 'error')",
    }

    def prep(self, shared: Any) -> dict[str, Any]:
        path = _path(self.read(shared, "file_path", aliases=("path",), required=True))
        try:
            confirmed = shared["confirm_delete"]
        except (KeyError, TypeError):
            confirmed = None
        return {"path": path, "confirmed": confirmed}

    def exec(self, prep_res: dict[str, Any]) -> dict[str, str]:
        path = prep_res["path"]
        if prep_res["confirmed"] is None:
            raise FileOperationRefused("Missing 'confirm_delete' in the shared store; deletion must be confirmed "
                           "there (not in params)")
        if not _flag(prep_res["confirmed"]):
            raise FileOperationRefused(f"Deletion of '{path}' not confirmed; set confirm_delete to true in the shared store")
        if not path.exists() and not path.is_symlink():
            return {"deleted": f"Successfully deleted '{path}' (file did not exist)"}
        if path.is_dir() and not path.is_symlink():
            raise FileOperationRefused(f"Path '{path}' is not a file; this node only deletes files")
        try:
            path.unlink()
        except FileNotFoundError:
            return {"deleted": f"Successfully deleted '{path}' (deleted by another process)"}
        return {"deleted": f"Successfully deleted '{path}'"}

    def error_message(self, prep_res: dict[str, Any], exc: Exception) -> str:
        path = prep_res["path"]
        if isinstance(exc, FileOperationRefused):
            return f"Error: {exc}"
        if isinstance(exc, PermissionError):
            return f"Error: Permission denied when deleting '{path}'"
        return f"Error: Could not delete '{path}': {exc}"

