"""A planner model for the tests: a real `llm` model plugin that answers with canned workflows."""

from __future__ import annotations

import json

import llm
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
def canned_planner(register_llm_models):
    """Install a CannedPlanner; `install(answers)` returns it (first answer first)."""

    def install(answers: list) -> CannedPlanner:
        return register_llm_models(CannedPlanner([a if isinstance(a, str) else json.dumps(a) for a in answers]))

    return install


@pytest.fixture
def write_workflow(tmp_path):
    def write(ir: dict, name: str = "flow.json"):
        path = tmp_path / name
        path.write_text(json.dumps(ir))
        return path

    return write
