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
