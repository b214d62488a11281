"""Nothing leaks: a secret a run meets (a shell node's stderr, a request, an exception, a
prompt, the ledger URL) is redacted in everything the run stores or prints: the ledger's run
and node errors, `export`, the workflow and planner traces, warnings and the CLI's lines.
Normal data (ids, model names, token counts, look-alike keys) comes through unchanged."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from pocketflow import Flow, Node
from sqlalchemy.exc import OperationalError

from pflow_metrics.instrumentation import instrument, record_llm_call
from pflow_metrics.instrumentation.redact import REDACTED, safe, safe_text
from pflow_metrics.instrumentation.trace import read_trace
from pflow_metrics.ledger.store import Ledger
from tests.runtime.conftest import INVALID_PLAN, VALID_PLAN, canned_planner, write_workflow  # noqa: F401 (fixtures)

KEY = "sk-proj-Zq8xT3bLbkFJ7yW2mN4vR6pQ"


def failing_shell(stderr: str, name: str = "boom") -> dict:
    """A workflow whose shell node writes `stderr` (given on its stdin) to stderr, then fails."""
    return {
        "ir_version": "0.1.0",
        "nodes": [
            {"id": "first", "type": "echo", "params": {"x": 1}},
            {"id": name, "type": "shell", "params": {"command": "cat >&2; exit 3", "stdin": stderr}},
        ],
        "edges": [{"from": "first", "to": name}],
    }


def trace_texts(home: Path) -> str:
    return "".join(path.read_text() for path in sorted((home / "debug").glob("*.jsonl")))


# -- defect 1: a failing shell node's stderr --------------------------------------------


def test_failing_shell_node_secret_is_redacted_in_ledger_and_export(cli, write_workflow, ledger_url, pflow_home):
    flow = write_workflow(failing_shell(f"auth failed for {KEY}"))
    ran = cli("--db", ledger_url, "run", str(flow), "--trace", "--output-format", "json")
    assert ran.exit_code == 1
    body = json.loads(ran.stdout)
    assert body["error"] == body["error_detail"]["message"] == f"command exited with 3: auth failed for {REDACTED}"

    with Ledger.open(ledger_url) as ledger:
        record = ledger.get_run(body["run_id"])
    assert record.error == f"ShellCommandFailed: command exited with 3: auth failed for {REDACTED}"
    failed = [node for node in record.nodes if node.status == "failed"]
    assert [node.node_id for node in failed] == ["boom"] and failed[0].error == record.error
    assert KEY not in json.dumps(record.to_dict(), default=str)

    exported = cli("--db", ledger_url, "export")
    assert exported.exit_code == 0 and body["run_id"] in exported.stdout
    trace = trace_texts(pflow_home)
    assert '"status": "failed"' in trace and REDACTED in trace
    for text in (exported.stdout, trace, ran.stdout, ran.stderr):
        assert KEY not in text


def test_failing_shell_node_secret_is_redacted_in_the_cli_error_and_summary_lines(cli, write_workflow):
    ran = cli("run", str(write_workflow(failing_shell(f"auth failed for {KEY}"))), "--no-ledger")
    assert ran.exit_code == 1
    assert f"pflow-metrics: error: node 'boom' failed: command exited with 3: auth failed for {REDACTED}" in ran.stderr
    assert ran.stdout.strip().splitlines()[-1].startswith("failed · ")
    assert KEY not in ran.stdout + ran.stderr


def test_exception_text_is_redacted_in_the_library_run_record_and_trace(sqlite_url):
    class Leaky(Node):
        def exec(self, prep_res):
            raise RuntimeError(f"DB_PASSWORD=hunter2hunter2 {KEY}")

    tracked = instrument(Flow(start=Leaky()), workflow="leaky", ledger=sqlite_url, trace=True)
    with pytest.raises(RuntimeError):
        tracked.run({})
    result = tracked.last_run
    with Ledger.open(sqlite_url) as ledger:
        stored = ledger.get_run(result.run_id)
    expected = f"RuntimeError: DB_PASSWORD={REDACTED} {REDACTED}"
    assert result.error == stored.error == stored.nodes[0].error == expected
    trace = result.trace_path.read_text()
    assert expected in trace
    for secret in ("hunter2hunter2", KEY):
        assert secret not in trace and secret not in json.dumps(stored.to_dict(), default=str)


def test_stored_prompts_and_responses_are_redacted_in_the_ledger(sqlite_url):
    class Calls(Node):
        def post(self, shared, prep_res, exec_res):
            record_llm_call(shared, model="gpt-4o-mini", input_tokens=3, output_tokens=2,
                            prompt=f"use {KEY}", response="Authorization: Bearer abcdefgh12345678")

    tracked = instrument(Flow(start=Calls()), workflow="calls", ledger=sqlite_url, store_prompts=True)
    shared: dict = {}
    tracked.run(shared)
    with Ledger.open(sqlite_url) as ledger:
        [call] = ledger.get_run(tracked.last_run.run_id).llm_calls
    assert (call.prompt, call.response) == (f"use {REDACTED}", f"Authorization: Bearer {REDACTED}")
    assert (call.model, call.input_tokens, call.output_tokens) == ("gpt-4o-mini", 3, 2)
    assert KEY not in json.dumps(shared["__llm_calls__"], default=str)


# -- defect 2: the planner trace ---------------------------------------------------------


def test_trace_planner_holds_no_key_from_the_request(cli, canned_planner, pflow_home):  # noqa: F811 (the fixture)
    echoing = json.dumps({**INVALID_PLAN, "note": f"you gave {KEY}"})
    canned_planner([echoing])  # three invalid answers: three prompts, each with the request
    ran = cli("run", "--plan", f"summarize with api key {KEY}", "--planner-model", "canned-planner",
              "--trace-planner", "--no-ledger")
    assert ran.exit_code == 1
    [path] = (pflow_home / "debug").glob("planner-trace-*.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 3
    assert all(f"Request: summarize with api key {REDACTED}" in line["prompt"] for line in lines)
    assert all(f"you gave {REDACTED}" in line["response"] for line in lines)
    assert KEY not in path.read_text() and KEY not in ran.stdout + ran.stderr


def test_the_planner_works_on_its_answer_as_given_while_its_trace_is_redacted(cli, canned_planner, pflow_home):  # noqa: F811 (the fixture)
    plan = json.loads(json.dumps(VALID_PLAN))
    plan["nodes"][0]["params"]["text"] = f"about ${{topic}} with {KEY}"
    canned_planner(["not json at all", plan])
    ran = cli("run", "--plan", "explain ledgers", "--planner-model", "canned-planner", "--trace-planner",
              "--no-ledger", "--save", str(pflow_home / "planned.json"))
    assert ran.exit_code == 0, ran.stderr
    assert json.loads((pflow_home / "planned.json").read_text()) == plan  # the workflow as answered
    assert KEY in ran.stdout  # the workflow's own output is its business
    [path] = (pflow_home / "debug").glob("planner-trace-*.jsonl")
    second = json.loads(path.read_text().splitlines()[1])
    assert second["errors"] == [] and REDACTED in second["response"] and KEY not in path.read_text()


# -- defect 3: values and keys that passed redaction -------------------------------------

BASIC = base64.b64encode(b"alice:correct-horse").decode()
LEAKS = {
    "url userinfo": ("connect postgresql://alice:pass1234@db.internal/app failed",
                     f"connect postgresql://alice:{REDACTED}@db.internal/app failed", "pass1234"),
    "env password": ("DB_PASSWORD=hunter2hunter2 PORT=5432", f"DB_PASSWORD={REDACTED} PORT=5432", "hunter2hunter2"),
    "aws secret": ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCY",
                   f"AWS_SECRET_ACCESS_KEY={REDACTED}", "wJalrXUtnFEMI"),
    "lower-case bearer": ("authorization: bearer abcdefgh12345678", f"authorization: bearer {REDACTED}",
                          "abcdefgh12345678"),
    "upper-case bearer": ("AUTHORIZATION: BEARER abcdefgh12345678", f"AUTHORIZATION: BEARER {REDACTED}",
                          "abcdefgh12345678"),
    "basic auth": (f"Authorization: Basic {BASIC}", f"Authorization: Basic {REDACTED}", BASIC),
    "bare basic auth": (f"sent Basic {BASIC} upstream", f"sent Basic {REDACTED} upstream", BASIC),
    "other scheme": ("Authorization: token s3cr3tvalue99", f"Authorization: token {REDACTED}", "s3cr3tvalue99"),
    "query password": ("postgresql+psycopg://u@h/db?password=s3cr3tvalue99&sslmode=require",
                       f"postgresql+psycopg://u@h/db?password={REDACTED}&sslmode=require", "s3cr3tvalue99"),
    "json": ('{"client_secret": "s3cr3tvalue99", "n": 1}', f'{{"client_secret": "{REDACTED}", "n": 1}}',
             "s3cr3tvalue99"),
    "python repr": ("{'pwd': 's3cr3tvalue99'}", f"{{'pwd': '{REDACTED}'}}", "s3cr3tvalue99"),
    "flag": ("mysql --password s3cr3tvalue99 -h db", f"mysql --password {REDACTED} -h db", "s3cr3tvalue99"),
}


@pytest.mark.parametrize("text, expected, secret", LEAKS.values(), ids=list(LEAKS))
def test_secrets_inside_text_are_masked(text, expected, secret):
    assert safe_text(text) == expected
    assert safe({"note": text}) == {"note": expected}
    assert safe_text(expected) == expected  # masking twice changes nothing


@pytest.mark.parametrize("key", ["pwd", "auth", "passwd", "password", "secret", "token", "credential",
                                 "private_key", "cookie", "session", "sessionId", "X-Api-Key", "authToken",
                                 "basic_auth", "oauth", "access_tokens", "DB_PASSWORD", "Authorization"])
def test_keys_naming_secrets_are_redacted_whole(key):
    assert safe({key: "value-1234", "other": 1}) == {key: REDACTED, "other": 1}


@pytest.mark.parametrize("key", ["author", "authority", "authors", "max_tokens", "maxTokens", "input_tokens",
                                 "cache_read_input_tokens", "tokens", "token_count", "completion_tokens_details",
                                 "tokenizer", "key", "monkey", "passage", "sessile"])
def test_keys_that_only_look_alike_are_kept(key):
    assert safe({key: 512}) == {key: 512}


@pytest.mark.parametrize("text", [
    "task-management risk-assessment ask-the-user",  # sk- inside words
    "Basic authentication failed; basic functionality works",
    "the bearer of bad news",
    'password authentication failed for user "alice"',
    "http://localhost:3000/@vite/client and https://registry.npmjs.org/@scope/pkg",
    "author: Jane Doe; authority=national; tokens: 1200; max_tokens=512",
    "success · 120ms · 2 nodes · 5 in / 3 out tokens · $0.0001 · run 1a2b3c4d",
    "postgresql://alice:***@db.example/ledger",
])
def test_ordinary_text_is_not_mangled(text):
    assert safe_text(text) == text


def test_secrets_in_trace_keys_values_and_errors_are_masked(pflow_home):
    class Store(Node):
        def post(self, shared, prep_res, exec_res):
            shared["env"] = "DB_PASSWORD=hunter2hunter2\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG"
            shared["conn"] = "postgresql://alice:pass1234@db.internal/app"
            shared["auth"] = {"user": "alice"}
            shared["headers"] = {"authorization": "bearer abcdefgh12345678", "author": "alice"}
            shared[f"cache:{KEY}"] = 1
            shared["usage"] = {"input_tokens": 10, "max_tokens": 512}

    class Next(Node):
        pass

    start = Store()
    start >> Next()
    tracked = instrument(Flow(start=start), workflow="keys", ledger=False, trace=True)
    tracked.run({})
    text = tracked.last_run.trace_path.read_text()
    for secret in ("hunter2hunter2", "wJalrXUtnFEMI", "pass1234", "abcdefgh12345678", KEY):
        assert secret not in text
    before = read_trace(tracked.last_run.trace_path)[2]["shared_before"]
    assert before["auth"] == REDACTED and before["headers"] == {"authorization": REDACTED, "author": "alice"}
    assert before["usage"] == {"input_tokens": 10, "max_tokens": 512}
    assert before[f"cache:{REDACTED}"] == 1


def test_ids_models_and_tags_are_kept_as_they_are(sqlite_url):
    class TaskRunner(Node):
        node_id = "task-runner"

        def post(self, shared, prep_res, exec_res):
            record_llm_call(shared, model="claude-3-5-sonnet-20241022", input_tokens=1, output_tokens=1)
            return "ask-user"

    tracked = instrument(Flow(start=TaskRunner()), workflow="risk-assessment", ledger=sqlite_url,
                         tags={"team": "data-platform", "session": "nightly"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the flow ends on an action without a successor
        tracked.run({})
    with Ledger.open(sqlite_url) as ledger:
        stored = ledger.get_run(tracked.last_run.run_id)
    assert stored.workflow == "risk-assessment" and stored.tags == {"team": "data-platform", "session": "nightly"}
    assert (stored.nodes[0].node_id, stored.nodes[0].action) == ("task-runner", "ask-user")
    assert stored.llm_calls[0].model == "claude-3-5-sonnet-20241022"


# -- defect 4: a password in the ledger URL's query --------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_db_path_hides_a_password_given_as_a_query_parameter(cli):
    shown = cli("--db", "postgresql+psycopg://u@db.example/ledger?password=s3cr3tvalue99&sslmode=require",
                "db", "path")
    assert shown.stdout.strip() == f"postgresql+psycopg://u@db.example/ledger?password={REDACTED}&sslmode=require"
    shown = cli("--db", "postgresql://u:s3cr3tvalue99@db.example/ledger", "db", "path")
    assert shown.stdout.strip() == "postgresql://u:***@db.example/ledger"


def test_connection_errors_hide_a_password_given_as_a_query_parameter(cli):
    url = f"postgresql+psycopg://u@127.0.0.1:{_closed_port()}/ledger?password=s3cr3tvalue99&connect_timeout=2"
    failed = cli("--db", url, "runs", "list")
    assert failed.exit_code != 0 and "cannot be used now" in failed.stderr
    assert "password=[REDACTED]" in failed.stderr and "s3cr3tvalue99" not in failed.stdout + failed.stderr


def test_driver_text_quoting_the_conninfo_is_redacted():
    from pflow_metrics.ledger.engine import create_ledger_engine, describe_db_error

    engine = create_ledger_engine("postgresql+psycopg://u@db.example/ledger?password=s3cr3tvalue99")
    try:
        driver = Exception('invalid connection option in "host=db.example password=s3cr3tvalue99 user=u"')
        message = str(describe_db_error(engine, OperationalError("connect", {}, driver)))
    finally:
        engine.dispose()
    assert f"password={REDACTED}" in message and "s3cr3tvalue99" not in message


def test_spool_warning_hides_a_password_given_as_a_query_parameter(cli, write_workflow):
    url = f"postgresql+psycopg://u@127.0.0.1:{_closed_port()}/ledger?password=s3cr3tvalue99&connect_timeout=2"
    flow = write_workflow({"ir_version": "0.1.0", "nodes": [{"id": "say", "type": "echo", "params": {"x": 1}}]})
    ran = cli("--db", url, "run", str(flow))
    assert ran.exit_code == 0, ran.stderr
    assert "run record spooled to" in ran.stderr and "password=[REDACTED]" in ran.stderr
    assert "s3cr3tvalue99" not in ran.stdout + ran.stderr


# -- the redactor stays cheap to import ---------------------------------------------------


def test_importing_the_redactor_loads_nothing_heavy():
    code = ("import sys, pflow_metrics.instrumentation.redact, pflow_metrics.redaction; "
            "print(sorted(m for m in ('sqlalchemy', 'pocketflow', 'llm', 'typer', 'pflow_metrics.record') "
            "if m in sys.modules))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert shown.stdout.strip() == "[]", shown.stderr
