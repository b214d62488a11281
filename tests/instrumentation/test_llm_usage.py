"""LLM usage: captured `llm` calls, reported llm_usage (root and namespaced), dedupe, cost."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from pocketflow import AsyncFlow, Flow, Node

from pflow_metrics.instrumentation import RunSession, instrument, record_llm_call
from tests.instrumentation.flows import AsyncPrompt, Prompt, ReportUsage


def _run(flow, shared=None, **options):
    tracked = instrument(flow, workflow="usage-test", ledger=False, **options)
    shared = {} if shared is None else shared
    tracked.run(shared)
    return tracked.last_run, shared


def _chain(*nodes):
    for left, right in zip(nodes, nodes[1:]):
        left >> right
    return Flow(start=nodes[0])


@pytest.mark.parametrize("consume", ["text", "iterate", "usage"])
def test_llm_calls_are_captured_however_the_response_is_consumed(meter, consume):
    flow = Flow(start=Prompt("meter", "one two three", consume))
    result, shared = _run(flow)
    [call] = result.record.llm_calls
    assert (call.model, call.resolved_model, call.input_tokens, call.output_tokens) == (
        "meter", "meter-2025-01-01", 3, 4)
    assert call.node_id == "prompt" and call.provider == "tests"
    assert shared["answers"] == ["metered: one two three"]


def test_a_response_consumed_later_in_the_same_node_is_captured(meter):
    class Lazy(Node):
        def exec(self, prep_res):
            import llm

            response = llm.get_model("meter").prompt("lazy words here")
            assert response.input_tokens is None  # nothing ran yet
            return response

        def post(self, shared, prep_res, response):
            shared["text"] = str(response)  # consumed only now, in post

    result, shared = _run(Flow(start=Lazy()))
    assert shared["text"] == "metered: lazy words here"
    assert [c.input_tokens for c in result.record.llm_calls] == [3]


def test_cache_and_reasoning_details_land_in_their_buckets(meter):
    meter.cache_read, meter.reasoning = 5, 2
    flow = Flow(start=Prompt("meter", "a b c d"))
    [call] = _run(flow)[0].record.llm_calls
    assert (call.input_tokens, call.cache_read_tokens, call.output_tokens, call.thinking_tokens) == (4, 5, 5, 2)


def test_cost_accumulates_over_many_calls(meter, price_models):
    price_models('[models.meter]\ninput = 1.0\noutput = 2.0\n')
    nodes = [Prompt("meter", "w " * (i + 1)) for i in range(25)]
    result, shared = _run(_chain(*nodes))
    expected = sum(Decimal((i + 1) * 1 + (i + 2) * 2) / 10**6 for i in range(25))  # exactly
    assert len(result.record.llm_calls) == 25 and len(shared["__llm_calls__"]) == 25
    assert result.record.cost_usd == expected
    assert result.summary["metrics"]["total"]["cost_usd"] == expected
    assert {entry["node_id"] for entry in shared["__llm_calls__"]} == {n for n in result.summary["metrics"]["total"]["node_timings"]}


def test_root_and_namespaced_llm_usage_are_both_counted():
    root = ReportUsage({"model": "gpt-4o", "input_tokens": 10, "output_tokens": 5})
    spaced = ReportUsage({"model": "gpt-4o", "input_tokens": 7, "output_tokens": 3}, namespace="writer")
    spaced.node_id = "writer"
    result, shared = _run(_chain(root, spaced))
    calls = result.record.llm_calls
    assert [(c.node_id, c.input_tokens) for c in calls] == [("report_usage", 10), ("writer", 7)]
    assert [e["is_planner"] for e in shared["__llm_calls__"]] == [False, False]


def test_stale_llm_usage_is_not_counted_twice():
    first = ReportUsage({"model": "gpt-4o", "input_tokens": 10, "output_tokens": 5})

    class Quiet(Node):
        pass

    result, _ = _run(_chain(first, Quiet(), Quiet()))
    assert len(result.record.llm_calls) == 1
    assert result.summary["metrics"]["total"]["input_tokens"] == 10


def test_usage_left_before_the_run_is_not_counted():
    class Quiet(Node):
        pass

    result, _ = _run(Flow(start=Quiet()), {"llm_usage": {"model": "gpt-4o", "input_tokens": 99, "output_tokens": 1}})
    assert result.record.llm_calls == []


def test_a_call_also_reported_as_llm_usage_is_counted_once():
    class EchoAndReport(Node):
        def exec(self, prep_res):
            import llm

            response = llm.get_model("echo").prompt("count me once")
            text = response.text()
            usage = response.usage()
            return text, {"model": "echo", "input_tokens": usage.input, "output_tokens": usage.output}

        def post(self, shared, prep_res, exec_res):
            shared["llm_usage"] = exec_res[1]

    result, shared = _run(Flow(start=EchoAndReport()))
    [call] = result.record.llm_calls
    assert call.provider == "echo"  # the captured call, richer than the report, is the one kept
    assert len(shared["__llm_calls__"]) == 1


def test_a_provider_reported_cost_wins_over_pricing(price_models):
    price_models('[models.gpt-4o]\ninput = 1000.0\noutput = 1000.0\n')
    node = ReportUsage({"model": "gpt-4o", "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.42})
    [call] = _run(Flow(start=node))[0].record.llm_calls
    assert (call.cost_usd, call.price_source) == (Decimal("0.42"), "provider")


def test_unpriced_model_has_null_cost_and_is_listed(price_models):
    price_models('[models.known]\ninput = 1.0\noutput = 1.0\n')
    known = ReportUsage({"model": "known", "input_tokens": 1_000_000, "output_tokens": 0})
    unknown = ReportUsage({"model": "house-model-x", "input_tokens": 10, "output_tokens": 5})
    result, _ = _run(_chain(known, unknown))
    total = result.summary["metrics"]["total"]
    assert result.record.cost_usd is None and result.record.unpriced_calls == 1
    assert total["cost_usd"] is None and total["unpriced_models"] == ["house-model-x"]
    assert total["partial_cost_usd"] == 1


def test_record_llm_call_counts_for_the_running_node(price_models):
    price_models('[models.other-sdk-model]\ninput = 2.0\noutput = 4.0\n')

    class OtherSdk(Node):
        def post(self, shared, prep_res, exec_res):
            record_llm_call(shared, model="other-sdk-model", input_tokens=100, output_tokens=50,
                            cache_read_tokens=20)

    [call] = _run(Flow(start=OtherSdk()))[0].record.llm_calls
    assert (call.node_id, call.cache_read_tokens) == ("other_sdk", 20)
    assert call.cost_usd == Decimal("0.00044")  # (100 * 2 + 20 * 2 + 50 * 4) / 1e6


def test_entries_appended_to_llm_calls_by_a_node_are_claimed_by_it():
    class Appender(Node):
        def post(self, shared, prep_res, exec_res):
            shared["__llm_calls__"].append({"model": "gpt-4o", "input_tokens": 3, "output_tokens": 1})

    result, shared = _run(Flow(start=Appender()))
    assert [c.node_id for c in result.record.llm_calls] == ["appender"]
    assert [e["node_id"] for e in shared["__llm_calls__"]] == ["appender"]


def test_async_llm_calls_are_captured_in_async_flows(meter):
    first, second = AsyncPrompt(), AsyncPrompt()
    first >> second
    tracked = instrument(AsyncFlow(start=first), workflow="async", ledger=False)
    shared = {}
    asyncio.run(tracked.run_async(shared))
    calls = tracked.last_run.record.llm_calls
    assert [c.node_id for c in calls] == ["async_prompt", "async_prompt-2"]
    assert all(c.resolved_model == "meter-2025-01-01" for c in calls)


def test_planner_and_workflow_calls_are_split_by_phase(meter):
    planner, workflow = Flow(start=Prompt("meter", "plan it")), Flow(start=Prompt("meter", "do the thing now"))
    with RunSession("phases", ledger=False) as session:
        planner_shared, workflow_shared = {}, {}
        session.run_flow(planner, planner_shared, phase="planner")
        session.run_flow(workflow, workflow_shared)
    metrics = session.result.summary["metrics"]
    assert planner_shared["__is_planner__"] is True and planner_shared["__llm_calls__"][0]["is_planner"] is True
    assert (metrics["planner"]["input_tokens"], metrics["workflow"]["input_tokens"], metrics["total"]["input_tokens"]) == (2, 4, 6)
    assert [c.phase for c in session.result.record.llm_calls] == ["planner", "workflow"]


def test_prompts_stay_out_of_the_ledger_record_unless_asked(meter):
    flow = Flow(start=Prompt("meter", "secret plans"))
    [plain] = _run(flow)[0].record.llm_calls
    [kept] = _run(flow, store_prompts=True)[0].record.llm_calls
    assert (plain.prompt, plain.response) == (None, None)
    assert (kept.prompt, kept.response) == ("secret plans", "metered: secret plans")


def test_importing_the_instrumentation_loads_neither_llm_nor_pricing_data():
    import subprocess
    import sys

    code = ("import sys, pflow_metrics.instrumentation, pflow_metrics.pricing; "
            "print(sorted(m for m in ('llm', 'genai_prices', 'pocketflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_an_instrumented_flow_that_never_uses_llm_does_not_import_it():
    import subprocess
    import sys

    code = ("import sys\nfrom pocketflow import Flow, Node\nfrom pflow_metrics import instrument\n"
            "t = instrument(Flow(start=Node()), workflow='w', ledger=False)\nt.run({})\n"
            "print(t.last_run.status, 'llm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["success", "False"]
