"""Property tests: a secret of any class, inside any surrounding text, never comes out: not
from the text redactor, not from any text field of a recorded run (ledger, trace, warnings),
not from the one-line error of `pflow-metrics run`."""

from __future__ import annotations

import base64
import json
import warnings

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pocketflow import Flow, Node

from pflow_metrics.instrumentation import instrument, record_llm_call
from pflow_metrics.instrumentation.redact import safe, safe_text
from pflow_metrics.ledger.store import Ledger

# What a secret is made of: long enough never to turn up in the surrounding text by chance,
# and without the characters that end a value (space, quotes, &, <, >, backslash, @).
SECRET_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
values = st.text(SECRET_CHARS, min_size=12, max_size=40)
punctuated = st.builds(lambda a, mark, b: a + mark + b, st.text(SECRET_CHARS, min_size=6, max_size=20),
                       st.sampled_from("-_./+=~%!*$#:;,()[]{}|^@?"), st.text(SECRET_CHARS, min_size=6, max_size=20))
passwords = st.one_of(values, punctuated)
# In a URL a "/" would end the userinfo (`host:8080/path@x` has none): a password has it encoded.
url_passwords = passwords.filter(lambda value: "/" not in value)


def _case(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.lower(), word.upper(), word.title()])


SECRET_NAMES = st.sampled_from([
    "DB_PASSWORD", "PGPASSWORD", "password", "passwd", "pwd", "AWS_SECRET_ACCESS_KEY", "client_secret",
    "GITHUB_TOKEN", "access_token", "api_key", "X-Api-Key", "apiKey", "private_key", "SESSION_ID",
    "session", "cookie", "credentials", "auth", "authToken", "db.password",
])


@st.composite
def secrets(draw) -> tuple[str, list[str]]:
    """(a text holding a secret, the parts of it that must not come out)."""
    kind = draw(st.sampled_from(["token", "url", "query", "assignment", "quoted", "header", "bearer", "basic",
                                 "flag"]))
    value = draw(values)
    if kind == "token":
        token = draw(st.sampled_from([
            f"sk-proj-{value}", f"sk-ant-api03-{value}", f"sk-{value}", f"ghp_{value}{value}",
            f"github_pat_{value}{value}", f"xoxb-{value}", f"glpat-{value}{value}",
            "AKIA" + (value.upper() * 2)[:16],
        ]))
        return token, [token]
    password = draw(url_passwords if kind == "url" else passwords)
    if kind == "url":
        scheme = draw(st.sampled_from(["postgresql", "postgresql+psycopg", "mysql", "https", "redis", "amqp"]))
        user = draw(st.text(SECRET_CHARS, min_size=0, max_size=8))
        path = draw(st.sampled_from(["", "/db", "/db?sslmode=require", ":5432/app"]))
        return f"{scheme}://{user}:{password}@db.internal{path}", [password]
    if kind == "query":
        name = draw(st.sampled_from(["password", "sslpassword", "api_key", "token", "access_token"]))
        return f"postgresql+psycopg://u@h/db?{name}={value}&sslmode=require", [value]
    name = draw(SECRET_NAMES)
    if kind == "assignment":
        separator = draw(st.sampled_from(["=", ": ", " = ", ":", " => "]))
        return f"{name}{separator}{password}", [password]
    if kind == "quoted":
        quote = draw(st.sampled_from(['"', "'"]))
        spaced = draw(st.sampled_from([password, f"{value} {password}"]))
        return f"{quote}{name}{quote}: {quote}{spaced}{quote}", [password]
    if kind == "flag":
        return f"--{name.lower()} {password}", [password]
    if kind == "header":
        scheme = draw(st.sampled_from(["", "Bearer ", "bearer ", "BEARER ", "Token ", "Basic ", "Digest "]))
        header = draw(_case("Authorization"))
        return f"{header}: {scheme}{value}", [value]
    if kind == "bearer":
        return f"{draw(_case('Bearer'))} {value}", [value]
    user = draw(st.text(SECRET_CHARS, min_size=1, max_size=8))
    credential = base64.b64encode(f"{user}:{password}".encode()).decode()
    return f"{draw(_case('Basic'))} {credential}", [credential]


# Any text around the secret, kept apart from it by something that ends a name or a value.
surrounding = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
apart = st.sampled_from([" ", "\n", "\t", " (", ") ", ", ", "; ", " \"", "\" ", " '", " <", "> "])


@st.composite
def texts(draw, line: bool = False) -> tuple[str, list[str]]:
    around = surrounding
    if line:  # one line, and nothing the runtime reads as a template
        around = st.text(st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp"), exclude_characters="$\x85"),
                         max_size=40)
    secret, hidden = draw(secrets())
    before, after = draw(around), draw(around)
    gap1, gap2 = draw(apart), draw(apart)
    if line:
        gap1, gap2 = gap1.replace("\n", " "), gap2.replace("\n", " ")
    text = f"{before}{gap1}{secret}{gap2}{after}"
    # The secret is where it was put, not also in the text around it (hypothesis tries that).
    assume(all(text.count(part) == secret.count(part) for part in hidden))
    return text, hidden


def _absent(hidden: list[str], *outputs: str) -> None:
    for part in hidden:
        for output in outputs:
            assert part not in output, (part, output)


@settings(max_examples=600, deadline=None)
@given(texts())
@example(("see DB_PASSWORD=hunter2hunter2 ok", ["hunter2hunter2"]))
@example(("İ postgresql://alice:pass1234abcd@host/db", ["pass1234abcd"]))
def test_no_secret_of_any_class_survives_redaction_in_any_text(case):
    text, hidden = case
    redacted = safe_text(text)
    _absent(hidden, redacted, json.dumps(safe({"note": text, "nested": [{"value": text}]})))
    assert safe_text(redacted) == redacted  # redacting again changes nothing


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(texts())
def test_no_secret_reaches_any_text_field_of_a_recorded_run(sqlite_url, case):
    text, hidden = case

    class Calls(Node):
        def post(self, shared, prep_res, exec_res):
            shared["note"] = text
            record_llm_call(shared, model="gpt-4o-mini", input_tokens=1, output_tokens=1, prompt=text,
                            response=text)
            return "next"

    class Fails(Node):
        def exec(self, prep_res):
            raise RuntimeError(text)

    first = Calls()
    first - "next" >> Fails()
    tracked = instrument(Flow(start=first), workflow="fuzz", ledger=sqlite_url, trace=True, store_prompts=True,
                         tags={"note": text})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            tracked.run({})
        except RuntimeError:
            pass
    result = tracked.last_run
    with Ledger.open(sqlite_url) as ledger:
        stored = ledger.get_run(result.run_id)
    assert stored.status == "failed" and stored.nodes[-1].status == "failed"
    _absent(hidden, json.dumps(stored.to_dict(), default=str), json.dumps(result.record.to_dict(), default=str),
            result.error, result.trace_path.read_text(encoding="utf-8"), *(str(w.message) for w in caught))


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(texts(line=True))
def test_no_secret_reaches_the_one_line_error_of_pflow_metrics_run(cli, tmp_path, case):
    text, hidden = case
    flow = tmp_path / "fails.json"
    flow.write_text(json.dumps({
        "ir_version": "0.1.0",
        "nodes": [{"id": "boom", "type": "shell", "params": {"command": "cat >&2; exit 3", "stdin": text}}],
    }))
    for output_format in ("text", "json"):
        ran = cli("run", flow, "--no-ledger", "--output-format", output_format)
        assert ran.exit_code == 1, ran.stderr
        _absent(hidden, ran.stdout, ran.stderr)
