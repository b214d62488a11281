"""PostgreSQL going down in the middle of a run: a private server (initdb/pg_ctl, in a temp
folder, on another loopback port) is stopped from inside a node. The workflow's result is
normal, the run record is spooled, and once the server is back the next run drains the spool.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import warnings

import pytest
from pocketflow import Flow, Node

from pflow_metrics.instrumentation import instrument
from pflow_metrics.ledger.spool import spooled_files
from pflow_metrics.ledger.store import Ledger
from pflow_metrics.ledger.writer import LedgerWarning

pytestmark = pytest.mark.postgres


class PrivateServer:
    def __init__(self, bin_dir: str):
        self.bin_dir = bin_dir
        self.folder = tempfile.mkdtemp(prefix="pflow-pg-")
        self.data = os.path.join(self.folder, "data")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        # initdb refuses to run as root: run the server tools as the `postgres` user then.
        self.as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _tool(self, name: str, *args: str, check: bool = True):
        return subprocess.run([*self.as_user, os.path.join(self.bin_dir, name), *args], capture_output=True,
                              text=True, timeout=60, check=check)

    def init(self) -> None:
        self._tool("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._tool("pg_ctl", "-D", self.data, "-o", options, "-l", os.path.join(self.folder, "log"), "-w", "start")

    def stop(self, check: bool = True) -> None:
        self._tool("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", check=check)

    def remove(self) -> None:
        from pflow_metrics.ledger.writer import close_shared_ledgers

        self.stop(check=False)
        shutil.rmtree(self.folder, ignore_errors=True)
        close_shared_ledgers()  # the process's cached engine for this server


@pytest.fixture
def private_server():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    bin_dir = os.path.dirname(found[-1]) if found[-1] else None
    if bin_dir is None or not os.path.exists(os.path.join(bin_dir, "pg_ctl")):
        pytest.skip("initdb and pg_ctl are not installed")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: initdb cannot run")
    server = PrivateServer(bin_dir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()


class Greet(Node):
    def post(self, shared, prep_res, exec_res):
        shared["greeting"] = f"hello {shared['who']}"


class StopTheServer(Node):
    """The ledger's server goes away while the run is in progress."""

    def __init__(self, server: PrivateServer):
        super().__init__()
        self.server = server

    def exec(self, prep_res):
        self.server.stop()
        return "stopped"

    def post(self, shared, prep_res, exec_res):
        shared["server"] = exec_res


def test_postgresql_going_down_mid_run_spools_the_run_and_the_next_run_drains_it(private_server, pflow_home):
    Ledger.open(private_server.url).close()  # the schema, while the server is up
    greet = Greet()
    greet >> StopTheServer(private_server)
    tracked = instrument(Flow(start=greet), workflow="while-pg-dies", ledger=private_server.url)
    shared = {"who": "ledger"}
    with pytest.warns(LedgerWarning) as caught:
        tracked.run(shared)

    assert (shared["greeting"], shared["server"]) == ("hello ledger", "stopped")
    lost = tracked.last_run
    assert lost.status == "success"
    assert len(caught) == 1 and "spooled to" in lost.ledger_warning
    assert [path.stem for path in spooled_files()] == [lost.run_id]

    private_server.start()
    later = instrument(Flow(start=Greet()), workflow="after-pg-is-back", ledger=private_server.url)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LedgerWarning)
        later.run({"who": "again"})
    assert later.last_run.ledger_warning is None
    assert spooled_files() == []
    with Ledger.open(private_server.url) as ledger:
        first, second = ledger.iter_runs([lost.run_id, later.last_run.run_id])
    assert (first.workflow, first.status) == ("while-pg-dies", "success")
    assert [node.node_id for node in first.nodes] == ["greet", "stop_the_server"]
    assert (second.workflow, second.status) == ("after-pg-is-back", "success")
