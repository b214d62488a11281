"""Small PocketFlow nodes for the instrumentation tests."""

from __future__ import annotations

import llm
from pocketflow import AsyncNode, Node


class Prompt(Node):
    """Prompts `model`; consumes the response the way `consume` says. (Configuration lives in
    attributes: a Flow hands its own params to every node.)"""

    def __init__(self, model: str = "echo", prompt: str = "hi", consume: str = "text", **kwargs):
        super().__init__(**kwargs)
        self.model, self.prompt, self.consume = model, prompt, consume

    def exec(self, prep_res):
        response = llm.get_model(self.model).prompt(self.prompt)
        consume = self.consume
        if consume == "text":
            return response.text()
        if consume == "iterate":
            return "".join(response)
        if consume == "usage":
            response.usage()
            return response.text()
        return response  # not consumed here

    def post(self, shared, prep_res, exec_res):
        shared.setdefault("answers", []).append(exec_res)


class ReportUsage(Node):
    """Writes `llm_usage` itself, as an LLM node of the runtime does (optionally namespaced)."""

    def __init__(self, usage: dict, namespace: str | None = None):
        super().__init__()
        self.usage, self.namespace = usage, namespace

    def post(self, shared, prep_res, exec_res):
        usage = dict(self.usage)
        if self.namespace:
            shared.setdefault(self.namespace, {})["llm_usage"] = usage
        else:
            shared["llm_usage"] = usage


class AsyncPrompt(AsyncNode):
    def __init__(self, model: str = "meter", prompt: str = "hi", **kwargs):
        super().__init__(**kwargs)
        self.model, self.prompt = model, prompt

    async def exec_async(self, prep_res):
        response = llm.get_async_model(self.model).prompt(self.prompt)
        return await response.text()

    async def post_async(self, shared, prep_res, exec_res):
        shared.setdefault("answers", []).append(exec_res)
