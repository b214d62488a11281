import pytest
from pocketflow import Flow

from pflow_metrics.runtime.compiler import compile_workflow
from pflow_metrics.runtime.nodes.base import NodeParamError
from pflow_metrics.runtime.nodes.shell import ShellCommandFailed
from pflow_metrics.runtime.registry import catalogue, node_type_names


def run(nodes, shared=None):
    shared = {} if shared is None else shared
    compile_workflow({"ir_version": "0.1.0", "nodes": nodes}).run(shared)
    return shared


def test_builtin_types_are_found_through_entry_points():
    assert node_type_names() == ["copy-file", "delete-file", "echo", "llm", "move-file", "read-file", "shell",
                                 "workflow", "write-file"]
    assert {entry["type"]: entry["writes"] for entry in catalogue()}["llm"].keys() == {"response", "llm_usage", "error"}


def test_llm_node_answers_through_the_llm_library_and_reports_usage():
    shared = run([{"id": "ask", "type": "llm", "params": {"prompt": "hello there", "model": "echo", "system": "be brief"}}])
    assert '"prompt": "hello there"' in shared["ask"]["response"]
    usage = shared["ask"]["llm_usage"]
    assert usage["model"] == "echo" and usage["input_tokens"] == 4 and usage["output_tokens"] > 0


def test_shell_node_captures_output_and_feeds_stdin():
    shared = run([{"id": "sh", "type": "shell", "params": {"command": "tr a-z A-Z", "stdin": "hi"}}])
    assert shared["sh"] == {"stdout": "HI", "stderr": "", "exit_code": 0}


def test_a_failing_command_fails_the_node_unless_ignored():
    with pytest.raises(ShellCommandFailed, match="exited with 3: oops"):
        run([{"id": "sh", "type": "shell", "params": {"command": "echo oops >&2; exit 3"}}])
    shared = run([{"id": "sh", "type": "shell", "params": {"command": "exit 3", "ignore_errors": True}}])
    assert shared["sh"]["exit_code"] == 3


def test_file_nodes_write_read_and_copy(tmp_path):
    source, copied = tmp_path / "d" / "a.txt", tmp_path / "b.txt"
    shared = run([
        {"id": "w", "type": "write-file", "params": {"path": str(source), "content": "text"}},
        {"id": "c", "type": "copy-file", "params": {"source": "${w.path}", "destination": str(copied)}},
        {"id": "r", "type": "read-file", "params": {"path": "${c.destination}"}},
    ])
    assert shared["w"]["bytes_written"] == 4 and shared["r"]["content"] == "text"


def test_copy_refuses_to_overwrite_by_default(tmp_path):
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    with pytest.raises(FileExistsError):
        run([{"id": "c", "type": "copy-file", "params": {"source": str(tmp_path / "a"), "destination": str(tmp_path / "b")}}])


def test_a_missing_required_param_fails_the_node():
    with pytest.raises(NodeParamError, match="param 'command' is required"):
        run([{"id": "sh", "type": "shell"}])


def test_echo_returns_its_action():
    ir = {"ir_version": "0.1.0", "nodes": [
        {"id": "pick", "type": "echo", "params": {"action": "b"}},
        {"id": "a", "type": "echo", "params": {"hit": 1}},
        {"id": "b", "type": "echo", "params": {"hit": 2}},
    ], "edges": [{"from": "pick", "to": "a", "action": "a"}, {"from": "pick", "to": "b", "action": "b"}]}
    shared = {}
    Flow.run(compile_workflow(ir), shared)
    assert "b" in shared and "a" not in shared
