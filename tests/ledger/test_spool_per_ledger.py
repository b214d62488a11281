"""Spooled run records belong to the ledger they were meant for: they drain only into that
ledger, never into whichever ledger the next run happens to use, and `db check` lists them
per ledger. Record files of the old single spool drain into the default ledger."""

from __future__ import annotations

import pytest

from pflow_metrics.ledger.spool import (URL_FILE, ledger_spool_dir, spool_dir, spool_record, spooled_files,
                                        spooled_for)
from pflow_metrics.ledger.store import Ledger
from pflow_metrics.ledger.writer import LedgerWarning, RunWriter
from tests.factories import make_run

DOWN = "postgresql+psycopg://ledger:s3cret-pw@127.0.0.1:1/none"  # nothing listens on port 1


def record_through(url, workflow: str = "run"):
    """A run recorded through the instrumentation's writer; returns (record, warning or None)."""
    record = make_run(workflow)
    writer = RunWriter(url, record)
    writer.begin()
    return record, writer.finish()


def stored_ids(url, records) -> list[str]:
    with Ledger.open(url) as ledger:
        return [record.run_id for record in ledger.iter_runs([r.run_id for r in records])]


def test_a_run_spooled_for_a_read_only_ledger_is_not_drained_into_another_ledger(tmp_path):
    team = tmp_path / "teamA.db"
    scratch = tmp_path / "scratch.db"
    Ledger.open(str(team)).close()
    with pytest.warns(LedgerWarning, match="spooled to"):
        lost, _ = record_through(f"sqlite:///file:{team}?mode=ro&uri=true", "team-run")

    later, warning = record_through(str(scratch), "scratch-run")

    assert warning is None
    assert stored_ids(str(scratch), [lost, later]) == [later.run_id]
    assert [path.stem for path in spooled_files()] == [lost.run_id]

    back, warning = record_through(str(team), "team-again")  # writable again: its own spool drains

    assert warning is None
    assert stored_ids(str(team), [lost, back]) == [lost.run_id, back.run_id]
    assert spooled_files() == []


def test_a_run_spooled_for_an_unreachable_server_waits_for_that_server(ledger_url):
    with pytest.warns(LedgerWarning):
        lost, _ = record_through(DOWN, "while-the-server-was-down")

    later, warning = record_through(ledger_url)

    assert warning is None
    assert stored_ids(ledger_url, [lost, later]) == [later.run_id]
    assert spooled_for(DOWN) == spooled_files() and len(spooled_files()) == 1


def test_the_spool_folder_names_its_ledger_without_the_password():
    with pytest.warns(LedgerWarning):
        lost, message = record_through(DOWN)

    folder = ledger_spool_dir(DOWN)
    assert (folder / f"{lost.run_id}.json").is_file() and str(folder) in message
    assert (folder / URL_FILE).read_text().strip() == "postgresql://ledger@127.0.0.1:1/none"
    assert "s3cret" not in str(folder)
    # the same ledger spelled with another driver name or password shares the folder
    assert ledger_spool_dir("postgresql://ledger:other@127.0.0.1:1/none") == folder


def test_a_sqlite_ledger_has_one_spool_however_its_url_is_spelled(tmp_path, monkeypatch):
    path = tmp_path / "ledger.db"
    monkeypatch.chdir(tmp_path)
    spellings = [str(path), "ledger.db", f"sqlite:///{path}", f"sqlite:///file:{path}?mode=ro&uri=true"]
    assert len({ledger_spool_dir(spelling) for spelling in spellings}) == 1
    assert ledger_spool_dir(str(tmp_path / "other.db")) != ledger_spool_dir(str(path))


def test_db_check_lists_spooled_records_per_ledger(cli, tmp_path):
    team = tmp_path / "teamA.db"
    spool_record(make_run(), str(team))
    spool_record(make_run(), str(team))
    spool_record(make_run(), DOWN)

    code, out, _ = cli("--db", team, "db", "check")

    assert code == 0
    assert "spooled run records: 3" in out
    lines = out.splitlines()
    (team_line,) = [line for line in lines if f"sqlite:///{team}" in line]
    (down_line,) = [line for line in lines if "postgresql://ledger@127.0.0.1:1/none" in line]
    assert team_line.strip().startswith("2 for") and "this ledger" in team_line
    assert down_line.strip().startswith("1 for") and "this ledger" not in down_line
    assert "s3cret" not in out
    assert not team.exists()  # checking never creates the ledger


def test_old_layout_spool_files_drain_into_the_default_ledger_only(tmp_path, pflow_home):
    old = make_run("spooled by an older version")
    spool_dir().mkdir(parents=True)
    (spool_dir() / f"{old.run_id}.json").write_text(old.to_json())

    elsewhere, _ = record_through(str(tmp_path / "elsewhere.db"))
    assert stored_ids(str(tmp_path / "elsewhere.db"), [old, elsewhere]) == [elsewhere.run_id]
    assert [path.stem for path in spooled_files()] == [old.run_id]

    default, warning = record_through(None)

    assert warning is None
    assert stored_ids(None, [old, default]) == [old.run_id, default.run_id]
    assert spooled_files() == []
