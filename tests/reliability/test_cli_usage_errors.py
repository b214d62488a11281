"""Every command of the CLI, found by walking the Typer app (so commands added later are
covered too), given malformed options and arguments: exit 2, exactly one line on stderr that
names what was wrong, never a traceback.

tests/reports/test_commands.py keeps its hand-picked sweep of the query commands against a
real ledger on both engines; this one is generic and needs no ledger.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path

import pytest
import typer.main

from pflow_metrics.cli.app import app

ROOT = typer.main.get_command(app)

# Options whose value is free text: any string is a valid value, so there is no bad one to feed.
FREE_TEXT = {"--db", "--workflow", "--model", "--plan", ("pricing", "show", "--provider")}
# Good values for required options and arguments, so that only the malformed part is wrong.
# A new required parameter must be added here (the test says so).
REQUIRED_VALUES = {"--max-usd": "1", "--older-than": "30d", "run_id": "abc123", "model": "gpt-4o", "files": "{tmp}/empty.jsonl",
                   "file": "{tmp}/trace.jsonl"}
# Commands whose positional arguments are optional to click but required by the command.
ARGUMENTS_NEEDED = {("run",): "{tmp}/flow.json"}
BAD_VALUES = {
    int: ["not-a-number", "1.5", "99999999999999999999999"],
    float: ["not-a-number", "nan"],
    str: ["not-a-valid-value", "99999999999d", "0001-01-01T00:00:00+05:00"],
    Path: ["{tmp}"],
}


def _walk(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


GROUPS = [path for path, command in _walk(ROOT) if hasattr(command, "commands")]
LEAVES = [(path, command) for path, command in _walk(ROOT) if not hasattr(command, "commands")]


# The Python type behind each of click's parameter types, by the name click gives it.
CLICK_TYPES = {"int": int, "int range": int, "float": float, "float range": float, "str": str, "path": Path,
               "choice": enum.Enum}


def _base_type(param) -> type:
    return CLICK_TYPES.get(param.type.name, param.type.name)


def _options(command):
    return [p for p in command.params if p.opts and p.opts[0].startswith("--")]


def _required_args(path, command, leave_out=None) -> list[str]:
    """Valid values for the command's required parameters, except `leave_out`."""
    args = []
    for param in command.params:
        if not param.required or param is leave_out:
            continue
        key = param.opts[0] if param.opts[0].startswith("--") else param.name
        assert key in REQUIRED_VALUES, f"{' '.join(path)}: add a valid value for {key} to REQUIRED_VALUES"
        args += [key, REQUIRED_VALUES[key]] if key.startswith("--") else [REQUIRED_VALUES[key]]
    if path in ARGUMENTS_NEEDED:
        args.append(ARGUMENTS_NEEDED[path])
    return args


def _cases():
    """(id, argv, the word the error line must contain)"""
    yield "no-command", [], "command"
    for path in GROUPS[1:]:
        yield f"{' '.join(path)}-without-subcommand", [*path], "command"
        yield f"{' '.join(path)}-unknown-subcommand", [*path, "no-such-command"], "no-such-command"
    yield "unknown-command", ["no-such-command"], "no-such-command"
    yield "--db-without-value", ["--db"], "--db"
    for path, command in LEAVES:
        name = " ".join(path)
        base = _required_args(path, command)
        yield f"{name} --no-such-option", [*path, *base, "--no-such-option"], "--no-such-option"
        if not any(param.param_type_name == "argument" for param in command.params):
            yield f"{name} extra-argument", [*path, *base, "extra-argument"], "extra-argument"
        for param in command.params:
            if param.required:
                label = param.opts[0] if param.opts[0].startswith("--") else param.name
                yield (f"{name} missing {label}", [*path, *_required_args(path, command, leave_out=param)],
                       label.lower())
        if path in ARGUMENTS_NEEDED:
            yield f"{name} missing arguments", [*path], "file"
        for option in _options(command):
            flag = option.opts[0]
            if getattr(option, "is_flag", False):
                yield f"{name} {flag}=value", [*path, *base, f"{flag}=yes"], flag
                continue
            yield f"{name} {flag} without value", [*path, *base, flag], flag
            if flag in FREE_TEXT or (*path, flag) in FREE_TEXT:
                continue
            kind = _base_type(option)
            if isinstance(kind, type) and issubclass(kind, enum.Enum):
                values = ["not-a-choice"]
            else:
                values = BAD_VALUES.get(kind)
                assert values is not None, f"{name} {flag}: no bad values known for {kind}"
            others = _required_args(path, command, leave_out=option)
            for value in values:
                yield f"{name} {flag} {value}", [*path, *others, flag, value], flag


CASES = list(_cases())


def test_the_sweep_covers_every_command():
    covered = {tuple(argv[: len(path)]) for _, argv, _ in CASES for path, _ in LEAVES if argv[: len(path)] == list(path)}
    assert covered == {path for path, _ in LEAVES} and len(LEAVES) >= 14


@pytest.mark.parametrize(("argv", "named"), [pytest.param(argv, named, id=case) for case, argv, named in CASES])
def test_a_malformed_command_line_is_one_named_line_on_stderr_and_exit_2(cli, tmp_path, argv, named):
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "trace.jsonl").write_text(json.dumps({"type": "header", "workflow": "w", "run_id": "r"}) + "\n")
    (tmp_path / "flow.json").write_text(json.dumps(
        {"ir_version": "0.1.0", "nodes": [{"id": "hello", "type": "echo", "params": {"text": "hi"}}]}))
    if argv and argv[0] != "--db":  # a private ledger path; the bare command line stays bare
        argv = ["--db", str(tmp_path / "ledger.db"), *[a.replace("{tmp}", str(tmp_path)) for a in argv]]
    code, _, err = cli(*argv)
    assert "Traceback" not in err
    assert (code, err.count("\n")) == (2, 1), err
    message = err.removeprefix("pflow-metrics: error: ").strip()
    assert err.startswith("pflow-metrics: error: ") and message, err
    assert named.lower() in message.lower(), err
    assert not Path(tmp_path / "ledger.db").exists() or argv[2:3] in (["ingest"], ["run"])


def test_a_warning_is_one_line_on_stderr_too(cli, tmp_path):
    from pflow_metrics.ledger.store import Ledger

    path = tmp_path / "shared.db"
    Ledger.open(str(path)).close()
    path.chmod(0o644)
    done = cli("--db", path, "report")
    assert done.exit_code == 0
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("pflow-metrics: warning: ledger "), done.stderr
    assert "can be read by other users" in done.stderr
