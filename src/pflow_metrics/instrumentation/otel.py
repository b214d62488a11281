"""OpenTelemetry: a finished run record as spans, sent over OTLP/HTTP (the `otel` extra).

One mapping serves both doors: the live export of a run as it finishes (`instrument(...,
otel=True)`, `run --otel`, PFLOW_METRICS_OTEL=1) and the batch export of stored runs
(`export --format otlp`). Names follow the GenAI semantic conventions v1.41.0 (development
status): a root span `invoke_workflow {workflow}`, one child per node execution, and a
`chat {model}` span per LLM call under its node, at the recorded times.

Our own spans get ids derived from the run id (the trace id is the run id's UUID), so a
re-export sends the same trace again instead of a new one. When the application has set a
global tracer provider, live runs go there instead, under the current span, with its ids.

Only the commands and runs that ask for OpenTelemetry import this module.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode

from pflow_metrics.record import LLMCallRecord, NodeRecord, RunRecord
from pflow_metrics.redaction import redact_text

SEMCONV_VERSION = "1.41.0"
SCOPE = "pflow_metrics"
DEFAULT_SERVICE_NAME = "pflow-metrics"
MAX_TEXT = 100_000  # characters of one exported text; hosted tracers drop payloads near 1 MB
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_NANOS = 2**64 - 1  # OTLP times are unsigned 64-bit nanoseconds: up to 2554-07-21
# The exporter's own loggers: their lines become our one warning or error line instead.
_EXPORTER_LOGGERS = ("opentelemetry.exporter.otlp.proto.http.trace_exporter",
                     "opentelemetry.exporter.otlp.common.http")


class OtelExportError(Exception):
    """Spans could not be delivered; the message says where and why (redacted)."""


# -- The mapping -------------------------------------------------------------------------------


def trace_id_of(run_id: str) -> int:
    """The trace id of a run: its UUID when the run id is one (a backend finds the trace by
    the run id without dashes), else 128 bits of a hash of it."""
    try:
        return uuid.UUID(run_id).int or 1
    except ValueError:
        return _hash_bits(run_id, 16)


def span_id_of(run_id: str, part: str) -> int:
    """The span id of one part of a run: "run", "node/3" (the 4th node execution), "call/0"."""
    return _hash_bits(f"{run_id}/{part}", 8)


def _hash_bits(text: str, size: int) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:size], "big") or 1


class RunIds(IdGenerator):
    """Hands out the ids `map_run` plans, so that our spans' ids derive from the run id.
    (The SDK asks its id generator for each new span; a plan per thread keeps runs that
    finish at the same time apart.)"""

    def __init__(self) -> None:
        self._plan = threading.local()

    def plan(self, trace_id: int, span_id: int) -> None:
        self._plan.ids = (trace_id, span_id)

    def generate_trace_id(self) -> int:
        return self._plan.ids[0]

    def generate_span_id(self) -> int:
        return self._plan.ids[1]


def nanos(moment: datetime) -> int:
    """An aware datetime as nanoseconds since the epoch (exact to the microsecond)."""
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def exportable(record: RunRecord) -> str | None:
    """Why a stored run cannot become spans, or None when it can."""
    if record.status == "running":
        return "still running"
    try:
        fits = nanos(_latest(record)) <= _LAST_NANOS
    except OverflowError:  # a moment past year 9999 (year 9998 plus a long offset)
        fits = False
    return None if fits else "its times lie past 2554-07-21, the last moment OTLP can carry"


def map_run(record: RunRecord, tracer: trace.Tracer, ids: RunIds | None = None,
            parent: otel_context.Context | None = None) -> None:
    """Start and end the spans of one finished run on `tracer`: the root, a span per node
    execution, a `chat` span per LLM call under the node execution it belongs to. With `ids`,
    the ids derive from the run id; `parent` is the context the root goes under (None: the
    current one, which holds no span in a batch export)."""
    run_id = record.run_id
    trace_id = trace_id_of(run_id)
    started = record.started_at

    def start(name: str, part: str, kind: SpanKind, at: datetime, attributes: dict[str, Any],
              under: otel_context.Context | None) -> trace.Span:
        if ids is not None:
            ids.plan(trace_id, span_id_of(run_id, part))
        return tracer.start_span(_text(name), context=under, kind=kind, attributes=attributes,
                                 start_time=nanos(at))

    root = start(f"invoke_workflow {record.workflow}", "run", SpanKind.INTERNAL, started,
                 _run_attributes(record), parent)
    if record.status != "success":
        _fail(root, record.error or record.status)
    under_root = trace.set_span_in_context(root, parent)
    node_spans = []
    for index, node in enumerate(record.nodes):
        node_start = started + timedelta(milliseconds=node.start_offset_ms)
        span = start(f"node {node.node_id}", f"node/{index}", SpanKind.INTERNAL, node_start,
                     _node_attributes(node, index), under_root)
        if node.status == "failed":
            _fail(span, node.error or "failed")
        node_spans.append((node, node_start, span))
    for index, call in enumerate(record.llm_calls):
        owner = _owner(call, node_spans, started)
        call_start = call.started_at or (owner[1] if owner else started)
        under = trace.set_span_in_context(owner[2], parent) if owner else under_root
        span = start(f"chat {call.model}", f"call/{index}", SpanKind.CLIENT, call_start,
                     _call_attributes(call), under)
        span.end(end_time=nanos(call_start + timedelta(milliseconds=call.duration_ms or 0)))
    for node, node_start, span in node_spans:
        span.end(end_time=nanos(node_start + timedelta(milliseconds=node.duration_ms)))
    root.end(end_time=nanos(_run_end(record)))


def _run_end(record: RunRecord) -> datetime:
    if record.ended_at is not None:
        return record.ended_at
    return record.started_at + timedelta(milliseconds=record.duration_ms or 0)


def _latest(record: RunRecord) -> datetime:
    """The latest moment any span of the run would end at."""
    ends = [_run_end(record)]
    ends += [record.started_at + timedelta(milliseconds=node.start_offset_ms + node.duration_ms)
             for node in record.nodes]
    ends += [call.started_at + timedelta(milliseconds=call.duration_ms or 0)
             for call in record.llm_calls if call.started_at is not None]
    return max(ends)


def _owner(call: LLMCallRecord, node_spans: list, started: datetime) -> tuple | None:
    """The node execution a call belongs to: of the executions of its node (a node may run
    several times: a loop, a retry edge), the last one that started by the time the call did."""
    runs = [entry for entry in node_spans if entry[0].node_id == call.node_id and entry[0].phase == call.phase]
    if not runs:
        return None
    moment = call.started_at or started
    begun = [entry for entry in runs if entry[1] <= moment]
    return begun[-1] if begun else runs[0]


def _run_attributes(record: RunRecord) -> dict[str, Any]:
    attributes = {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": _text(record.workflow),
        "pflow.run.id": record.run_id,
        "pflow.run.status": record.status,
        "pflow.unpriced_calls": record.unpriced_calls,
    }
    # OTLP has no decimal type: the nearest double to the ledger's exact amount. With unpriced
    # calls the priced part is only a lower bound, and is named so (unknown is not zero).
    cost_key = "pflow.cost_usd_lower_bound" if record.unpriced_calls else "pflow.cost_usd"
    attributes[cost_key] = float(record.priced_cost_usd)
    for key, value in record.tags.items():
        attributes[_text(f"pflow.tag.{key}")] = _text(redact_text(value))
    return attributes


def _node_attributes(node: NodeRecord, index: int) -> dict[str, Any]:
    attributes = {
        "pflow.node.id": _text(node.node_id),
        "pflow.node.type": _text(node.node_type),
        "pflow.node.phase": node.phase,
        "pflow.node.attempts": node.attempts,
        "pflow.node.index": index,
    }
    if node.action is not None:
        attributes["pflow.node.action"] = _text(node.action)
    if node.items is not None:
        attributes["pflow.node.batch_items"] = node.items
    return attributes


def _call_attributes(call: LLMCallRecord) -> dict[str, Any]:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": _text(call.model),
        # The conventions count cached input inside input_tokens; our buckets are apart.
        "gen_ai.usage.input_tokens": call.input_tokens + call.cache_read_tokens + call.cache_creation_tokens,
        "gen_ai.usage.output_tokens": call.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": call.cache_read_tokens,
        "gen_ai.usage.cache_creation.input_tokens": call.cache_creation_tokens,
        "gen_ai.usage.reasoning.output_tokens": call.thinking_tokens,
        "pflow.node.id": _text(call.node_id),
    }
    if call.provider:
        attributes["gen_ai.provider.name"] = _text(call.provider)
    if call.resolved_model:
        attributes["gen_ai.response.model"] = _text(call.resolved_model)
    if call.cost_usd is not None:
        attributes["pflow.cost_usd"] = float(call.cost_usd)
    if call.price_source:
        attributes["pflow.price_source"] = _text(call.price_source)
    # Prompt and answer exist on the record only when the run kept them (store_prompts).
    if call.prompt is not None:
        attributes["gen_ai.input.messages"] = _messages("user", call.prompt)
    if call.response is not None:
        attributes["gen_ai.output.messages"] = _messages("assistant", call.response)
    return attributes


def _messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": _text(redact_text(text))}]}],
                      ensure_ascii=False)


def _fail(span: trace.Span, message: str) -> None:
    message = _text(redact_text(message))
    kind, _, rest = message.partition(":")
    span.set_attribute("error.type", kind if rest and kind.isidentifier() else "_OTHER")
    span.set_status(Status(StatusCode.ERROR, message))


def _text(value: str) -> str:
    """Text as an attribute takes it: bounded, with a visible marker where it was cut, and
    with lone surrogates (which protobuf refuses) replaced."""
    if len(value) > MAX_TEXT:
        value = value[:MAX_TEXT] + " …[truncated]"
    return value.encode("utf-8", "replace").decode("utf-8")


# -- Our own provider and the OTLP/HTTP exporter ------------------------------------------------


def _resource() -> Resource:
    """OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES as the SDK reads them; without a service
    name, ours."""
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": DEFAULT_SERVICE_NAME}))
    return resource


class SpanBuilder:
    """Our own tracer provider with derived ids: `spans(records)` gives the finished spans."""

    def __init__(self) -> None:
        from pflow_metrics import __version__

        self.ids = RunIds()
        self.finished = InMemorySpanExporter()
        provider = TracerProvider(resource=_resource(), id_generator=self.ids, shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(self.finished))
        self.tracer = provider.get_tracer(SCOPE, __version__, schema_url=f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}")
        self.lock = threading.Lock()

    def spans(self, records: Iterable[RunRecord]) -> list[ReadableSpan]:
        with self.lock:
            try:
                for record in records:
                    map_run(record, self.tracer, self.ids, otel_context.Context())
                return list(self.finished.get_finished_spans())
            finally:
                self.finished.clear()


def traces_endpoint(base: str) -> str:
    """The traces URL of an OTLP/HTTP endpoint given as its base (`http://host:4318`), as
    OTEL_EXPORTER_OTLP_ENDPOINT is; a URL already ending in /v1/traces is kept."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(base)
    path = parts.path.rstrip("/")
    return urlunsplit(parts._replace(path=path if path.endswith("/v1/traces") else f"{path}/v1/traces"))


def new_exporter(endpoint: str | None, timeout: float) -> OTLPSpanExporter:
    """The SDK's exporter: endpoint and headers from OTEL_EXPORTER_OTLP_* unless `endpoint`
    is given; `timeout` bounds one export, retries included."""
    return OTLPSpanExporter(endpoint=traces_endpoint(endpoint) if endpoint else None, timeout=timeout)


def endpoint_of(exporter: OTLPSpanExporter) -> str:
    """Where the exporter sends, for messages (the SDK keeps it in a private attribute)."""
    return redact_text(str(getattr(exporter, "_endpoint", "the OTLP endpoint")))


def send(exporter: OTLPSpanExporter, spans: list[ReadableSpan]) -> None:
    """Export `spans`, or raise OtelExportError with the exporter's reason (its own log lines,
    which would be several per failure, are kept off stderr: the caller says it once)."""
    if not spans:
        return
    with _exporter_lines() as lines:
        try:
            result = exporter.export(spans)
        except Exception as exc:  # the exporter returns FAILURE for what it foresees; not all
            lines.append(f"{type(exc).__name__}: {exc}")
            result = SpanExportResult.FAILURE
    if result is not SpanExportResult.SUCCESS:
        reason = _reason(lines)
        raise OtelExportError(_one_line(f"to {endpoint_of(exporter)}: {reason.rstrip('.')}"))


def _reason(lines: list[str]) -> str:
    """Why an export failed, from the exporter's lines: the cause of its first retry (say,
    connection refused) says more than its last line (it gave up)."""
    for line in lines:
        cause = re.match(r"Transient error (.*) encountered while exporting", line, re.S)
        if cause:
            return cause[1]
    return lines[-1] if lines else "the exporter gave no reason"


class _ThisThread(logging.Filter):
    """Keeps the exporter's lines from this thread (ours) off the application's handlers."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.thread = threading.get_ident()
        self.lines = lines

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread != self.thread:
            return True
        self.lines.append(record.getMessage())
        return False


@contextmanager
def _exporter_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    only_ours = _ThisThread(lines)
    loggers = [logging.getLogger(name) for name in _EXPORTER_LOGGERS]
    for logger in loggers:
        logger.addFilter(only_ours)
    try:
        yield lines
    finally:
        for logger in loggers:
            logger.removeFilter(only_ours)


# -- Live: each run as it finishes --------------------------------------------------------------


def export_run(record: RunRecord) -> None:
    """Send a finished run's spans: into the application's global tracer provider under the
    current span when it has set one, else (in the background) to OTEL_EXPORTER_OTLP_ENDPOINT.
    Never waits for the network; a failure is one warning (see LiveSender)."""
    if exportable(record) is not None:
        return
    provider = trace.get_tracer_provider()
    if not isinstance(provider, trace.ProxyTracerProvider):  # the application configured one
        from pflow_metrics import __version__

        map_run(record, provider.get_tracer(SCOPE, __version__), None, None)
        return
    _live_sender().submit(record)


def flush(timeout: float | None = None) -> bool:
    """Wait until every run submitted so far was sent (or failed), at most `timeout` seconds
    (default PFLOW_METRICS_OTEL_TIMEOUT). True when nothing is left waiting."""
    with _senders_lock:
        senders = list(_senders.values())
    return all(sender.flush(timeout) for sender in senders)


_senders: dict[tuple, LiveSender] = {}
_senders_lock = threading.Lock()


def _live_sender() -> LiveSender:
    """One sender per configuration (endpoint, headers, wait) in this process."""
    import os

    from pflow_metrics.config import otel_timeout

    key = tuple(os.environ.get(name) for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES")) + (otel_timeout(),)
    with _senders_lock:
        sender = _senders.get(key)
        if sender is None:
            sender = _senders[key] = LiveSender(key[-1])
        return sender


class LiveSender:
    """Sends runs from a background thread, so that a slow or absent collector never holds up
    a workflow. At exit it waits at most `timeout` seconds for what is left. The first failure
    stops the sending for this process (each later attempt would wait again) and is said once:
    as a MetricsWarning when another run finishes, or as one line on stderr at exit. The
    ledger has every run; `pflow-metrics export --format otlp` sends them later."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.builder = SpanBuilder()
        self.exporter = new_exporter(None, timeout)
        self.pending: queue.Queue[RunRecord | None] = queue.Queue()
        self.failure: str | None = None
        self.unsent = 0
        self.told = False
        self.thread = threading.Thread(target=self._work, name="pflow-metrics-otel", daemon=True)
        self.thread.start()
        atexit.register(self.close)

    def submit(self, record: RunRecord) -> None:
        self._tell_warning()
        if self.failure is not None:
            self.unsent += 1
            return
        self.pending.put(record)

    def _work(self) -> None:
        while True:
            record = self.pending.get()
            try:
                if record is None:
                    return
                if self.failure is not None:
                    self.unsent += 1
                    continue
                try:
                    send(self.exporter, self.builder.spans([record]))
                except Exception as exc:  # OtelExportError, or a span the SDK would not take
                    self.failure = str(exc)
                    self.unsent += 1
            finally:
                self.pending.task_done()

    def flush(self, timeout: float | None = None) -> bool:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self.pending.all_tasks_done:
            while self.pending.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.pending.all_tasks_done.wait(left)
        return True

    def close(self) -> None:
        """At exit: wait at most `timeout` for the queue, then stop (aborting a retry that
        waits), and say once what was not sent."""
        if not self.flush():
            waiting = self.pending.unfinished_tasks
            self.failure = self.failure or f"to {endpoint_of(self.exporter)}: no answer within {self.timeout:g}s"
            self.unsent += waiting
        self.pending.put(None)
        self.exporter.shutdown()
        if self.failure is not None and not self.told:
            import sys

            self.told = True
            sys.stderr.write(f"pflow-metrics: warning: {self._message()}\n")
            sys.stderr.flush()

    def _tell_warning(self) -> None:
        if self.failure is None or self.told:
            return
        import warnings

        from pflow_metrics.instrumentation.errors import MetricsWarning

        self.told = True
        warnings.warn(f"pflow-metrics: {self._message()}", MetricsWarning, stacklevel=4)

    def _message(self) -> str:
        runs = f"{self.unsent} run{'s' if self.unsent != 1 else ''}"
        text = (f"OpenTelemetry export {self.failure}; {runs} not sent, and no more from this process "
                f"(the ledger has them: `pflow-metrics export --format otlp` sends them later)")
        return _one_line(text)


def _one_line(text: str) -> str:
    """A message for stderr: redacted, on one line, control characters shown escaped."""
    text = " ".join(redact_text(text).split())
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
