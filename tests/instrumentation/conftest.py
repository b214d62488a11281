"""A real `llm` model plugin for the tests: it reports cache and reasoning details in
`Usage.details` and a resolved model, the way provider plugins do."""

from __future__ import annotations

import llm
import pytest


class MeterModel(llm.Model):
    """Answers "metered: <prompt>"; usage: one input token per word, Anthropic-style cache
    details, OpenAI-style reasoning details."""

    model_id = "meter"
    can_stream = True
    cache_read = 0
    reasoning = 0

    def execute(self, prompt, stream, response, conversation=None):
        words = prompt.prompt.split()
        yield "metered: "
        yield " ".join(words)
        response.set_usage(
            input=len(words),
            output=len(words) + 1,
            details={"cache_read_input_tokens": self.cache_read, "cache_creation_input_tokens": 0,
                     "completion_tokens_details": {"reasoning_tokens": self.reasoning}},
        )
        response.set_resolved_model("meter-2025-01-01")


class AsyncMeterModel(llm.AsyncModel):
    model_id = "meter"
    can_stream = True

    async def execute(self, prompt, stream, response, conversation=None):
        words = prompt.prompt.split()
        yield "metered: " + " ".join(words)
        response.set_usage(input=len(words), output=len(words) + 1)
        response.set_resolved_model("meter-2025-01-01")


@pytest.fixture
def meter(register_llm_models):
    """The `meter` model, registered through llm's plugin manager for this test."""
    return register_llm_models(MeterModel(), AsyncMeterModel())
