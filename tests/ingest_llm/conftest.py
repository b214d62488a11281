"""A real llm logs.db for the tests, written by `llm` itself: its command line (in-process, with
LLM_USER_PATH pointed at the test's directory) and model plugins registered here that report
usage the way the provider plugins do (OpenAI, Anthropic and Gemini token details)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import llm
import pytest
from click.testing import CliRunner

# Per-million rates for the test models (tests/ingest_llm/*: the costs they expect follow from these).
PRICING = """
[models."meter-openai"]
input = 1.0
output = 2.0
cache_read = 0.5
[models."meter-anthropic"]
input = 3.0
output = 15.0
cache_read = 0.3
cache_creation = 3.75
[models."meter-gemini"]
input = 0.25
output = 1.0
cache_read = 0.125
"""

# What each model reports to llm (input, output, details), and the buckets that means in our ledger.
USAGE = {
    # OpenAI: prompt tokens include the cached ones; reasoning is part of output.
    "meter-openai": (1000, 400, {"prompt_tokens_details": {"cached_tokens": 300},
                                 "completion_tokens_details": {"reasoning_tokens": 100}}),
    # Anthropic: input excludes cache reads and writes.
    "meter-anthropic": (50, 20, {"cache_read_input_tokens": 2000, "cache_creation_input_tokens": 100}),
    # Gemini (llm-gemini): input includes cached content; output includes the thoughts.
    "meter-gemini": (800, 300, {"thoughtsTokenCount": 120, "cachedContentTokenCount": 200,
                                "candidatesTokenCount": 180}),
}
BUCKETS = {
    "meter-openai": {"input_tokens": 700, "cache_read_tokens": 300, "cache_creation_tokens": 0,
                     "output_tokens": 400, "thinking_tokens": 100},
    "meter-anthropic": {"input_tokens": 50, "cache_read_tokens": 2000, "cache_creation_tokens": 100,
                        "output_tokens": 20, "thinking_tokens": 0},
    "meter-gemini": {"input_tokens": 600, "cache_read_tokens": 200, "cache_creation_tokens": 0,
                     "output_tokens": 300, "thinking_tokens": 120},
}


class ReportingModel(llm.Model):
    """Answers "<model>: <prompt>" and reports its provider's usage shape."""

    can_stream = True

    def __init__(self, model_id: str, resolved: str | None = None, usage: tuple | None = None):
        self.model_id = model_id
        self.resolved = resolved
        self.usage = usage or USAGE[model_id]

    def execute(self, prompt, stream, response, conversation=None):
        yield f"{self.model_id}: {prompt.prompt}"
        usage_input, usage_output, details = self.usage
        response.set_usage(input=usage_input, output=usage_output, details=details)
        if self.resolved:
            response.set_resolved_model(self.resolved)


@pytest.fixture
def llm_home(tmp_path, monkeypatch) -> Path:
    """llm's user directory for this test (LLM_USER_PATH); its logs.db is what llm writes."""
    home = tmp_path / "llm-home"
    home.mkdir()
    monkeypatch.setenv("LLM_USER_PATH", str(home))
    return home


@pytest.fixture
def models(register_llm_models):
    return [register_llm_models(ReportingModel(model_id)) for model_id in USAGE]


@pytest.fixture
def llm_cli(llm_home, models):
    """`llm_cli(*args)`: run the `llm` command line itself; returns its output."""
    from llm.cli import cli

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    return run


def conversation_ids(logs_db: Path) -> list[str]:
    """The conversation (thread) ids llm logged, oldest first."""
    with sqlite3.connect(logs_db) as conn:
        return [row[0] for row in conn.execute("SELECT thread_id FROM turns GROUP BY thread_id ORDER BY min(id)")]


def older_logs_db(path: Path, before: str):
    """A logs.db as an older llm left it: llm's own migrations applied up to (not including)
    the migration named `before`. Returns the sqlite_utils Database."""
    import sqlite_utils
    from llm.migrations import MIGRATIONS, ensure_migrations_table

    db = sqlite_utils.Database(path)
    ensure_migrations_table(db)
    for migration in MIGRATIONS:
        if migration.__name__ == before:
            break
        migration(db)
        db["_llm_migrations"].insert({"name": migration.__name__, "applied_at": str(datetime.now(UTC))})
    return db


def log_legacy(db, response, conversation_id: str, response_id: str | None = None) -> str:
    """Log a finished llm response into the `responses` table the way llm 0.19 to 0.35 did
    (their Response.log_to_db: naive UTC time, token_details as JSON text); returns its id."""
    from llm.utils import monotonic_ulid

    db["conversations"].insert({"id": conversation_id, "name": response.prompt.prompt[:32],
                                "model": response.model.model_id}, ignore=True)
    row = {
        "id": response_id or str(monotonic_ulid()).lower(),
        "model": response.model.model_id,
        "prompt": response.prompt.prompt,
        "system": response.prompt.system,
        "prompt_json": None,
        "options_json": "{}",
        "response": response.text(),
        "response_json": None,
        "conversation_id": conversation_id,
        "duration_ms": response.duration_ms(),
        "datetime_utc": datetime.now(UTC).replace(tzinfo=None).isoformat(),
        "input_tokens": response.input_tokens,
        "output_tokens": response.output_tokens,
        "token_details": json.dumps(response.token_details) if response.token_details else None,
    }
    if "resolved_model" in db["responses"].columns_dict:
        row["resolved_model"] = response.resolved_model
    db["responses"].insert(row)
    return row["id"]
