"""What the HTML pages are shown with: a busy month of runs, one real traced run, and a real
headless Chromium that opens a page and says what a person would notice.

Used by the tests here and by `python -m tests.html.screenshots`, which renders the pictures
in docs/screenshots/ from the same scenes.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pocketflow import BatchNode, Flow, Node

from pflow_metrics.record import LLMCallRecord, NodeRecord, RunRecord, new_run_record

CHROMIUM = "/usr/bin/chromium"

WORKFLOWS = {  # workflow: (its nodes, the models its LLM nodes call, runs a day, typical ms)
    "nightly-digest": (["fetch-feeds", "summarize", "title", "publish"], ["claude-sonnet-4", "claude-haiku-4"], 12,
                       9000),
    "pr-triage": (["read-diff", "classify", "label"], ["gpt-4o-mini"], 40, 2500),
    "support-reply": (["load-ticket", "draft", "review", "send"], ["gpt-4o", "gpt-4o-mini"], 25, 6000),
    "release-notes": (["collect-commits", "group", "write"], ["claude-sonnet-4"], 2, 20000),
    "invoice-extract": (["ocr", "extract-fields", "validate"], ["house-llama-70b"], 8, 4000),
}
RATES = {  # USD per million tokens (input, output), as a pricing file would give them
    "claude-sonnet-4": (3, 15), "claude-haiku-4": (1, 5), "gpt-4o": (2.5, 10), "gpt-4o-mini": (0.15, 0.6),
    "house-llama-70b": None,  # a local model nobody prices
}


def busy_month(now: datetime | None = None, days: int = 30, scale: int = 1, seed: int = 15,
               extra_workflows: int = 0) -> list[RunRecord]:
    """Runs over the last `days` days: five workflows (more with `extra_workflows`), five models
    one of them unpriced, failures, retries, batch nodes, cache and thinking tokens."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    workflows = dict(WORKFLOWS)
    for index in range(extra_workflows):
        workflows[f"team-{index:03d}-workflow-with-a-rather-long-descriptive-name"] = (
            ["load", "think", "write"], [rng.choice(list(RATES))], 3, 3000)
    records = []
    for day in range(days):
        for workflow, (nodes, models, per_day, typical_ms) in workflows.items():
            for _ in range(rng.randint(per_day // 2, per_day + per_day // 2) * scale):
                started = now - timedelta(days=day, seconds=rng.uniform(60, 86_000))
                records.append(_run(rng, workflow, nodes, models, typical_ms, started))
    return records


def _run(rng: random.Random, workflow: str, nodes: list[str], models: list[str], typical_ms: float,
         started: datetime) -> RunRecord:
    record = new_run_record(workflow, tags={"env": rng.choice(["prod", "prod", "staging"])})
    record.started_at = started
    failed_at = rng.randrange(len(nodes)) if rng.random() < 0.06 else None
    offset = 0.0
    for index, node_id in enumerate(nodes):
        took = rng.lognormvariate(0, 0.5) * typical_ms / len(nodes)
        batch = node_id in ("summarize", "extract-fields", "group")
        node = NodeRecord(node_id, "BatchNode" if batch else "Node", "workflow", took,
                          "failed" if index == failed_at else "success",
                          attempts=2 if rng.random() < 0.05 else 1, start_offset_ms=offset,
                          items=rng.randint(2, 12) if batch else None,
                          error="TimeoutError: provider did not answer in 30s" if index == failed_at else None)
        record.nodes.append(node)
        if index % 2 == 1 or batch:
            for _ in range(node.items or 1):
                at = started + timedelta(milliseconds=offset)
                record.llm_calls.append(_call(rng, node_id, rng.choice(models), at))
        offset += took
        if index == failed_at:
            break
    record.duration_ms = record.workflow_duration_ms = offset
    record.ended_at = started + timedelta(milliseconds=offset)
    record.status = "failed" if failed_at is not None else "success"
    if failed_at is not None:
        record.error = record.nodes[-1].error
    return record


def _call(rng: random.Random, node_id: str, model: str, at: datetime) -> LLMCallRecord:
    fresh, cached, output = rng.randint(200, 4000), rng.choice([0, 0, rng.randint(500, 8000)]), rng.randint(50, 900)
    thinking = rng.randint(0, output // 2) if model.startswith("claude-sonnet") else 0
    rates = RATES[model]
    cost = None if rates is None else (fresh * rates[0] + cached * rates[0] / 10 + output * rates[1]) / 1e6
    return LLMCallRecord(node_id=node_id, model=model, provider=model.split("-")[0], input_tokens=fresh,
                         cache_read_tokens=cached, output_tokens=output, thinking_tokens=thinking,
                         cost_usd=None if cost is None else round(cost, 9), started_at=at,
                         duration_ms=rng.uniform(300, 2500), price_source=None if rates is None else "override")


# -- a real traced run ------------------------------------------------------------------------


class Plan(Node):
    def exec(self, prep_res):
        import llm

        time.sleep(0.03)
        return llm.get_model("echo").prompt("plan the digest").text()


class Fetch(Node):
    """Fails its first two attempts, as a flaky feed does."""

    def exec(self, prep_res):
        self.tries = getattr(self, "tries", 0) + 1
        time.sleep(0.02)
        if self.tries < 3:
            raise ConnectionError("feed not reachable")
        return ["one", "two", "three", "four"]

    def post(self, shared, prep_res, exec_res):
        shared["items"] = exec_res


class Summarize(BatchNode):
    def prep(self, shared):
        return shared["items"]

    def exec(self, item):
        import llm

        time.sleep(0.01)
        return llm.get_model("echo").prompt(f"summarize {item}").text()


class Publish(Node):
    def exec(self, prep_res):
        time.sleep(0.015)


def traced_run(ledger_url: str, workflow: str = "nightly-digest") -> str:
    """Run a real PocketFlow flow, instrumented into the ledger: an LLM call, a node that
    succeeds on its third attempt, a batch of four LLM calls, a last node. Its run id."""
    from pflow_metrics import instrument

    plan, fetch, summarize, publish = Plan(), Fetch(max_retries=3), Summarize(), Publish()
    plan >> fetch >> summarize >> publish
    tracked = instrument(Flow(start=plan), workflow=workflow, ledger=ledger_url)
    tracked.run({})
    return tracked.last_run.run_id


# -- the browser ------------------------------------------------------------------------------


@dataclass
class Look:
    """What opening a page showed: problems a person would notice, and facts to check."""

    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    empty_charts: list[str] = field(default_factory=list)
    charts: int = 0
    hover: list[str] = field(default_factory=list)  # what the chart marks show on hover
    text: str = ""
    colours: tuple[str, str] = ("", "")  # the body's text and background colours


# Per chart: its heading and the marks drawn with an area (a bar with no width is not seen).
CHART_MARKS = """() => [...document.querySelectorAll('figure.chart')].map(figure => ({
  title: figure.parentElement.querySelector('h2').textContent,
  marks: [...figure.querySelectorAll('svg [role="graphics-symbol"]')]
    .filter(mark => { const box = mark.getBoundingClientRect(); return box.width * box.height > 0; }).length,
  box: figure.getBoundingClientRect().height,
}))"""


def look(page_file: Path, screenshot: Path, dark: bool = False, width: int = 1280, height: int | None = None,
         printed: bool = False) -> Look:
    """Open the page in headless Chromium (Debian's, no browser download), take a screenshot
    (of the whole page, or of its first `height` pixels; as printed with `printed`), and say
    what went wrong: console errors, requests that failed, dialogs (a script that ran), chart
    areas with nothing drawn."""
    from playwright.sync_api import sync_playwright

    seen = Look()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": width, "height": height or 900},
                                    color_scheme="dark" if dark else "light")
            page.on("console", lambda message: seen.console_errors.append(message.text)
                    if message.type == "error" else None)
            page.on("pageerror", lambda error: seen.console_errors.append(str(error)))
            page.on("requestfailed", lambda request: seen.failed_requests.append(request.url))
            page.on("request", lambda request: None if request.url == page_file.resolve().as_uri()
                    else seen.failed_requests.append(f"unexpected request: {request.url}"))
            page.on("dialog", lambda dialog: (seen.dialogs.append(dialog.message), dialog.dismiss()))
            if printed:
                page.emulate_media(media="print")
            page.goto(page_file.resolve().as_uri(), wait_until="load")
            charts = page.evaluate(CHART_MARKS)
            seen.charts = len(charts)
            seen.empty_charts = [chart["title"] for chart in charts if not chart["marks"] or chart["box"] < 40]
            seen.hover = page.evaluate("() => [...document.querySelectorAll('figure.chart svg title')]"
                                       ".map(title => title.textContent)")
            seen.text = page.inner_text("body")
            seen.colours = tuple(page.evaluate("() => [getComputedStyle(document.body).color, "
                                               "getComputedStyle(document.body).backgroundColor]"))
            page.screenshot(path=str(screenshot), full_page=height is None)
        finally:
            browser.close()
    return seen
