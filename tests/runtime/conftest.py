"""A planner model for the tests: a real `llm` model plugin that answers with canned workflows."""

from __future__ import annotations

import json

import llm
from llm.plugins import pm
import pytest

VALID_PLAN = {
    "ir_version": "0.1.0",
    "inputs": {"topic": {"type": "string", "required": False, "default": "ledgers"}},
    "outputs": {"answer": {"source": "${ask.response}"}},
    "nodes": [
        {"id": "greet", "type": "echo", "params": {"text": "about ${topic}"}},
        {"id": "ask", "type": "llm", "params": {"model": "echo", "prompt": "Explain ${greet.text}"}},
    ],
    "edges": [{"from": "greet", "to": "ask"}],
}
INVALID_PLAN = {"ir_version": "0.1.0", "nodes": [{"id": "ask", "type": "lm", "params": {}}]}


class CannedPlanner(llm.Model):
    """Answers each prompt with the next canned answer; records the prompts it saw."""

    model_id = "canned-planner"
    can_stream = False

    def __init__(self, answers: list[str]):
        self.answers = answers
        self.prompts: list[str] = []

    def execute(self, prompt, stream, response, conversation=None):
        self.prompts.append(prompt.prompt)
        answer = self.answers[min(len(self.prompts), len(self.answers)) - 1]
        response.set_usage(input=len(prompt.prompt.split()), output=len(answer.split()))
        yield answer


@pytest.fixture
def canned_planner():
    """Install a CannedPlanner; `install(answers)` returns it (first answer first)."""
    installed = []

    def install(answers: list) -> CannedPlanner:
        model = CannedPlanner([a if isinstance(a, str) else json.dumps(a) for a in answers])

        class Plugin:
            @llm.hookimpl
            def register_models(self, register):
                register(model)

        plugin = Plugin()
        pm.register(plugin, name=f"canned-planner-{id(plugin)}")
        installed.append(plugin)
        return model

    yield install
    for plugin in installed:
        pm.unregister(plugin)


@pytest.fixture
def write_workflow(tmp_path):
    def write(ir: dict, name: str = "flow.json"):
        path = tmp_path / name
        path.write_text(json.dumps(ir))
        return path

    return write
