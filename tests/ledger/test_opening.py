"""Opening a ledger: automatic upgrade, refusing what we must not touch, private files."""

import stat
import subprocess
import sys

import pytest
from sqlalchemy import text

from pflow_metrics.errors import LedgerError
from pflow_metrics.ledger.engine import HEAD_REVISION, create_ledger_engine
from pflow_metrics.ledger.store import Ledger
from tests.factories import make_run


def test_a_new_ledger_is_created_at_head_on_first_open(ledger_url):
    with Ledger.open(ledger_url) as ledger, ledger.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION


def test_a_ledger_from_a_newer_version_is_refused_and_left_untouched(ledger_url):
    with Ledger.open(ledger_url) as ledger:
        ledger.finish_run(make_run())
        with ledger.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))

    with pytest.raises(LedgerError, match="newer pflow-metrics"):
        Ledger.open(ledger_url)

    engine = create_ledger_engine(ledger_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "9999"
        assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == 1
    engine.dispose()


def test_the_cli_refuses_a_newer_ledger_with_one_line_and_exit_2(cli, tmp_path):
    path = tmp_path / "ledger.db"
    with Ledger.open(str(path)) as ledger, ledger.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))

    result = cli("--db", str(path), "db", "upgrade")

    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "newer pflow-metrics" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_that_is_not_sqlite_is_refused_and_left_exactly_as_it_was(cli, tmp_path):
    path = tmp_path / "notes.db"
    original = b"these are my notes, not a database\n" * 20
    path.write_bytes(original)

    result = cli("--db", str(path), "db", "upgrade")

    assert result.exit_code == 2
    assert str(path) in result.stderr and result.stderr.count("\n") == 1
    assert path.read_bytes() == original


def test_a_damaged_sqlite_file_is_refused_with_one_line(cli, tmp_path):
    path = tmp_path / "damaged.db"
    with Ledger.open(str(path)) as ledger:
        ledger.finish_run(make_run())
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page
    path.write_bytes(bytes(data))
    before = path.read_bytes()

    result = cli("--db", str(path), "db", "current")

    assert result.exit_code == 2, result.stderr
    assert "damaged.db" in result.stderr and "Traceback" not in result.stderr
    assert path.read_bytes() == before


def test_the_default_ledger_lives_under_pflow_home_and_is_private(pflow_home):
    with Ledger.open() as ledger:
        ledger.finish_run(make_run())
    assert stat.S_IMODE(pflow_home.stat().st_mode) == 0o700
    assert stat.S_IMODE((pflow_home / "metrics.db").stat().st_mode) == 0o600


def test_db_path_names_the_configured_ledger(cli, tmp_path, monkeypatch, pflow_home):
    assert cli("db", "path").stdout.strip() == str(pflow_home / "metrics.db")
    monkeypatch.setenv("PFLOW_METRICS_DB", str(tmp_path / "team.db"))
    assert cli("db", "path").stdout.strip() == str(tmp_path / "team.db")
    assert cli("--db", "postgresql://u:secret@db.example/ledger", "db", "path").stdout.strip() == (
        "postgresql://u:***@db.example/ledger"
    )


def test_checking_a_ledger_at_head_does_not_import_alembic(tmp_path):
    path = tmp_path / "ledger.db"
    Ledger.open(str(path)).close()
    code = (
        "import sys; from pflow_metrics.ledger.store import Ledger; "
        f"Ledger.open({str(path)!r}).close(); print('alembic' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


def test_a_world_readable_ledger_gets_a_warning(tmp_path):
    path = tmp_path / "shared.db"
    Ledger.open(str(path)).close()
    path.chmod(0o644)
    with pytest.warns(UserWarning, match="can be read by other users"):
        Ledger.open(str(path)).close()
