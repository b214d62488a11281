"""The planner's prompt and answer handling, without running a model."""

import json

from pflow_metrics.runtime.planner import extract_json, planner_prompt


def test_answers_wrapped_in_fences_or_prose_are_understood():
    assert json.loads(extract_json('Here:\n```json\n{"a": {"b": 1}}\n```\nDone.')) == {"a": {"b": 1}}
    assert json.loads(extract_json('Sure! {"a": 1} hope that helps')) == {"a": 1}


def test_a_retry_prompt_carries_the_previous_answer_and_its_errors():
    attempts = [{"response": '{"nodes": []}', "errors": ["nodes: required, a non-empty list of nodes"]}]
    prompt = planner_prompt("digest the log", [{"type": "echo"}], {"since": "7d"}, attempts)
    assert "Request: digest the log" in prompt and '"type": "echo"' in prompt
    assert '{"nodes": []}' in prompt and "nodes: required, a non-empty list of nodes" in prompt
    assert "since" in prompt and "7d" not in prompt  # input names only: values stay local
