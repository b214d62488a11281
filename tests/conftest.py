"""Shared fixtures. `ledger_url` runs a test against a fresh SQLite file and a fresh
PostgreSQL schema (the local server from .ci/run); each test gets its own."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import NamedTuple

import pytest
from sqlalchemy import create_engine, text

PG_URL = os.environ.get("PFLOW_TEST_PG_URL", "postgresql+psycopg://127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def pflow_home(tmp_path, monkeypatch):
    """Every test gets its own PFLOW_HOME; nothing touches the real ~/.pflow."""
    home = tmp_path / "pflow-home"
    monkeypatch.setenv("PFLOW_HOME", str(home))
    monkeypatch.delenv("PFLOW_METRICS_DB", raising=False)
    for variable in ("CI", "GITHUB_ACTIONS", "GITLAB_CI"):
        monkeypatch.delenv(variable, raising=False)
    return home


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def postgres_url():
    """A PostgreSQL URL whose search_path is a new, empty schema, dropped after the test."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # pragma: no cover - the server is part of the test setup
        pytest.fail(f"PostgreSQL at {PG_URL} is needed for this test: {exc}")
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_url(request):
    """The same test on SQLite and on PostgreSQL."""
    return request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "postgres_url"}[request.param])


@pytest.fixture
def ledger(ledger_url):
    from pflow_metrics.ledger.store import Ledger

    with Ledger.open(ledger_url) as opened:
        yield opened


@pytest.fixture
def price_models(pflow_home):
    """Write $PFLOW_HOME/pricing.toml with the given per-million rates."""

    def write(text: str) -> None:
        pflow_home.mkdir(parents=True, exist_ok=True)
        (pflow_home / "pricing.toml").write_text(text)

    return write


class CliResult(NamedTuple):
    """What a CLI call gave: a tuple (exit code, stdout, stderr), also by name."""

    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process through main() (its error handling included): (exit code, stdout, stderr)."""
    from pflow_metrics.cli.app import main

    def invoke(*args) -> CliResult:
        capsys.readouterr()  # only this call's output
        with pytest.raises(SystemExit) as exit_info:
            main([str(arg) for arg in args])
        out = capsys.readouterr()
        return CliResult(exit_info.value.code, out.out, out.err)

    return invoke


class CliProcess:
    """The installed `pflow-metrics` executable in a separate process, with this test's
    environment (its PFLOW_HOME included). For what only a real process shows: signals,
    exit codes of the interpreter, import time, processes racing each other."""

    exe = str(Path(sys.executable).with_name("pflow-metrics"))

    def __init__(self, env: dict[str, str]):
        self.env = env

    def run(self, *args, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
        """Run to the end: a CompletedProcess with text stdout and stderr."""
        kwargs.setdefault("env", self.env)
        return subprocess.run([self.exe, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kwargs)

    def start(self, *args, **kwargs) -> subprocess.Popen:
        """Start it and return the Popen (stdout and stderr are text pipes); the caller waits."""
        kwargs.setdefault("env", self.env)
        return subprocess.Popen([self.exe, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, **kwargs)


@pytest.fixture
def cli_process(pflow_home):
    """`cli_process.run(*args)` / `cli_process.start(*args)`: the CLI as a separate process."""
    return CliProcess({**os.environ, "PFLOW_HOME": str(pflow_home)})


@pytest.fixture
def register_llm_models():
    """`register_llm_models(*models)`: make `llm` models resolvable by their model_id for this
    test, through a plugin registered with llm's plugin manager (as a provider plugin does);
    every plugin is unregistered after the test. Returns the first model."""
    import llm
    from llm.plugins import pm

    plugins = []

    def register(*models):
        class Plugin:
            @llm.hookimpl
            def register_models(self, register):
                register(*models)

        plugin = Plugin()
        pm.register(plugin, name=f"test-models-{id(plugin)}")
        plugins.append(plugin)
        return models[0]

    yield register
    for plugin in reversed(plugins):
        pm.unregister(plugin)
