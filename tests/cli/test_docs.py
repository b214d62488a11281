"""The documentation keeps up with the CLI (as sqlite-utils' test_docs.py does): every command
and every option is in README's command reference, and `--help` reads like a finished tool."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from pflow_metrics.cli.app import app

README = Path(__file__).parents[2] / "README.md"
PLACEHOLDERS = ("<", "list[", "9223372036854775807", "{")
NO_EXAMPLE_NEEDED = ("--help", "--install-completion", "--show-completion")


def walk(command, path=()):
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for name, sub in subcommands.items():
            yield from walk(sub, (*path, name))
    else:
        yield path, command


ROOT = typer.main.get_command(app)
COMMANDS = list(walk(ROOT))
IDS = [" ".join(path) for path, _ in COMMANDS]


@pytest.fixture(scope="module")
def reference() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Command line")
    return text[start:text.index("\n## ", start + 1)]


def options(command) -> list:
    return [param for param in command.params if param.param_type_name == "option" and not param.hidden]


def mentioned(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_command_and_option_is_in_the_readme_command_reference(reference, path, command):
    assert re.search(rf"`(pflow-metrics )?{re.escape(' '.join(path))}\b", reference), " ".join(path)
    for param in options(command):
        for name in param.opts:
            if name.startswith("--"):
                assert mentioned(name, reference), f"{' '.join(path)} {name}"


def test_the_options_before_the_command_are_in_the_readme_too(reference):
    for param in options(ROOT):
        assert mentioned(param.opts[0], reference), param.opts[0]


@pytest.mark.parametrize("path", [(), *(path for path, _ in COMMANDS)], ids=["pflow-metrics", *IDS])
def test_help_shows_no_python_type_placeholders(cli, path):
    code, out, err = cli(*path, "--help")
    assert code == 0 and err == "" and out.startswith("Usage: pflow-metrics")
    for placeholder in PLACEHOLDERS:
        assert placeholder not in out, f"{' '.join(path) or 'pflow-metrics'} --help shows {placeholder!r}:\n{out}"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_each_option_help_says_its_default_and_gives_an_example(path, command):
    context = typer.Context(command, info_name=path[-1])
    for param in options(command):
        if param.opts[0] in NO_EXAMPLE_NEEDED:
            continue
        _, text = param.get_help_record(context)
        name = f"{' '.join(path)} {param.opts[-1]}"
        if param.default not in (None, False, (), []) or param.required:
            assert "default" in text.lower() or "required" in text, name
        if not param.is_flag:
            assert "Example" in text, name


def test_shell_completion_is_offered_and_printed(cli_process):
    assert "--install-completion" in cli_process.run("--help").stdout
    # Typer reads the shell's name only with detection off; else it asks the parent process,
    # which a CI runner or a detached job may not name.
    shown = cli_process.run("--show-completion", "bash",
                            env={**cli_process.env, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert shown.returncode == 0 and "complete" in shown.stdout and "pflow-metrics" in shown.stdout
