"""Whatever the ledger holds becomes spans the OTLP encoder takes (checked with the SDK's own
protobuf encoder), with secrets redacted and texts bounded."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from pflow_metrics.instrumentation.otel import MAX_TEXT, SpanBuilder, span_id_of, trace_id_of
from pflow_metrics.record import MAX_CALL_TOKENS, MAX_COUNT
from tests.factories import make_run


def test_hostile_texts_and_numbers_encode_and_secrets_stay_home():
    record = make_run("\x1b]0;title\x07 digest\u202e", tags={"to\"ken": "Bearer abc.def.ghi-secret-value",
                                                           "x" * 200: "\ud800 lone surrogate"},
                      calls=[{"node_id": "step-0", "model": "m\x00odel", "input_tokens": MAX_CALL_TOKENS,
                              "output_tokens": MAX_CALL_TOKENS, "cache_read_tokens": MAX_CALL_TOKENS,
                              "cache_creation_tokens": MAX_CALL_TOKENS, "provider": "\x1b[31mred"}])
    record.run_id = "not-a-uuid ../../etc"
    record.nodes[0].node_id = "n" * 200_000
    record.nodes[0].attempts = MAX_COUNT
    record.nodes[0].items = MAX_COUNT
    record.nodes[1].status = "failed"
    record.nodes[1].error = "RuntimeError: postgres://admin:hunter2@db/prod said no"
    record.llm_calls[0].prompt = "use api_key=sk-abcdefghijklmnopqrstuvwxyz0123 please"
    record.llm_calls[0].response = "ok"

    spans = SpanBuilder().spans([record])
    encoded = encode_spans(spans).SerializeToString()
    assert len(spans) == 4
    assert b"hunter2" not in encoded and b"sk-abcdefghijklmnopqrstuvwxyz0123" not in encoded
    assert b"secret-value" not in encoded
    long_node = [s for s in spans if s.attributes.get("pflow.node.index") == 0][0]
    assert len(long_node.name) < MAX_TEXT + 20 and long_node.name.endswith("…[truncated]")
    assert long_node.attributes["pflow.node.attempts"] == MAX_COUNT
    [chat] = [s for s in spans if s.name.startswith("chat ")]
    assert chat.attributes["gen_ai.usage.input_tokens"] == 3 * MAX_CALL_TOKENS
    assert {s.context.trace_id for s in spans} == {trace_id_of(record.run_id)}
    assert [s for s in spans if s.parent is None][0].context.span_id == span_id_of(record.run_id, "run")


def test_a_call_of_a_node_that_ran_twice_goes_under_the_run_it_happened_in():
    record = make_run(nodes=3, calls=[{"node_id": "step-1"}])
    record.nodes[2].node_id = "step-1"  # the node ran again (a loop)
    record.nodes[2].start_offset_ms = 50.0
    call = record.llm_calls[0]
    from datetime import timedelta

    call.started_at = record.started_at + timedelta(milliseconds=60)
    spans = SpanBuilder().spans([record])
    [chat] = [s for s in spans if s.name.startswith("chat ")]
    assert chat.parent.span_id == span_id_of(record.run_id, "node/2")
    call.started_at = record.started_at + timedelta(milliseconds=10)
    [chat] = [s for s in SpanBuilder().spans([record]) if s.name.startswith("chat ")]
    assert chat.parent.span_id == span_id_of(record.run_id, "node/1")


def test_runs_at_the_ends_of_the_ledgers_range_are_judged_not_crashed_on():
    from datetime import UTC, datetime

    from pflow_metrics.instrumentation.otel import exportable

    last = make_run(started_at=datetime(9998, 12, 31, tzinfo=UTC))
    last.nodes[0].start_offset_ms = 10**11  # about three years past the last day
    first = make_run(started_at=datetime(1970, 1, 1, tzinfo=UTC))
    assert "2554-07-21" in exportable(last)
    assert exportable(first) is None
    assert len(SpanBuilder().spans([first])) == 4
