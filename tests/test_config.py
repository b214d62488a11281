import pytest

from pflow_metrics.config import ledger_url, sqlite_path
from pflow_metrics.context import ci_context


def test_the_default_ledger_is_metrics_db_under_pflow_home(pflow_home):
    assert ledger_url() == f"sqlite:///{pflow_home / 'metrics.db'}"


def test_a_plain_path_is_a_sqlite_ledger(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ledger_url("team.db") == f"sqlite:///{tmp_path / 'team.db'}"
    assert sqlite_path(ledger_url("team.db")) == tmp_path / "team.db"


def test_the_option_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("PFLOW_METRICS_DB", "postgresql+psycopg://127.0.0.1/test")
    assert ledger_url() == "postgresql+psycopg://127.0.0.1/test"
    assert ledger_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_ci_context_reads_github_actions_variables():
    env = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "42", "GITHUB_SHA": "abc123", "GITHUB_REF_NAME": "main"}
    assert ci_context(env) == {"provider": "github-actions", "job_id": "42", "git_sha": "abc123", "git_branch": "main"}


def test_no_ci_context_outside_ci():
    assert ci_context({"HOME": "/root"}) is None


@pytest.mark.parametrize(("variable", "read"), [("PFLOW_SQLITE_BUSY_TIMEOUT_MS", "sqlite_busy_timeout_ms"),
                                                ("PFLOW_TRACE_KEEP", "trace_keep"),
                                                ("PFLOW_TRACE_MAX_BYTES", "trace_max_bytes"),
                                                ("PFLOW_CRASH_AFTER", "crash_after")])
@pytest.mark.parametrize("value", ["nan", "-5", "0", "1e30", "lots", "9" * 40])
def test_every_numeric_setting_refuses_a_bad_value_naming_the_variable(monkeypatch, variable, read, value):
    import pflow_metrics.config as config
    from pflow_metrics.errors import UsageError

    monkeypatch.setenv(variable, value)
    with pytest.raises(UsageError, match=f"^{variable}: cannot use "):
        getattr(config, read)()


def test_settings_take_their_defaults_and_plain_values(monkeypatch):
    import pflow_metrics.config as config

    assert (config.sqlite_busy_timeout_ms(), config.trace_keep(), config.trace_max_bytes()) == (30_000, 200, 50 * 2**20)
    monkeypatch.setenv("PFLOW_TRACE_KEEP", "3")
    assert config.trace_keep() == 3
