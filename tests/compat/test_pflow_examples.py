"""pflow's own example workflows, as pflow publishes them, run with `pflow-metrics run`.

pflow's files are not ours to ship, so these tests read them from a checkout of pflow's
`examples/` folder (at commit f033d1eb, "feat/unified-metrics-tracing"): the one named by
$PFLOW_EXAMPLES_DIR, else `shared/pflow-examples` beside this repository; without either they
are skipped. Only the model is switched to the offline `echo` where
an example calls a provider. Examples that pflow itself refuses at that commit (a top-level
`metadata` key, `${content}` with namespacing on, the `invalid/` folder) are refused here too,
in one line per problem with exit 2.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

EXAMPLES = Path(os.environ.get("PFLOW_EXAMPLES_DIR") or Path(__file__).resolve().parents[3] / "shared" / "pflow-examples")
pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(),
                                reason="set PFLOW_EXAMPLES_DIR to pflow's examples/ folder to run pflow's examples")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder holding `examples/` as pflow's repository does (some examples name others by
    `examples/...`), as the working directory."""
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def offline(path: Path) -> Path:
    """The example with every model switched to `echo`."""
    text = re.sub(r'"model":\s*"[^"]*"', '"model": "echo"', path.read_text())
    target = path.with_name(f"offline-{path.name}")
    target.write_text(text)
    return target


def run_json(cli, workflow, *args):
    code, out, err = cli("run", workflow, *args, "--output-format", "json")
    return code, (json.loads(out) if out.strip() else None), err


def test_minimal_writes_its_file(cli, workdir):
    code, body, err = run_json(cli, "examples/core/minimal.json")
    assert code == 0, err
    assert (workdir / "hello.txt").read_text() == "Hello, pflow!"
    assert body["is_error"] is False and body["num_nodes"] == 1
    assert body["metrics"]["workflow"]["nodes_executed"] == 1 and "planner" not in body["metrics"]


@pytest.mark.parametrize(("example", "inputs", "written", "content"), [
    ("interfaces/demo_working.json", ["message=hi"], "output.txt", "hi"),
    ("interfaces/simple_text_workflow.json", ["message=yo", "filename=o2.txt"], "o2.txt", "yo"),
])
def test_interface_examples_take_their_inputs(cli, workdir, example, inputs, written, content):
    code, body, err = run_json(cli, f"examples/{example}", *inputs)
    assert code == 0 and body["is_error"] is False, err
    assert (workdir / written).read_text() == content


@pytest.mark.parametrize("example", ["interfaces/run_demo_working.json", "interfaces/run_simple_text.json"])
def test_workflows_that_run_other_workflows_record_the_children(cli, workdir, example):
    code, body, err = run_json(cli, f"examples/{example}")
    assert code == 0 and body["is_error"] is False, err
    timings = body["metrics"]["workflow"]["node_timings"]
    assert any("/" in node for node in timings), timings  # parent/child node ids


def test_the_llm_template_example_runs_offline_and_is_metered(cli, workdir):
    code, body, err = run_json(cli, offline(workdir / "examples/test_llm_templates.json"), "topic=owls")
    assert code == 0, err
    workflow = body["metrics"]["workflow"]
    assert workflow["models_used"] == ["echo"] and workflow["tokens_input"] > 0 and workflow["tokens_output"] > 0
    assert body["metrics"]["total"]["tokens_total"] == workflow["tokens_total"]
    assert body["result"] == {}  # its outputs declare no source: with namespacing, none is at the root


@pytest.mark.parametrize(("example", "words"), [
    ("invalid/bad-edge-ref.json", "no node with id 'middle'"),
    ("invalid/duplicate-ids.json", "duplicate id 'processor'"),
    ("invalid/missing-version.json", "ir_version: required"),
    ("invalid/wrong-types.json", "edges: must be a list"),
    ("simple-workflow.json", "metadata: unknown key"),
    ("output_validation_demo.json", "${content}"),
])
def test_examples_pflow_refuses_are_refused_in_one_line_each(cli, workdir, example, words):
    code, out, err = cli("run", offline(workdir / "examples" / example))
    assert code == 2 and out == "" and "Traceback" not in err
    assert words in err
    assert all(line.startswith("pflow-metrics: error: ") for line in err.splitlines())
