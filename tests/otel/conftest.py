"""A real OTLP/HTTP receiver for the OpenTelemetry tests: Arize Phoenix, started once per test
session on free 127.0.0.1 ports with its own working directory. Each test sends to its own
Phoenix project (the `openinference.project.name` resource attribute, set through the
standard OTEL_RESOURCE_ATTRIBUTES) and reads the spans back through Phoenix's REST API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

STARTUP_SECONDS = 180  # Phoenix migrates its SQLite database on first start
READ_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


class Phoenix:
    def __init__(self, url: str):
        self.url = url

    def spans(self, project: str, count: int) -> list[dict]:
        """The project's spans once at least `count` have arrived (Phoenix stores what it
        receives in the background); fails after READ_SECONDS."""
        deadline = time.monotonic() + READ_SECONDS
        spans: list[dict] = []
        while time.monotonic() < deadline:
            try:
                spans = _get(f"{self.url}/v1/projects/{project}/spans?limit=1000")["data"]
            except urllib.error.HTTPError as exc:
                if exc.code != 404:  # 404: no span of the project has arrived yet
                    raise
            if len(spans) >= count:
                return spans
            time.sleep(0.25)
        pytest.fail(f"Phoenix project {project} holds {len(spans)} spans, expected {count}")


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory):
    """Phoenix serving OTLP/HTTP at `phoenix.url` (+ /v1/traces)."""
    executable = Path(sys.executable).with_name("phoenix")
    if not executable.exists():
        pytest.fail("tests/otel need Arize Phoenix: pip install -e '.[test]'")
    work = tmp_path_factory.mktemp("phoenix")
    port = free_port()
    env = {**os.environ, "PHOENIX_WORKING_DIR": str(work), "PHOENIX_HOST": "127.0.0.1",
           "PHOENIX_PORT": str(port), "PHOENIX_GRPC_PORT": str(free_port()),
           "PHOENIX_TELEMETRY_ENABLED": "false"}
    log = open(work / "phoenix.log", "w")
    server = subprocess.Popen([str(executable), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT,
                              cwd=work)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if server.poll() is not None:
                pytest.fail(f"Phoenix exited ({server.returncode}): {(work / 'phoenix.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"Phoenix did not answer within {STARTUP_SECONDS}s")
                time.sleep(0.25)
        yield Phoenix(url)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture
def otel_env(phoenix, monkeypatch):
    """The standard OTEL_* variables pointing at Phoenix, with a project of this test's own;
    returns the project name."""
    for name in list(os.environ):
        if name.startswith(("OTEL_", "PFLOW_METRICS_OTEL")):
            monkeypatch.delenv(name)
    project = f"t-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", phoenix.url)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", f"openinference.project.name={project}")
    return project


@pytest.fixture
def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on."""
    return free_port()
