"""Live export: a run becomes spans in a real OTLP receiver (Phoenix) as it finishes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from datetime import timedelta

import llm
import pytest
from pocketflow import Flow, Node

from pflow_metrics import instrument
from pflow_metrics.instrumentation import otel
from pflow_metrics.instrumentation.errors import MetricsWarning
from pflow_metrics.ledger.store import Ledger
from tests.instrumentation.conftest import AsyncMeterModel, MeterModel
from tests.otel.readback import by_name, end, node_end, node_start, one, start, trace_hex


class Ask(Node):
    """Asks the `meter` model (a real llm plugin model) for `words`."""

    def __init__(self, words: str, fail_first: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.words, self.fail_first, self.tries = words, fail_first, 0

    def exec(self, prep_res):
        self.tries += 1
        if self.tries <= self.fail_first:
            raise ConnectionError("provider hiccup")
        return llm.get_model("meter").prompt(self.words).text()


class Publish(Node):
    def post(self, shared, prep_res, exec_res):
        shared["published"] = True


def three_nodes() -> Flow:
    """draft (one LLM call), review (one LLM call, after one failed attempt), publish."""
    draft, review, publish = Ask("one two three"), Ask("four five", fail_first=1, max_retries=2), Publish()
    draft >> review >> publish
    return Flow(start=draft)


@pytest.fixture
def meter(register_llm_models, price_models):
    price_models("[models.meter]\ninput = 1.50\noutput = 6.00\n")
    return register_llm_models(MeterModel(), AsyncMeterModel())


def test_a_three_node_run_with_two_llm_calls_and_a_retry_arrives_as_one_trace(
        meter, otel_env, phoenix, sqlite_url):
    tracked = instrument(three_nodes(), workflow="weekly-digest", ledger=sqlite_url, otel=True,
                         tags={"team": "growth"})
    tracked.run({})
    assert otel.flush(30)
    record = tracked.last_run.record
    spans = phoenix.spans(otel_env, 6)
    assert len(spans) == 6
    assert sorted(span["name"] for span in spans) == sorted(
        ["invoke_workflow weekly-digest", "chat meter", "chat meter"] + [f"node {n.node_id}" for n in record.nodes])

    root = one(spans, "invoke_workflow weekly-digest")
    assert root["parent_id"] is None
    assert {span["context"]["trace_id"] for span in spans} == {trace_hex(record.run_id)}
    assert root["attributes"]["gen_ai.operation.name"] == "invoke_workflow"
    assert root["attributes"]["gen_ai.workflow.name"] == "weekly-digest"
    assert root["attributes"]["pflow.run.id"] == record.run_id
    assert root["attributes"]["pflow.run.status"] == "success"
    assert root["attributes"]["pflow.tag.team"] == "growth"
    assert root["attributes"]["pflow.cost_usd"] == float(record.cost_usd) > 0
    assert (start(root), end(root)) == (record.started_at, record.ended_at)

    node_spans = [span for span in spans if span["name"].startswith("node ")]
    assert [span["attributes"]["pflow.node.index"] for span in sorted(node_spans, key=start)] == [0, 1, 2]
    for index, node in enumerate(record.nodes):
        [span] = [s for s in node_spans if s["attributes"]["pflow.node.index"] == index]
        assert span["name"] == f"node {node.node_id}"
        assert span["parent_id"] == root["context"]["span_id"]
        assert span["attributes"]["pflow.node.id"] == node.node_id
        assert span["attributes"]["pflow.node.type"] == node.node_type
        assert span["attributes"]["pflow.node.phase"] == "workflow"
        assert span["attributes"]["pflow.node.attempts"] == node.attempts
        assert span["attributes"].get("pflow.node.action") == node.action
        assert (start(span), end(span)) == (node_start(record, node), node_end(record, node))
    assert [node.attempts for node in record.nodes] == [1, 2, 1]  # the review's retry

    chats = sorted(by_name(spans)["chat meter"], key=start)
    assert len(chats) == 2
    for call, span in zip(record.llm_calls, chats):
        owner = [s for s in node_spans if s["attributes"]["pflow.node.id"] == call.node_id]
        assert span["parent_id"] == owner[0]["context"]["span_id"]
        attributes = span["attributes"]
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == call.provider
        assert attributes["gen_ai.request.model"] == "meter"
        assert attributes["gen_ai.response.model"] == "meter-2025-01-01"
        assert attributes["gen_ai.usage.input_tokens"] == call.input_tokens
        assert attributes["gen_ai.usage.output_tokens"] == call.output_tokens
        assert attributes["gen_ai.usage.cache_read.input_tokens"] == 0
        assert attributes["gen_ai.usage.cache_creation.input_tokens"] == 0
        assert attributes["pflow.cost_usd"] == float(call.cost_usd)
        assert "gen_ai.input.messages" not in attributes  # prompts were not kept for this run
        assert start(span) == call.started_at
        assert end(span) == call.started_at + timedelta(milliseconds=call.duration_ms)
    assert [(c.input_tokens, c.output_tokens) for c in record.llm_calls] == [(3, 4), (2, 3)]


def test_prompts_leave_only_when_the_run_kept_them(meter, otel_env, phoenix):
    for store_prompts in (False, True):
        tracked = instrument(Flow(start=Ask("secret plans")), workflow=f"prompts-{store_prompts}",
                             ledger=False, otel=True, store_prompts=store_prompts)
        tracked.run({})
    assert otel.flush(30)
    chats = by_name(phoenix.spans(otel_env, 4))["chat meter"]
    kept = {span["context"]["trace_id"]: span["attributes"] for span in chats}
    assert len(kept) == 2
    with_prompts = [a for a in kept.values() if "gen_ai.input.messages" in a]
    assert len(with_prompts) == 1
    assert "secret plans" in with_prompts[0]["gen_ai.input.messages"]
    assert "metered: secret plans" in with_prompts[0]["gen_ai.output.messages"]
    assert sum("secret plans" in str(a) for a in kept.values()) == 1


def test_an_unreachable_collector_costs_one_warning_and_the_ledger_keeps_every_run(
        monkeypatch, closed_port, sqlite_url):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("PFLOW_METRICS_OTEL_TIMEOUT", "0.5")
    tracked = instrument(Flow(start=Publish()), workflow="offline-collector", ledger=sqlite_url, otel=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tracked.run({})
        otel.flush(30)  # the first export fails in the background; the next run says so, once
        tracked.run({})
        tracked.run({})
    told = [w for w in caught if issubclass(w.category, MetricsWarning)]
    assert len(told) == 1
    assert "OpenTelemetry export to http://127.0.0.1" in str(told[0].message)
    assert "1 run not sent, and no more from this process" in str(told[0].message)
    with Ledger.open(sqlite_url) as ledger:
        assert ledger.get_run(tracked.last_run.run_id).status == "success"
        assert len(list(ledger.iter_runs([tracked.last_run.run_id]))) == 1


def test_a_run_inside_an_applications_span_joins_that_trace(otel_env, phoenix, tmp_path):
    """The application configured OpenTelemetry itself: the run's spans go to its provider,
    under its current span. (A process can set its global provider once: so, a subprocess.)"""
    script = textwrap.dedent(f"""
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from pocketflow import Flow, Node

        from pflow_metrics import instrument

        class Publish(Node):
            pass

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint="{phoenix.url}/v1/traces")))
        trace.set_tracer_provider(provider)
        with trace.get_tracer("web").start_as_current_span("GET /digest") as request:
            tracked = instrument(Flow(start=Publish()), workflow="in-request", ledger=False, otel=True)
            tracked.run({{}})
        provider.shutdown()
        print(format(request.get_span_context().span_id, "016x"), format(request.get_span_context().trace_id, "032x"))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    request_span, request_trace = done.stdout.split()
    spans = phoenix.spans(otel_env, 3)
    root = one(spans, "invoke_workflow in-request")
    assert root["parent_id"] == request_span
    assert root["context"]["trace_id"] == request_trace
    assert one(spans, "node publish")["parent_id"] == root["context"]["span_id"]
