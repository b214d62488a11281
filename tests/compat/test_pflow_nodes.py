"""The built-in node types with pflow's interfaces: inputs from the shared store first, then the
params, pflow's param names and output keys, failures as the `error` action."""

from __future__ import annotations

import json
import warnings

import llm
import pytest

from pflow_metrics.ledger.store import Ledger
from pflow_metrics.runtime.compiler import compile_workflow
from pflow_metrics.runtime.nodes.base import UnhandledErrorAction
from pflow_metrics.runtime.runner import run_workflow


def workflow(nodes, edges=None, inputs=None, outputs=None):
    ir = {"ir_version": "0.1.0", "nodes": nodes}
    if edges is not None:
        ir["edges"] = edges
    if inputs:
        ir["inputs"] = {name: {"type": "string" if isinstance(v, str) else "boolean" if isinstance(v, bool) else "object"}
                        for name, v in inputs.items()}
    if outputs:
        ir["outputs"] = outputs
    return ir


def run(nodes, edges=None, inputs=None, ledger=False, **kwargs):
    shared_inputs = dict(inputs or {})
    ir = workflow(nodes, edges, shared_inputs, kwargs.pop("outputs", None))
    captured = {}
    from pflow_metrics.runtime import runner

    original = runner.collect_outputs

    def keep_shared(ir, shared):
        captured.update(shared)
        return original(ir, shared)

    runner.collect_outputs = keep_shared
    try:
        outcome = run_workflow(ir, shared_inputs, workflow="compat", ledger=ledger, **kwargs)
    finally:
        runner.collect_outputs = original
    return outcome, captured


def run_plain(nodes, shared, edges=None):
    """Compile and run without the runner: `shared` may hold any keys (node outputs, as a
    previous node writes them with namespacing off), none of them a declared input."""
    compile_workflow(workflow(nodes, edges)).run(shared)
    return shared


# -- read-file ---------------------------------------------------------------------------


def test_read_file_takes_file_path_from_the_store_and_numbers_lines(tmp_path):
    (tmp_path / "a.txt").write_text("one\ntwo\n")
    outcome, shared = run([{"id": "r", "type": "read-file"}], inputs={"file_path": str(tmp_path / "a.txt")})
    assert outcome.ok, outcome.error
    assert shared["r"]["content"] == "1: one\n2: two\n"


def test_read_file_prefers_the_store_over_its_params(tmp_path):
    (tmp_path / "store.txt").write_text("from store")
    (tmp_path / "param.txt").write_text("from params")
    shared = run_plain([{"id": "r", "type": "read-file", "params": {"file_path": str(tmp_path / "param.txt")}}],
                       {"file_path": str(tmp_path / "store.txt")})
    assert shared["r"]["content"] == "1: from store"


def test_a_workflow_input_of_the_same_name_yields_to_an_explicit_param(tmp_path):
    (tmp_path / "in.txt").write_text("input file")
    outcome, shared = run(
        [{"id": "r", "type": "read-file"},
         {"id": "w", "type": "write-file", "params": {"file_path": str(tmp_path / "out.txt"), "content": "${r.content}"}}],
        inputs={"file_path": str(tmp_path / "in.txt")})
    assert outcome.ok, outcome.error
    assert (tmp_path / "in.txt").read_text() == "input file"  # not overwritten through the input
    assert (tmp_path / "out.txt").read_text() == "1: input file"


def test_read_file_with_our_path_param_keeps_the_raw_text(tmp_path):
    (tmp_path / "a.txt").write_text("one\ntwo\n")
    outcome, shared = run([{"id": "r", "type": "read-file", "params": {"path": str(tmp_path / "a.txt")}},
                           {"id": "n", "type": "read-file",
                            "params": {"file_path": str(tmp_path / "a.txt"), "line_numbers": False}}])
    assert shared["r"]["content"] == "one\ntwo\n" and shared["n"]["content"] == "one\ntwo\n"


def test_a_missing_file_takes_the_error_edge_with_pflows_error_key(tmp_path):
    missing = tmp_path / "nope.txt"
    outcome, shared = run(
        [{"id": "r", "type": "read-file", "params": {"file_path": str(missing)}},
         {"id": "handled", "type": "echo", "params": {"why": "${r.error}"}}],
        edges=[{"from": "r", "to": "handled", "action": "error"}])
    assert outcome.ok, outcome.error
    assert shared["r"]["error"] == f"Error: File '{missing}' does not exist"
    assert shared["handled"]["why"] == shared["r"]["error"] and "content" not in shared["r"]


# -- write, copy, move, delete -----------------------------------------------------------


def test_write_file_reports_written_and_appends(tmp_path):
    target = tmp_path / "deep" / "out.txt"
    outcome, shared = run([
        {"id": "w", "type": "write-file", "params": {"file_path": str(target), "content": "a\n"}},
        {"id": "more", "type": "write-file", "params": {"file_path": str(target), "content": "b\n", "append": True}},
    ])
    assert outcome.ok, outcome.error
    assert target.read_text() == "a\nb\n"
    assert shared["w"]["written"] == f"Successfully wrote to '{target}'"
    assert shared["more"]["written"] == f"Successfully appended to '{target}'"
    assert shared["w"]["path"] == str(target) and shared["w"]["bytes_written"] == 2  # our keys stay


def test_write_file_takes_content_from_the_store_before_its_params(tmp_path):
    target = tmp_path / "out.txt"
    run_plain([{"id": "w", "type": "write-file", "params": {"file_path": str(target), "content": "param"}}],
              {"content": "stored"})
    assert target.read_text() == "stored"


def test_copy_file_uses_source_and_dest_path_and_refuses_to_overwrite(tmp_path):
    (tmp_path / "a").write_text("A")
    (tmp_path / "b").write_text("B")
    outcome, shared = run(
        [{"id": "c", "type": "copy-file", "params": {"source_path": str(tmp_path / "a"), "dest_path": str(tmp_path / "c")}},
         {"id": "again", "type": "copy-file",
          "params": {"source_path": str(tmp_path / "a"), "dest_path": str(tmp_path / "b")}},
         {"id": "fallback", "type": "echo", "params": {"seen": "${again.error}"}}],
        edges=[{"from": "c", "to": "again"}, {"from": "again", "to": "fallback", "action": "error"}])
    assert outcome.ok, outcome.error
    assert (tmp_path / "c").read_text() == "A" and (tmp_path / "b").read_text() == "B"
    assert shared["c"]["copied"] == f"Successfully copied '{tmp_path / 'a'}' to '{tmp_path / 'c'}'"
    assert "already exists" in shared["fallback"]["seen"]


def test_copy_file_overwrites_when_the_store_says_so(tmp_path):
    (tmp_path / "a").write_text("A")
    (tmp_path / "b").write_text("B")
    outcome, _ = run([{"id": "c", "type": "copy-file",
                       "params": {"source": str(tmp_path / "a"), "destination": str(tmp_path / "b")}}],
                     inputs={"overwrite": True})
    assert outcome.ok, outcome.error
    assert (tmp_path / "b").read_text() == "A"


def test_move_file_moves_and_reports_moved(tmp_path):
    (tmp_path / "a").write_text("A")
    outcome, shared = run([{"id": "m", "type": "move-file",
                            "params": {"source_path": str(tmp_path / "a"), "dest_path": str(tmp_path / "sub" / "b")}}])
    assert outcome.ok, outcome.error
    assert not (tmp_path / "a").exists() and (tmp_path / "sub" / "b").read_text() == "A"
    assert shared["m"]["moved"].startswith("Successfully moved")


def test_delete_file_needs_confirm_delete_in_the_store_not_in_params(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("x")
    refused, shared = run([{"id": "d", "type": "delete-file",
                            "params": {"file_path": str(victim), "confirm_delete": True}}])
    assert not refused.ok and victim.exists()
    assert "confirm_delete" in shared.get("d", {}).get("error", "") or "confirm_delete" in str(refused.error)
    deleted, shared = run([{"id": "d", "type": "delete-file", "params": {"file_path": str(victim)}}],
                          inputs={"confirm_delete": True})
    assert deleted.ok, deleted.error
    assert not victim.exists() and shared["d"]["deleted"] == f"Successfully deleted '{victim}'"


# -- shell -------------------------------------------------------------------------------


def test_shell_reads_stdin_from_the_store_first():
    shared = run_plain([{"id": "sh", "type": "shell", "params": {"command": "tr a-z A-Z", "stdin": "param"}}],
                       {"stdin": "stored"})
    assert shared["sh"] == {"stdout": "STORED", "stderr": "", "exit_code": 0}


def test_shell_runs_in_cwd(tmp_path):
    outcome, shared = run([{"id": "sh", "type": "shell", "params": {"command": "pwd", "cwd": str(tmp_path)}}])
    assert shared["sh"]["stdout"].strip() == str(tmp_path)


def test_a_non_zero_exit_takes_the_error_edge_with_its_output(tmp_path):
    outcome, shared = run(
        [{"id": "sh", "type": "shell", "params": {"command": "echo out; echo bad >&2; exit 3"}},
         {"id": "recover", "type": "echo", "params": {"code": "${sh.exit_code}"}}],
        edges=[{"from": "sh", "to": "recover", "action": "error"}])
    assert outcome.ok, outcome.error
    assert shared["sh"]["stdout"] == "out\n" and shared["sh"]["stderr"] == "bad\n"
    assert shared["sh"]["error"] == "command exited with 3: bad" and shared["recover"]["code"] == 3


def test_a_failure_without_an_error_edge_fails_the_run_and_the_node(sqlite_url):
    outcome, shared = run([{"id": "sh", "type": "shell", "params": {"command": "echo broken >&2; exit 4"}}],
                          ledger=sqlite_url)
    assert not outcome.ok and outcome.failed_node == "sh"
    assert str(outcome.error) == "command exited with 4: broken"
    with Ledger.open(sqlite_url) as ledger:
        record = ledger.get_run(outcome.result.run_id)
    assert record.status == "failed" and [(n.node_id, n.status) for n in record.nodes] == [("sh", "failed")]


# -- llm ---------------------------------------------------------------------------------


def test_llm_takes_prompt_from_the_store_and_writes_pflows_usage_keys():
    shared = run_plain([{"id": "ask", "type": "llm",
                         "params": {"model": "echo", "prompt": "param prompt", "temperature": 0.2, "max_tokens": 5}}],
                       {"prompt": "stored prompt", "system": "stored system"})
    assert json.loads(shared["ask"]["response"])["system"] == "stored system"
    assert json.loads(shared["ask"]["response"])["prompt"] == "stored prompt"
    usage = shared["ask"]["llm_usage"]
    assert {"model", "input_tokens", "output_tokens", "total_tokens", "cache_creation_input_tokens",
            "cache_read_input_tokens"} <= usage.keys()
    assert usage["model"] == "echo" and usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


class Silent(llm.Model):
    """Answers without reporting any usage."""

    model_id = "silent-test-model"
    can_stream = False

    def execute(self, prompt, stream, response, conversation=None):
        yield "quiet"


@pytest.fixture
def silent_model(register_llm_models):
    return register_llm_models(Silent())


def test_a_model_without_usage_writes_an_empty_llm_usage_and_no_warning(silent_model, sqlite_url):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome, shared = run([{"id": "ask", "type": "llm", "params": {"model": "silent-test-model", "prompt": "hi"}}],
                              ledger=sqlite_url)
    assert outcome.ok, outcome.error
    assert shared["ask"]["response"] == "quiet" and shared["ask"]["llm_usage"] == {}
    assert [str(w.message) for w in caught if "pflow-metrics" in str(w.message)] == []


def test_an_unknown_model_takes_the_error_edge():
    outcome, shared = run(
        [{"id": "ask", "type": "llm", "params": {"model": "no-such-model-xyz", "prompt": "hi"}},
         {"id": "fallback", "type": "llm", "params": {"model": "echo", "prompt": "retry"}}],
        edges=[{"from": "ask", "to": "fallback", "action": "error"}])
    assert outcome.ok, outcome.error
    assert "no-such-model-xyz" in shared["ask"]["error"] and "response" in shared["fallback"]


# -- echo --------------------------------------------------------------------------------


def test_echo_with_pflows_params_writes_echo_and_metadata():
    outcome, shared = run([{"id": "e", "type": "echo",
                            "params": {"message": "hi", "prefix": "<", "suffix": ">", "count": 2, "uppercase": True}}])
    assert shared["e"]["echo"] == "<HI> <HI>"
    assert shared["e"]["metadata"] == {"original_message": "hi", "count": 2, "modified": True}


def test_echo_takes_message_from_the_store_first():
    shared = run_plain([{"id": "e", "type": "echo", "params": {"message": "param", "data": [1]}}],
                       {"message": "stored"})
    assert shared["e"]["echo"] == "stored" and shared["e"]["data"] == [1]


# -- the error action and the run's outcome ----------------------------------------------


def test_a_run_ending_on_an_unhandled_error_action_is_an_error(sqlite_url):
    outcome, _ = run([{"id": "ok", "type": "echo", "params": {"x": 1}},
                      {"id": "bad", "type": "echo", "params": {"action": "error", "error": "it broke"}}],
                     ledger=sqlite_url)
    assert isinstance(outcome.error, UnhandledErrorAction)
    assert str(outcome.error) == "it broke" and outcome.failed_node == "bad"
    assert outcome.result.status == "failed"


def test_an_error_action_with_an_edge_is_a_success():
    outcome, shared = run([{"id": "bad", "type": "echo", "params": {"action": "error", "error": "it broke"}},
                           {"id": "fix", "type": "echo", "params": {"fixed": True}}],
                          edges=[{"from": "bad", "to": "fix", "action": "error"}])
    assert outcome.ok and shared["fix"]["fixed"] is True


def test_the_cli_reports_an_unhandled_error_action_as_is_error_and_exits_1(cli, tmp_path, sqlite_url):
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(workflow([{"id": "bad", "type": "echo", "params": {"action": "error", "error": "nope"}}])))
    code, out, err = cli("--db", sqlite_url, "run", path, "--output-format", "json")
    assert code == 1
    body = json.loads(out)
    assert body["is_error"] is True
    assert "nope" in out


def test_a_timeout_takes_the_error_edge_with_exit_code_minus_one():
    shared = run_plain([{"id": "sh", "type": "shell", "params": {"command": "sleep 5", "timeout": 0.2}},
                        {"id": "h", "type": "echo", "params": {"why": "${sh.error}"}}], {},
                       edges=[{"from": "sh", "to": "h", "action": "error"}])
    assert shared["sh"]["exit_code"] == -1 and shared["h"]["why"] == "command timed out after 0.2 seconds"


def test_shell_follows_pflows_success_edge():
    shared = run_plain([{"id": "sh", "type": "shell", "params": {"command": "true"}},
                        {"id": "next", "type": "echo", "params": {"reached": True}}], {},
                       edges=[{"from": "sh", "to": "next", "action": "success"}])
    assert shared["next"]["reached"] is True
