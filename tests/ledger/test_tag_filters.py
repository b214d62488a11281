"""--tag K=V gives the same runs on SQLite and PostgreSQL whatever characters the key holds:
quotes, JSON-path syntax ($ . [ ]), backslashes, spaces, Unicode."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from pflow_metrics.ledger.filters import Filters
from pflow_metrics.ledger.ingest import ingest_lines
from pflow_metrics.ledger.queries import iter_records, list_runs
from pflow_metrics.ledger.store import Ledger

KEYS = ['say "hi"', '"', "it's", "a.b", "a", "b", "$", "$.a", "a$b", "items[0]", "[", "]", "back\\slash", "\\",
        "with space", " ", "ünïcødé ☃", "日本", "emoji 🎉", '$."a.b"', "x'\"\\.[$]", "%", "_", "*", "a\tb"]


def _record(run_id: str, tags: dict[str, str]) -> str:
    started = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    return json.dumps({"run_id": run_id, "workflow": "tagged", "status": "success", "started_at": started,
                       "duration_ms": 5, "tags": tags})


@pytest.fixture
def tagged(ledger_url):
    """Run i carries the tag KEYS[i]=value-i; `other` carries keys that only look like some of them."""
    with Ledger.open(ledger_url) as ledger:
        lines = [_record(f"run-{i}", {key: f"value-{i}", "shared": "yes"}) for i, key in enumerate(KEYS)]
        lines.append(_record("other", {"a.b.c": "value-3", "A.B": "value-3", "a b": "value-13"}))
        result = ingest_lines(ledger, lines)
        assert result.problems == [] and result.landed == len(KEYS) + 1
        yield ledger


def test_a_tag_key_with_any_characters_finds_exactly_its_run(tagged):
    for index, key in enumerate(KEYS):
        filters = Filters(tags={key: f"value-{index}"})
        assert [row["id"] for row in list_runs(tagged, filters, 100)] == [f"run-{index}"], key
        assert [record.run_id for record in iter_records(tagged, filters)] == [f"run-{index}"], key


def test_a_tag_key_with_another_runs_value_finds_nothing(tagged):
    assert list_runs(tagged, Filters(tags={'say "hi"': "value-1"}), 100) == []
    assert list_runs(tagged, Filters(tags={"missing": "value-1"}), 100) == []


def test_several_tags_must_all_match(tagged):
    assert [row["id"] for row in list_runs(tagged, Filters(tags={'"': "value-1", "shared": "yes"}), 100)] == ["run-1"]
    assert list_runs(tagged, Filters(tags={'"': "value-1", "shared": "no"}), 100) == []
    assert len(list_runs(tagged, Filters(tags={"shared": "yes"}), 100)) == len(KEYS)


def test_the_cli_tag_option_finds_the_run_on_both_engines(cli, tagged, ledger_url):
    for key in ['say "hi"', "x'\"\\.[$]", "back\\slash", "ünïcødé ☃"]:
        index = KEYS.index(key)
        for command in (["export"], ["runs", "list", "--format", "json"], ["report", "--format", "json"]):
            code, out, err = cli("--db", ledger_url, *command, "--tag", f"{key}=value-{index}")
            assert code == 0, err
            if command == ["export"]:
                assert [json.loads(line)["run_id"] for line in out.splitlines()] == [f"run-{index}"]
            elif command[0] == "runs":
                assert [row["run_id"] for row in json.loads(out)] == [f"run-{index}"]
            else:
                assert json.loads(out)["runs"] == 1


@pytest.mark.parametrize(("pattern", "found"), [("nightly", ["nightly"]), ("Nightly", ["Nightly"]),
                                                ("night*", ["nightly"]), ("N*", ["Nightly"])])
def test_workflow_patterns_match_case_exactly_on_both_engines(ledger_url, pattern, found):
    from tests.factories import make_run

    with Ledger.open(ledger_url) as ledger:
        ledger.finish_runs([make_run("nightly"), make_run("Nightly")])
        assert [row["workflow"] for row in list_runs(ledger, Filters(workflows=[pattern]))] == found
