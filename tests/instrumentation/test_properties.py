"""Property tests: usage entries of any shape never crash a run, and totals count only the
valid ones; traces of any store stay valid JSON."""

from __future__ import annotations

import json
import math
from decimal import Decimal
import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pocketflow import Flow, Node

from pflow_metrics.instrumentation import instrument
from pflow_metrics.instrumentation.redact import dumps
from pflow_metrics.instrumentation.usage import RejectedUsage, call_from_usage

counts = st.one_of(
    st.integers(min_value=-10, max_value=10**13), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5), st.booleans(), st.none(), st.lists(st.integers(), max_size=2),
)
entries = st.one_of(
    st.fixed_dictionaries(
        {"model": st.one_of(st.text(max_size=12), st.none(), st.integers())},
        optional={"input_tokens": counts, "output_tokens": counts, "cache_read_tokens": counts,
                  "thinking_tokens": counts, "cost_usd": counts, "details": st.one_of(st.none(), st.text(), st.dictionaries(st.text(max_size=4), counts))},
    ),
    st.text(max_size=10), st.integers(), st.none(), st.lists(st.integers(), max_size=3),
)


def _valid(entry) -> bool:
    try:
        call_from_usage(entry, "n", "workflow")
    except RejectedUsage:
        return False
    return True


class Reports(Node):
    def __init__(self, entry):
        super().__init__()
        self.entry = entry

    def post(self, shared, prep_res, exec_res):
        shared["llm_usage"] = self.entry


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(entries, max_size=6))
def test_malformed_usage_never_crashes_and_totals_count_only_valid_entries(batch):
    nodes = [Reports(entry) for entry in batch] or [Reports(None)]
    for left, right in zip(nodes, nodes[1:]):
        left >> right
    tracked = instrument(Flow(start=nodes[0]), workflow="fuzz", ledger=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracked.run({})
    result = tracked.last_run
    # A node whose llm_usage is the very object the previous node left there wrote nothing new.
    written = [entry for i, entry in enumerate(batch) if entry is not None and (i == 0 or entry is not batch[i - 1])]
    valid = [entry for entry in written if _valid(entry)]
    total = result.summary["metrics"]["total"]
    assert result.status == "success"
    assert total["llm_calls"] == len(result.record.llm_calls) == len(valid)
    assert total["input_tokens"] == sum(call.input_tokens for call in result.record.llm_calls)
    assert all(isinstance(call.input_tokens, int) and call.input_tokens >= 0 for call in result.record.llm_calls)
    partial = total["partial_cost_usd"]
    assert isinstance(partial, Decimal) and partial.is_finite() and partial >= 0
    assert total["rejected_usage_entries"] == len(written) - len(valid)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary(max_size=50)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_value_serializes_to_valid_json(value):
    json.loads(dumps(value))
