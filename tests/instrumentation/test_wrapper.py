"""InstrumentedNodeWrapper on real PocketFlow graphs: ids, retries, batches, async, nesting,
copy/pickle, and the caller's flow left alone."""

from __future__ import annotations

import asyncio
import copy
import pickle

from pocketflow import AsyncFlow, AsyncNode, AsyncParallelBatchNode, BatchNode, Flow, Node

from pflow_metrics.instrumentation import RunSession, instrument
from pflow_metrics.instrumentation.wrapper import InstrumentedNodeWrapper, instrument_graph, snake_case


class Noop(Node):
    pass


class Flaky(Node):
    """Fails `failures` times, then succeeds (state shared by all copies: the dict)."""

    def __init__(self, failures: int, state: dict, **kwargs):
        super().__init__(**kwargs)
        self.failures, self.state = failures, state

    def exec(self, prep_res):
        self.state["calls"] = self.state.get("calls", 0) + 1
        if self.state["calls"] <= self.failures:
            raise RuntimeError("flaky")
        return "ok"


class Choose(Node):
    def post(self, shared, prep_res, exec_res):
        return shared["route"]


class Mark(Node):
    def __init__(self, label: str):
        super().__init__()
        self.label = label

    def post(self, shared, prep_res, exec_res):
        shared.setdefault("path", []).append(self.label)


class Items(BatchNode):
    def prep(self, shared):
        return shared["items"]

    def exec(self, item):
        return item * 2

    def post(self, shared, prep_res, exec_res):
        shared["doubled"] = exec_res


class ParallelItems(AsyncParallelBatchNode):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.failed_once: set = set()

    async def prep_async(self, shared):
        return shared["items"]

    async def exec_async(self, item):
        await asyncio.sleep(0)
        if item % 2 and item not in self.failed_once:  # odd items fail once, then pass
            self.failed_once.add(item)
            raise RuntimeError("retry me")
        return item

    async def post_async(self, shared, prep_res, exec_res):
        shared["done"] = sorted(exec_res)


class Wait(AsyncNode):
    async def exec_async(self, prep_res):
        await asyncio.sleep(0)
        return "waited"

    async def post_async(self, shared, prep_res, exec_res):
        shared["waited"] = exec_res


class RunsAnother(Node):
    """Runs another tracked flow from inside its exec."""

    def __init__(self, tracked):
        super().__init__()
        self.tracked = tracked

    def exec(self, prep_res):
        self.tracked.run({})


def _record(flow, shared=None, runner=None):
    tracked = instrument(flow, workflow="wrapper-test", ledger=False)
    shared = {} if shared is None else shared
    if isinstance(flow, AsyncFlow):
        asyncio.run(tracked.run_async(shared))
    else:
        tracked.run(shared)
    return tracked.last_run.record, shared


def test_node_ids_are_snake_case_with_suffixes_for_repeats():
    first, second, third = Noop(), Noop(), Mark("x")
    third.node_id = "explicit"
    first >> second >> third
    record, _ = _record(Flow(start=first))
    assert [(n.node_id, n.node_type) for n in record.nodes] == [
        ("noop", "Noop"), ("noop-2", "Noop"), ("explicit", "Mark")]
    assert snake_case("LLMNode") == "llm_node" and snake_case("SummarizeText") == "summarize_text"


def test_node_records_carry_phase_status_and_timing_in_order():
    first, second = Mark("a"), Mark("b")
    first >> second
    record, _ = _record(Flow(start=first))
    a, b = record.nodes
    assert (a.phase, a.status, a.attempts, a.action, a.error, a.items) == ("workflow", "success", 1, None, None, None)
    assert 0 <= a.start_offset_ms <= a.start_offset_ms + a.duration_ms <= b.start_offset_ms <= record.duration_ms


def test_retries_are_counted_as_attempts():
    state: dict = {}
    record, _ = _record(Flow(start=Flaky(2, state, max_retries=3)))
    [node] = record.nodes
    assert (node.attempts, node.status, state["calls"]) == (3, "success", 3)


def test_a_failing_node_is_recorded_with_its_error_and_the_error_reaches_the_caller():
    state: dict = {}
    tracked = instrument(Flow(start=Flaky(5, state, max_retries=2)), workflow="fails", ledger=False)
    try:
        tracked.run({})
    except RuntimeError as exc:
        assert str(exc) == "flaky"
    else:
        raise AssertionError("the node's error must reach the caller")
    [node] = tracked.last_run.record.nodes
    assert (node.status, node.attempts, node.error) == ("failed", 2, "RuntimeError: flaky")
    assert tracked.last_run.status == "failed" and tracked.last_run.error == "RuntimeError: flaky"


def test_batch_nodes_record_their_item_count():
    record, shared = _record(Flow(start=Items()), {"items": [1, 2, 3, 4]})
    assert shared["doubled"] == [2, 4, 6, 8]
    assert (record.nodes[0].items, record.nodes[0].attempts) == (4, 1)


def test_async_parallel_batch_counts_retries_without_races():
    flow = AsyncFlow(start=ParallelItems(max_retries=2))
    record, shared = _record(flow, {"items": [1, 2, 3, 4, 5]})
    assert shared["done"] == [1, 2, 3, 4, 5]
    [node] = record.nodes
    assert (node.items, node.attempts) == (5, 4)  # 3 odd items retried once: 1 + 3


def test_async_nodes_and_sync_nodes_mix_in_an_async_flow():
    wait, mark = Wait(), Mark("after")
    wait >> mark
    record, shared = _record(AsyncFlow(start=wait))
    assert [n.node_id for n in record.nodes] == ["wait", "mark"]
    assert shared == {"__llm_calls__": [], "waited": "waited", "path": ["after"]}


def test_nested_flow_nodes_get_prefixed_ids():
    inner_start = Mark("inner-1")
    inner_start >> Mark("inner-2")
    inner = Flow(start=inner_start)
    inner.node_id = "sub"
    outer_start = Mark("outer")
    outer_start >> inner >> Mark("end")
    record, shared = _record(Flow(start=outer_start))
    assert shared["path"] == ["outer", "inner-1", "inner-2", "end"]
    assert [n.node_id for n in record.nodes] == ["mark", "sub/mark", "sub/mark-2", "sub", "mark-2"]


def test_actions_choose_the_branch_and_are_recorded():
    choose, left, right = Choose(), Mark("left"), Mark("right")
    choose - "left" >> left
    choose - "right" >> right
    record, shared = _record(Flow(start=choose), {"route": "right"})
    assert shared["path"] == ["right"]
    assert [(n.node_id, n.action) for n in record.nodes] == [("choose", "right"), ("mark-2", None)]


def test_the_callers_flow_and_nodes_are_untouched():
    first, second = Mark("a"), Mark("b")
    first >> second
    flow = Flow(start=first)
    before = (flow.start_node, dict(first.successors), dict(second.successors), dict(first.__dict__))
    _record(flow)
    assert (flow.start_node, dict(first.successors), dict(second.successors), dict(first.__dict__)) == before
    assert type(flow.start_node) is Mark


def test_wrappers_survive_copy_deepcopy_and_pickle_and_record_into_the_run_they_execute_in():
    wrapper = instrument_graph(Flow(start=Mark("a")), "workflow").start_node
    assert isinstance(wrapper, InstrumentedNodeWrapper)
    clones = (copy.copy(wrapper), copy.deepcopy(wrapper), pickle.loads(pickle.dumps(wrapper)))
    with RunSession("copies", ledger=False) as session:
        for clone in clones:
            assert clone.label == "a" and clone.node_id == "mark"  # attributes delegate to the node
            session.run_instrumented(Flow(start=clone), {}, "workflow")
    assert [n.node_id for n in session.result.record.nodes] == ["mark"] * 3


def test_a_wrapper_outside_any_run_runs_its_node_unobserved():
    shared: dict = {}
    instrument_graph(Flow(start=Mark("a")), "workflow")._run(shared)
    assert shared == {"path": ["a"]}


def test_concurrent_runs_of_one_instrumented_graph_record_separately():
    wait, mark = Wait(), Mark("after")
    wait >> mark
    graph = instrument(AsyncFlow(start=wait), workflow="concurrent", ledger=False).graph
    sessions = [RunSession("concurrent", ledger=False) for _ in range(3)]

    async def run_all():
        await asyncio.gather(*(s.run_instrumented_async(graph, {}, "workflow") for s in sessions))

    asyncio.run(run_all())
    assert [[n.node_id for n in s.finish().record.nodes] for s in sessions] == [["wait", "mark"]] * 3


def test_a_tracked_run_inside_a_node_is_a_run_of_its_own():
    inner = instrument(Flow(start=Mark("inner")), workflow="inner", ledger=False)
    record, _ = _record(Flow(start=RunsAnother(inner)))
    assert [n.node_id for n in record.nodes] == ["runs_another"]
    assert [n.node_id for n in inner.last_run.record.nodes] == ["mark"]


def test_wrappers_chain_with_rshift_and_actions():
    a = instrument_graph(Flow(start=Mark("a")), "workflow").start_node
    b = instrument_graph(Flow(start=Mark("b")), "workflow").start_node
    c = instrument_graph(Flow(start=Mark("c")), "workflow").start_node
    a >> b
    b - "other" >> c
    assert a.successors == {"default": b} and b.successors == {"other": c}


def test_a_flow_of_thousands_of_nodes_is_instrumented_without_recursion():
    nodes = [Noop() for _ in range(3000)]
    for left, right in zip(nodes, nodes[1:]):
        left >> right
    record, _ = _record(Flow(start=nodes[0]))
    assert len(record.nodes) == 3000 and record.nodes[-1].node_id == "noop-3000"
